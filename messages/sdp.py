"""SDP, the datagram every SCP request and reply travels in.

An SDP datagram on UDP is 2 padding bytes, an 8-byte header, then data. The
classes keep SpiNNMan's names and mutability (a connection fills in the
source fields just before sending) so code written for SpiNNMan reads the
same here.
"""

from __future__ import annotations

import struct
from enum import Enum

from messages.errors import MalformedDatagramError
from messages.validate import check_int

SDP_HEADER_SIZE = 8
#: What a host puts in the source fields of a request.
HOST_TAG = 0xFF
HOST_PORT = 7
HOST_CPU = 31

_HEADER = struct.Struct("<8B")


class SDPFlag(Enum):
    REPLY_NOT_EXPECTED = 0x07
    REPLY_EXPECTED = 0x87
    REPLY_NOT_EXPECTED_NO_P2P = 0x07 | 0x20
    REPLY_EXPECTED_NO_P2P = 0x87 | 0x20

    @property
    def reply_expected(self) -> bool:
        return bool(self.value & 0x80)


_FLAGS = {flag.value: flag for flag in SDPFlag}


class SDPHeader:
    """The 8-byte SDP header; source fields stay None until sent."""

    __slots__ = (
        "flags",
        "tag",
        "destination_port",
        "destination_cpu",
        "destination_chip_x",
        "destination_chip_y",
        "source_port",
        "source_cpu",
        "source_chip_x",
        "source_chip_y",
    )

    def __init__(
        self,
        flags: SDPFlag,
        tag: int | None = None,
        destination_port: int = 0,
        destination_cpu: int = 0,
        destination_chip_x: int = 0,
        destination_chip_y: int = 0,
        source_port: int | None = None,
        source_cpu: int | None = None,
        source_chip_x: int | None = None,
        source_chip_y: int | None = None,
    ) -> None:
        if not isinstance(flags, SDPFlag):
            raise TypeError(f"flags={flags!r}: must be an SDPFlag")
        self.flags = flags
        self.tag = _optional("tag", tag, 255)
        self.destination_port = check_int("destination_port", destination_port, 0, 7)
        self.destination_cpu = check_int("destination_cpu", destination_cpu, 0, 31)
        self.destination_chip_x = check_int(
            "destination_chip_x", destination_chip_x, 0, 255
        )
        self.destination_chip_y = check_int(
            "destination_chip_y", destination_chip_y, 0, 255
        )
        self.source_port = _optional("source_port", source_port, 7)
        self.source_cpu = _optional("source_cpu", source_cpu, 31)
        self.source_chip_x = _optional("source_chip_x", source_chip_x, 255)
        self.source_chip_y = _optional("source_chip_y", source_chip_y, 255)

    def update_for_send(self, source_x: int, source_y: int) -> None:
        """Stamp the fields a host fills in on every request it sends."""
        self.tag = HOST_TAG
        self.source_port = HOST_PORT
        self.source_cpu = HOST_CPU
        self.source_chip_x = source_x
        self.source_chip_y = source_y

    def get_physical_cpu_id(self) -> str:
        """The destination's physical core, as SpiNNMan's error reports
        name it (its processes call this on a failed request's header).
        Only a map of the machine knows which physical core a virtual one
        is, and messages has none: "", which is what SpiNNMan says when it
        has no machine either."""
        return ""

    @property
    def bytestring(self) -> bytes:
        if (
            self.tag is None
            or self.source_port is None
            or self.source_cpu is None
            or self.source_chip_x is None
            or self.source_chip_y is None
        ):
            raise ValueError("SDP header has no source yet: call update_for_send first")
        return _HEADER.pack(
            self.flags.value,
            self.tag,
            (self.destination_port << 5) | self.destination_cpu,
            (self.source_port << 5) | self.source_cpu,
            self.destination_chip_y,
            self.destination_chip_x,
            self.source_chip_y,
            self.source_chip_x,
        )

    @staticmethod
    def from_bytestring(data: bytes, offset: int) -> SDPHeader:
        if len(data) - offset < SDP_HEADER_SIZE:
            raise MalformedDatagramError(
                f"SDP header needs {SDP_HEADER_SIZE} bytes at offset "
                f"{offset}, datagram has {len(data)}"
            )
        (flags, tag, dest, source, dest_y, dest_x, source_y, source_x) = (
            _HEADER.unpack_from(data, offset)
        )
        flag = _FLAGS.get(flags)
        if flag is None:
            raise MalformedDatagramError(f"unknown SDP flags 0x{flags:02x}")
        return SDPHeader(
            flag,
            tag,
            dest >> 5,
            dest & 0x1F,
            dest_x,
            dest_y,
            source >> 5,
            source & 0x1F,
            source_x,
            source_y,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SDPHeader):
            return NotImplemented
        return all(
            getattr(self, name) == getattr(other, name) for name in self.__slots__
        )

    def __repr__(self) -> str:
        return (
            f"SDPHeader({self.flags.name}, tag={self.tag}, "
            f"dest={self.destination_chip_x},{self.destination_chip_y},"
            f"{self.destination_cpu}:{self.destination_port}, "
            f"source={self.source_chip_x},{self.source_chip_y},"
            f"{self.source_cpu}:{self.source_port})"
        )


class SDPMessage:
    """An SDP header and the bytes after it (kept zero-copy as data+offset)."""

    __slots__ = ("sdp_header", "data", "offset")

    def __init__(
        self, sdp_header: SDPHeader, data: bytes | None = None, offset: int = 0
    ) -> None:
        self.sdp_header = sdp_header
        self.data = data
        self.offset = offset

    @property
    def payload(self) -> bytes:
        return b"" if self.data is None else bytes(self.data[self.offset :])

    @property
    def bytestring(self) -> bytes:
        return self.sdp_header.bytestring + self.payload

    @staticmethod
    def from_bytestring(data: bytes, offset: int) -> SDPMessage:
        header = SDPHeader.from_bytestring(data, offset)
        return SDPMessage(header, data, offset + SDP_HEADER_SIZE)

    def __repr__(self) -> str:
        return f"SDPMessage({self.sdp_header!r}, {len(self.payload)} bytes)"


def _optional(name: str, value: int | None, high: int) -> int | None:
    return None if value is None else check_int(name, value, 0, high)
