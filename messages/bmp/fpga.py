"""A board's FPGA registers, one 32-bit word at a time, through its BMP.

The register address is rounded down to a word, as SpiNNMan documents and
does; the FPGA is 0, 1 or 2 (the BMP refuses any other with RC_ARG).
"""

from __future__ import annotations

import struct

from messages.bmp.base import BMPOKResponse, BMPRequest, BMPResponse, payload
from messages.bmp.enums import N_FPGAS
from messages.scp.enums import SCPCommand
from messages.scp.header import SCPRequestHeader
from messages.validate import check_int, check_u32

_ONE_WORD = struct.Struct("<I")
_WORD_MASK = 0xFFFF_FFFC


class ReadFPGARegisterResponse(BMPResponse[int]):
    __slots__ = ()

    def _parse_payload(self, data: bytes, offset: int) -> int:
        word: int = _ONE_WORD.unpack(payload(data, offset, 4, self.operation))[0]
        return word

    @property
    def fpga_register(self) -> int:
        return self.value


class ReadFPGARegister(BMPRequest[ReadFPGARegisterResponse]):
    """Read register ``register`` of FPGA ``fpga_num`` on ``board``."""

    __slots__ = ()

    def __init__(self, fpga_num: int, register: int, board: int) -> None:
        super().__init__(
            board,
            SCPRequestHeader(SCPCommand.CMD_LINK_READ),
            argument_1=check_u32("register", register) & _WORD_MASK,
            argument_2=4,
            argument_3=check_int("fpga_num", fpga_num, 0, N_FPGAS - 1),
        )

    def get_scp_response(self) -> ReadFPGARegisterResponse:
        return ReadFPGARegisterResponse(
            "Read FPGA register", SCPCommand.CMD_LINK_READ, self.board
        )


class WriteFPGARegister(BMPRequest[BMPOKResponse]):
    """Write the 32-bit ``value`` to register ``address`` of FPGA
    ``fpga_num`` on ``board``."""

    __slots__ = ()

    def __init__(self, fpga_num: int, address: int, value: int, board: int) -> None:
        super().__init__(
            board,
            SCPRequestHeader(SCPCommand.CMD_LINK_WRITE),
            argument_1=check_u32("address", address) & _WORD_MASK,
            argument_2=4,
            argument_3=check_int("fpga_num", fpga_num, 0, N_FPGAS - 1),
            data=_ONE_WORD.pack(check_u32("value", value)),
        )

    def get_scp_response(self) -> BMPOKResponse:
        return BMPOKResponse(
            "Send FPGA register write", SCPCommand.CMD_LINK_WRITE, self.board
        )
