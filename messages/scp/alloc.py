"""Allocating and freeing blocks of a chip's SDRAM heap."""

from __future__ import annotations

import struct

from messages.errors import InvalidArgumentError, UnexpectedResponseCodeError
from messages.scp.base import (
    AbstractSCPRequest,
    AbstractSCPResponse,
    monitor_header,
)
from messages.scp.enums import AllocFree, SCPCommand
from messages.scp.header import SCPRequestHeader
from messages.validate import check_chip, check_int, check_u32

_ONE_WORD = struct.Struct("<I")
#: Asks the monitor to answer a repeat of a tagged allocation with the
#: block it already gave, which is what makes the request safe to resend.
FLAG_RETRY_TAG = 4


class SDRAMAllocResponse(AbstractSCPResponse):
    __slots__ = ("size", "base_address")

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self.base_address = 0

    def read_data_bytestring(self, data: bytes, offset: int) -> None:
        self.check_ok("SDRAM allocation", "CMD_ALLOC")
        (self.base_address,) = _ONE_WORD.unpack_from(data, offset)
        if self.base_address == 0:
            raise UnexpectedResponseCodeError(
                f"SDRAM allocation of {self.size} bytes",
                "CMD_ALLOC",
                "no room (address 0)",
            )


class SDRAMAlloc(AbstractSCPRequest[SDRAMAllocResponse]):
    """Allocate ``size`` bytes of SDRAM on chip (x, y) for ``app_id``."""

    __slots__ = ("size", "may_resend")

    def __init__(
        self,
        x: int,
        y: int,
        app_id: int,
        size: int,
        tag: int | None = None,
        retry_tag: bool = True,
    ) -> None:
        x, y = check_chip(x, y)
        app_id = check_int("app_id", app_id, 0, 255)
        size = check_u32("size", size)
        if size == 0:
            raise InvalidArgumentError("size", size, "must be positive")
        if tag is not None:
            check_int("tag", tag, 0, 255)
        flag = FLAG_RETRY_TAG if retry_tag and tag is not None else 0
        super().__init__(
            monitor_header(x, y),
            SCPRequestHeader(SCPCommand.CMD_ALLOC),
            argument_1=(flag << 16) | (app_id << 8) | AllocFree.ALLOC_SDRAM.value,
            argument_2=size,
            argument_3=tag or 0,
        )
        self.size = size
        self.may_resend = bool(flag)

    def get_scp_response(self) -> SDRAMAllocResponse:
        return SDRAMAllocResponse(self.size)


class SDRAMDeAllocResponse(AbstractSCPResponse):
    __slots__ = ("read_n_blocks_freed", "number_of_blocks_freed")

    def __init__(self, read_n_blocks_freed: bool = False) -> None:
        super().__init__()
        self.read_n_blocks_freed = read_n_blocks_freed
        self.number_of_blocks_freed = 0

    def read_data_bytestring(self, data: bytes, offset: int) -> None:
        self.check_ok("SDRAM deallocation", "CMD_ALLOC")
        if self.read_n_blocks_freed:
            (self.number_of_blocks_freed,) = _ONE_WORD.unpack_from(data, offset)
            if self.number_of_blocks_freed == 0:
                raise UnexpectedResponseCodeError(
                    "SDRAM deallocation by app id", "CMD_ALLOC", "no blocks freed"
                )


class SDRAMDeAlloc(AbstractSCPRequest[SDRAMDeAllocResponse]):
    """Free one block by address, or every block of an application."""

    __slots__ = ("read_n_blocks_freed",)
    #: A second free of the same block fails, or frees a newer one.
    may_resend = False

    def __init__(
        self,
        x: int,
        y: int,
        *,
        app_id: int | None = None,
        base_address: int | None = None,
    ) -> None:
        x, y = check_chip(x, y)
        if (app_id is None) == (base_address is None):
            raise InvalidArgumentError(
                "app_id/base_address",
                (app_id, base_address),
                "give exactly one of them",
            )
        if base_address is not None:
            argument_1 = AllocFree.FREE_SDRAM_BY_POINTER.value
            argument_2: int | None = check_u32("base_address", base_address)
        else:
            assert app_id is not None
            argument_1 = (
                check_int("app_id", app_id, 0, 255) << 8
            ) | AllocFree.FREE_SDRAM_BY_APP_ID.value
            argument_2 = None
        super().__init__(
            monitor_header(x, y),
            SCPRequestHeader(SCPCommand.CMD_ALLOC),
            argument_1=argument_1,
            argument_2=argument_2,
        )
        self.read_n_blocks_freed = base_address is None

    def get_scp_response(self) -> SDRAMDeAllocResponse:
        return SDRAMDeAllocResponse(self.read_n_blocks_freed)
