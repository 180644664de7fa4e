"""Reading, writing and filling a chip's memory, up to 256 bytes a request."""

from __future__ import annotations

from messages.errors import InvalidArgumentError, MalformedDatagramError
from messages.scp.base import (
    AbstractSCPRequest,
    AbstractSCPResponse,
    CheckOKResponse,
    monitor_header,
)
from messages.scp.enums import SCPCommand, read_type
from messages.scp.header import SCPRequestHeader
from messages.validate import (
    MAX_SCP_DATA,
    check_chip,
    check_core,
    check_span,
    check_u32,
)


class ReadMemoryResponse(AbstractSCPResponse):
    """The data of a read: kept as the datagram plus an offset, no copy."""

    __slots__ = ("size", "data", "offset", "length")

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self.data = b""
        self.offset = 0
        self.length = 0

    def read_data_bytestring(self, data: bytes, offset: int) -> None:
        self.check_ok("read memory", "CMD_READ")
        length = len(data) - offset
        if length != self.size:
            raise MalformedDatagramError(
                f"read of {self.size} bytes answered with {length}"
            )
        self.data, self.offset, self.length = data, offset, length

    @property
    def payload(self) -> bytes:
        return bytes(self.data[self.offset : self.offset + self.length])


class ReadMemory(AbstractSCPRequest[ReadMemoryResponse]):
    """Read 1..256 bytes from ``base_address`` on core (x, y, p)."""

    __slots__ = ()

    def __init__(
        self, coordinates: tuple[int, int, int], base_address: int, size: int
    ) -> None:
        x, y, p = _coordinates(coordinates)
        base_address, size = check_span(base_address, size)
        super().__init__(
            monitor_header(x, y, p),
            SCPRequestHeader(SCPCommand.CMD_READ),
            argument_1=base_address,
            argument_2=size,
            argument_3=read_type(base_address, size).value,
        )

    def get_scp_response(self) -> ReadMemoryResponse:
        assert self.argument_2 is not None
        return ReadMemoryResponse(self.argument_2)


class WriteMemory(AbstractSCPRequest[CheckOKResponse]):
    """Write 1..256 bytes to ``base_address`` on core (x, y, p)."""

    __slots__ = ()

    def __init__(
        self,
        coordinates: tuple[int, int, int],
        base_address: int,
        data: bytes | bytearray | memoryview,
    ) -> None:
        x, y, p = _coordinates(coordinates)
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InvalidArgumentError(
                "data", type(data).__name__, "must be bytes-like"
            )
        data = bytes(data)
        if not 1 <= len(data) <= MAX_SCP_DATA:
            raise InvalidArgumentError(
                "data", f"{len(data)} bytes", f"must be 1..{MAX_SCP_DATA} bytes"
            )
        base_address, size = check_span(base_address, len(data))
        super().__init__(
            monitor_header(x, y, p),
            SCPRequestHeader(SCPCommand.CMD_WRITE),
            argument_1=base_address,
            argument_2=size,
            argument_3=read_type(base_address, size).value,
            data=data,
        )

    def get_scp_response(self) -> CheckOKResponse:
        return CheckOKResponse("write to memory", "CMD_WRITE")


class FillRequest(AbstractSCPRequest[CheckOKResponse]):
    """Fill ``size`` bytes from a word-aligned address with a 32-bit word."""

    __slots__ = ()

    def __init__(self, x: int, y: int, base_address: int, data: int, size: int) -> None:
        x, y = check_chip(x, y)
        base_address = check_u32("base_address", base_address)
        data = check_u32("data", data)
        size = check_u32("size", size)
        if base_address % 4:
            raise InvalidArgumentError(
                "base_address", base_address, "must be word aligned"
            )
        if size == 0 or size % 4:
            raise InvalidArgumentError("size", size, "must be a positive multiple of 4")
        if base_address + size > 1 << 32:
            raise InvalidArgumentError("size", size, "the fill runs past 2**32")
        super().__init__(
            monitor_header(x, y),
            SCPRequestHeader(SCPCommand.CMD_FILL),
            argument_1=base_address,
            argument_2=data,
            argument_3=size,
        )

    def get_scp_response(self) -> CheckOKResponse:
        return CheckOKResponse("fill", "CMD_FILL")


def _coordinates(coordinates: tuple[int, int, int]) -> tuple[int, int, int]:
    try:
        x, y, p = coordinates
    except (TypeError, ValueError):
        raise InvalidArgumentError(
            "coordinates", coordinates, "must be (x, y, p)"
        ) from None
    x, y = check_chip(x, y)
    return x, y, check_core(p)
