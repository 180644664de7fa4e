"""Large reads and writes as runs of 256-byte SCP datagrams.

A transfer of megabytes is hundreds of thousands of requests; building a
ReadMemory object for each would cost more than sending it. These builders
pack the same bytes (tests hold them to ReadMemory and WriteMemory) straight
from a struct, ready for a sequence number to be patched in at
layout.SEQUENCE_OFFSET. The arguments are checked once per transfer, not
per chunk.
"""

from __future__ import annotations

from collections.abc import Iterator

from messages.errors import InvalidArgumentError
from messages.scp.enums import SCPCommand, read_type
from messages.scp.header import SCPRequestHeader
from messages.scp.layout import ARGUMENTS, PADDING
from messages.sdp import SDPFlag, SDPHeader
from messages.validate import (
    MAX_SCP_DATA,
    MAX_U32,
    check_chip,
    check_core,
    check_u32,
)

#: The access width read_type() picks, by the low bits of address | size.
_READ_TYPES = tuple(read_type(low, 4).value for low in range(4))


def chunks(address: int, length: int) -> Iterator[tuple[int, int, int]]:
    """(offset into the transfer, address, size) of each <=256-byte piece."""
    for offset in range(0, length, MAX_SCP_DATA):
        yield offset, address + offset, min(MAX_SCP_DATA, length - offset)


def check_transfer(x: int, y: int, p: int, address: int, length: int) -> None:
    """Raise InvalidArgumentError unless the span fits in 32-bit memory."""
    check_chip(x, y)
    check_core(p)
    check_u32("address", address)
    if isinstance(length, bool) or not isinstance(length, int) or length < 0:
        raise InvalidArgumentError("length", length, "must be a non-negative integer")
    if address + length > MAX_U32 + 1:
        raise InvalidArgumentError(
            "address", address, f"a {length}-byte transfer runs past 2**32"
        )


class ChunkBuilder:
    """Packs read or write datagrams for one core, as a connection sends
    them (source chip ``source_x, source_y``, sequence 0)."""

    __slots__ = ("_read_head", "_write_head")

    def __init__(
        self, x: int, y: int, p: int, source_x: int = 255, source_y: int = 255
    ) -> None:
        header = SDPHeader(
            SDPFlag.REPLY_EXPECTED,
            destination_cpu=p,
            destination_chip_x=x,
            destination_chip_y=y,
        )
        header.update_for_send(source_x, source_y)
        head = PADDING + header.bytestring
        self._read_head = head + SCPRequestHeader(SCPCommand.CMD_READ).bytestring
        self._write_head = head + SCPRequestHeader(SCPCommand.CMD_WRITE).bytestring

    def read(self, address: int, size: int) -> bytearray:
        """The datagram of ReadMemory((x, y, p), address, size)."""
        datagram = bytearray(self._read_head)
        datagram += ARGUMENTS.pack(address, size, _READ_TYPES[(address | size) & 3])
        return datagram

    def write(self, address: int, data: bytes | memoryview) -> bytearray:
        """The datagram of WriteMemory((x, y, p), address, data)."""
        size = len(data)
        datagram = bytearray(self._write_head)
        datagram += ARGUMENTS.pack(address, size, _READ_TYPES[(address | size) & 3])
        datagram += data
        return datagram
