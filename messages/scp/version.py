"""GetVersion and the version information a monitor answers with."""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from messages.errors import MalformedDatagramError
from messages.scp.base import (
    AbstractSCPRequest,
    AbstractSCPResponse,
    monitor_header,
)
from messages.scp.enums import SCPCommand
from messages.scp.header import SCPRequestHeader
from messages.validate import check_chip, check_core

# p, physical cpu, y, x, buffer size, version number, build date.
_VERSION_ARGS = struct.Struct("<BBBBHHI")
#: Version numbers at or above this are carried as a string instead.
_VERSION_IN_STRING = 0xFFFF


@dataclass(frozen=True)
class VersionInfo:
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
        ) + text.encode("ascii")

    @staticmethod
    def from_bytes(data: bytes, offset: int = 0) -> VersionInfo:
        if len(data) - offset < _VERSION_ARGS.size + 1:
            raise MalformedDatagramError(
                f"version reply too short ({len(data) - offset} bytes)"
            )
        (p, physical, y, x, buffer_size, number, build_date) = (
            _VERSION_ARGS.unpack_from(data, offset)
        )
        try:
            text = bytes(data[offset + _VERSION_ARGS.size : -1]).decode("ascii")
        except UnicodeDecodeError as error:
            raise MalformedDatagramError(
                f"version string is not ASCII: {error}"
            ) from None
        if number < _VERSION_IN_STRING:
            version = (number // 100, number % 100, 0)
            version_string, name_hardware = text, text
        else:
            name_hardware, _, version_string = text.partition("\0")
            match = re.match(r"(\d+)\.(\d+)\.(\d+)", version_string)
            if match is None:
                raise MalformedDatagramError(f"version {version_string!r} is not N.N.N")
            version = (int(match[1]), int(match[2]), int(match[3]))
        name, slash, hardware = name_hardware.rstrip("\0").partition("/")
        if not slash:
            raise MalformedDatagramError(
                f"version name {name_hardware!r} is not NAME/HARDWARE"
            )
        return VersionInfo(
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
