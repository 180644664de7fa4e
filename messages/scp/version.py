"""GetVersion and the version information a monitor answers with."""

from __future__ import annotations

import inspect
import re
import struct
from dataclasses import MISSING, dataclass, fields
from typing import Any, overload

from messages.errors import MalformedArgumentError
from messages.scp.base import (
    AbstractSCPRequest,
    AbstractSCPResponse,
    monitor_header,
)
from messages.scp.enums import SCPCommand
from messages.scp.header import SCPRequestHeader
from messages.validate import check_chip, check_core

#: What a board's monitor calls itself, and the major version of it that
#: SpiNNMan (and so this project) drives; a BMP answers version as BC&MP
#: (messages.bmp.BMP_NAME).
SCAMP_NAME = "SC&MP"
SCAMP_MAJOR_VERSION = 4
#: The chip a version reply names while SC&MP, just booted, has not yet
#: found where it is (and the address of "this chip" in a request).
UNKNOWN_CHIP = (255, 255)

# p, physical cpu, y, x, buffer size, version number, build date.
_VERSION_ARGS = struct.Struct("<BBBBHHI")
#: Version numbers at or above this are carried as a string instead.
_VERSION_IN_STRING = 0xFFFF


@dataclass(frozen=True, init=False)
class VersionInfo:
    """Who and what a core is, as its monitor answers CMD_VER.

    Made from the fields, or from a reply's data as SpiNNMan makes it:
    ``VersionInfo(version_data, offset=0)``, parsed as SpiNNMan parses it.
    """

    name: str
    hardware: str
    version_number: tuple[int, int, int]
    version_string: str
    build_date: int
    x: int
    y: int
    p: int
    physical_cpu_id: int = 0
    buffer_size: int = 256

    @overload
    def __init__(
        self, version_data: bytes | bytearray | memoryview, offset: int = 0
    ) -> None: ...

    @overload
    def __init__(
        self,
        name: str,
        hardware: str,
        version_number: tuple[int, int, int],
        version_string: str,
        build_date: int,
        x: int,
        y: int,
        p: int,
        physical_cpu_id: int = 0,
        buffer_size: int = 256,
    ) -> None: ...

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if "version_data" in kwargs or (args and isinstance(args[0], _DATA)):
            values = _parse(*args, **kwargs)
        else:
            values = _FIELDS.bind(*args, **kwargs)
            values.apply_defaults()
        for name, value in values.arguments.items():
            object.__setattr__(self, name, value)

    def to_bytes(self) -> bytes:
        """The reply data a monitor sends (the modern string form)."""
        text = f"{self.name}/{self.hardware}\0{self.version_string}\0"
        return _VERSION_ARGS.pack(
            self.p,
            self.physical_cpu_id,
            self.y,
            self.x,
            self.buffer_size,
            _VERSION_IN_STRING,
            self.build_date,
        ) + text.encode("utf-8")

    @staticmethod
    def from_bytes(
        data: bytes | bytearray | memoryview, offset: int = 0
    ) -> VersionInfo:
        """Parse a version reply's data (the same as ``VersionInfo(data, offset)``)."""
        return VersionInfo(data, offset)


_DATA = (bytes, bytearray, memoryview)
#: The field form of the constructor, as a dataclass would make it.
_FIELDS = inspect.Signature(
    [
        inspect.Parameter(
            field.name,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            default=(
                inspect.Parameter.empty if field.default is MISSING else field.default
            ),
        )
        for field in fields(VersionInfo)
    ]
)


def _parse(
    version_data: bytes | bytearray | memoryview, offset: int = 0
) -> inspect.BoundArguments:
    """The fields of a version reply's data, read as SpiNNMan reads them:
    the string is all after the arguments but the last byte, NAME/HARDWARE
    (exactly one slash) and, in the modern form, a NUL and N.N.N..."""
    data = bytes(version_data)
    if len(data) - offset < _VERSION_ARGS.size + 1:
        raise MalformedArgumentError(
            "version_data",
            f"{len(data) - offset} bytes",
            "too short for a version reply",
        )
    (p, physical, y, x, buffer_size, number, build_date) = _VERSION_ARGS.unpack_from(
        data, offset
    )
    try:
        text = data[offset + _VERSION_ARGS.size : -1].decode("utf-8")
    except UnicodeDecodeError as error:
        raise MalformedArgumentError(
            "version_data",
            data[offset + _VERSION_ARGS.size : -1],
            f"not UTF-8: {error}",
        ) from None
    if number < _VERSION_IN_STRING:
        version = (number // 100, number % 100, 0)
        version_string = name_hardware = text
    else:
        name_hardware, _, version_string = text.partition("\0")
        name_hardware = name_hardware.rstrip("\0")
        match = re.match(r"(\d+)\.(\d+)\.(\d+)", version_string)
        if match is None:
            raise MalformedArgumentError(
                "version_data", version_string, "the version is not N.N.N"
            )
        version = (int(match[1]), int(match[2]), int(match[3]))
    if name_hardware.count("/") != 1:
        raise MalformedArgumentError(
            "version_data", name_hardware, "the name is not NAME/HARDWARE"
        )
    name, _, hardware = name_hardware.partition("/")
    return _FIELDS.bind(
        name,
        hardware,
        version,
        version_string,
        build_date,
        x,
        y,
        p,
        physical,
        buffer_size,
    )


class GetVersionResponse(AbstractSCPResponse):
    __slots__ = ("version_info",)

    def __init__(self) -> None:
        super().__init__()
        self.version_info: VersionInfo | None = None

    def read_data_bytestring(self, data: bytes, offset: int) -> None:
        self.check_ok("version", "CMD_VER")
        self.version_info = VersionInfo.from_bytes(data, offset)


class GetVersion(AbstractSCPRequest[GetVersionResponse]):
    """Ask core (x, y, p) who and what it is."""

    __slots__ = ()

    def __init__(self, x: int, y: int, p: int) -> None:
        x, y = check_chip(x, y)
        super().__init__(
            monitor_header(x, y, check_core(p)), SCPRequestHeader(SCPCommand.CMD_VER)
        )

    def get_scp_response(self) -> GetVersionResponse:
        return GetVersionResponse()
