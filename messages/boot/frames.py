"""Boot frames: what a host and a board's boot ROM say to each other.

A board fresh from power-on runs only its boot ROM, which listens on UDP
port 54321 for frames that carry the SC&MP image, and says hello from that
port. A frame is not SDP (no padding, no SDP header): an 18-byte
big-endian header ``>HIIII`` (protocol version 1, opcode, three operands)
then up to 256 32-bit data words, big-endian too, so a little-endian image
file goes on the wire with each word byte-swapped. The ROM never replies.

SpiNNMan's ``SpinnakerBootMessage.from_bytestring`` reads the header in
native order from byte 2 (``2xIIII``), which misreads every real frame;
this one reads what ``bytestring`` writes.
"""

from __future__ import annotations

import struct
from enum import Enum

from messages.errors import InvalidArgumentError, MalformedDatagramError
from messages.validate import check_u32

#: The UDP port a boot ROM listens on and says hello from.
BOOT_PORT = 54321
#: The protocol version every boot frame starts with.
BOOT_MESSAGE_VERSION = 1
#: Version, opcode and three operands, big-endian.
BOOT_HEADER = struct.Struct(">HIIII")
#: The most data one frame carries: 256 words.
MAX_DATA_WORDS = 256
MAX_DATA_BYTES = 4 * MAX_DATA_WORDS


class SpinnakerBootOpCode(Enum):
    """What a boot frame asks for (SpiNNMan's names and values)."""

    #: Sent by an unbooted board, about every 4 s, from and to port 54321.
    HELLO = 0x41
    #: Start of an image: operand 3 is the number of blocks less one.
    FLOOD_FILL_START = 0x1
    #: One 1024-byte block: operand 1 is ``(255 << 8) | block``.
    FLOOD_FILL_BLOCK = 0x3
    #: Run the image once every block is in: operand 1 is 1.
    FLOOD_FILL_CONTROL = 0x5


_OPCODES = {opcode.value: opcode for opcode in SpinnakerBootOpCode}


def swap_words(data: bytes | bytearray | memoryview) -> bytes:
    """Each 4-byte word reversed: a little-endian image's words as they go
    on the wire, and back (the swap is its own inverse)."""
    data = bytes(data)
    if len(data) % 4:
        raise InvalidArgumentError(
            "data", f"{len(data)} bytes", "must be whole 32-bit words"
        )
    count = len(data) // 4
    return struct.pack(f">{count}I", *struct.unpack(f"<{count}I", data))


class SpinnakerBootMessage:
    """One boot frame, made as SpiNNMan makes it.

    ``data`` is what goes on the wire after the header (already
    byte-swapped, as SpiNNMan's ``SpinnakerBootMessages`` hands it over),
    taken from ``offset``; None for a frame with no data.
    """

    __slots__ = ("opcode", "operand_1", "operand_2", "operand_3", "data")

    def __init__(
        self,
        opcode: SpinnakerBootOpCode,
        operand_1: int,
        operand_2: int,
        operand_3: int,
        data: bytes | bytearray | memoryview | None = None,
        offset: int = 0,
    ) -> None:
        if not isinstance(opcode, SpinnakerBootOpCode):
            raise InvalidArgumentError(
                "opcode", opcode, "must be a SpinnakerBootOpCode"
            )
        self.opcode = opcode
        self.operand_1 = check_u32("operand_1", operand_1)
        self.operand_2 = check_u32("operand_2", operand_2)
        self.operand_3 = check_u32("operand_3", operand_3)
        payload = None if data is None else bytes(data[offset:])
        if payload is not None and (len(payload) > MAX_DATA_BYTES or len(payload) % 4):
            raise InvalidArgumentError(
                "data",
                f"{len(payload)} bytes",
                f"a boot frame carries whole words, at most {MAX_DATA_BYTES} bytes",
            )
        self.data: bytes | None = payload or None

    @property
    def bytestring(self) -> bytes:
        header = BOOT_HEADER.pack(
            BOOT_MESSAGE_VERSION,
            self.opcode.value,
            self.operand_1,
            self.operand_2,
            self.operand_3,
        )
        return header if self.data is None else header + self.data

    @staticmethod
    def from_bytestring(
        data: bytes | bytearray | memoryview, offset: int = 0
    ) -> SpinnakerBootMessage:
        """Parse a frame as a boot ROM reads it.

        MalformedDatagramError for anything else: short, another protocol
        version, an unknown opcode, or data that is not whole words or is
        more than 256 of them.
        """
        data = bytes(data)
        length = len(data) - offset
        if length < BOOT_HEADER.size:
            raise MalformedDatagramError(
                f"boot frame of {length} bytes; the header alone is {BOOT_HEADER.size}"
            )
        version, code, operand_1, operand_2, operand_3 = BOOT_HEADER.unpack_from(
            data, offset
        )
        if version != BOOT_MESSAGE_VERSION:
            raise MalformedDatagramError(
                f"boot frame of protocol version {version}; "
                f"only {BOOT_MESSAGE_VERSION} exists"
            )
        opcode = _OPCODES.get(code)
        if opcode is None:
            raise MalformedDatagramError(f"unknown boot opcode 0x{code:x}")
        size = length - BOOT_HEADER.size
        if size % 4 or size > MAX_DATA_BYTES:
            raise MalformedDatagramError(
                f"boot frame with {size} bytes of data; "
                f"whole words, at most {MAX_DATA_BYTES} bytes, expected"
            )
        return SpinnakerBootMessage(
            opcode,
            operand_1,
            operand_2,
            operand_3,
            data,
            offset + BOOT_HEADER.size,
        )

    @property
    def block(self) -> int:
        """The block number of a FLOOD_FILL_BLOCK frame (operand 1's low byte)."""
        return self.operand_1 & 0xFF

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SpinnakerBootMessage):
            return NotImplemented
        return self.bytestring == other.bytestring

    def __hash__(self) -> int:
        return hash(self.bytestring)

    def __repr__(self) -> str:
        size = 0 if self.data is None else len(self.data)
        return (
            f"SpinnakerBootMessage({self.opcode.name}, 0x{self.operand_1:x}, "
            f"0x{self.operand_2:x}, 0x{self.operand_3:x}, {size} bytes)"
        )
