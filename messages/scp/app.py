"""Application control: signals to running cores and counting their states."""

from __future__ import annotations

import struct

from messages.errors import InvalidArgumentError
from messages.scp.base import (
    AbstractSCPRequest,
    AbstractSCPResponse,
    CheckOKResponse,
    monitor_header,
)
from messages.scp.enums import CPUState, SCPCommand, SCPResult, Signal
from messages.scp.header import SCPRequestHeader
from messages.validate import check_chip, check_int

_ONE_WORD = struct.Struct("<I")
_ALL_CORES = 0xFFFF
_APP_MASK = 0xFF


class SendSignal(AbstractSCPRequest[CheckOKResponse]):
    """Send a signal to every core running ``app_id``, machine-wide."""

    __slots__ = ()
    #: A resent START or SYNC would reach the cores twice.
    may_resend = False

    def __init__(self, app_id: int, signal: Signal) -> None:
        app_id = check_int("app_id", app_id, 0, 255)
        if not isinstance(signal, Signal):
            raise InvalidArgumentError("signal", signal, "must be a Signal")
        super().__init__(
            monitor_header(self.DEFAULT_DEST_X_COORD, self.DEFAULT_DEST_Y_COORD),
            SCPRequestHeader(SCPCommand.CMD_SIG),
            argument_1=signal.signal_type.value,
            argument_2=(signal.value << 16) | (_APP_MASK << 8) | app_id,
            argument_3=_ALL_CORES,
        )

    def get_scp_response(self) -> CheckOKResponse:
        return CheckOKResponse("send signal", "CMD_SIG")


class CountStateResponse(AbstractSCPResponse):
    __slots__ = ("count",)

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def read_data_bytestring(self, data: bytes, offset: int) -> None:
        self.check_ok("count state", "CMD_COUNT", frozenset({SCPResult.RC_P2P_NOREPLY}))
        (self.count,) = _ONE_WORD.unpack_from(data, offset)


class CountState(AbstractSCPRequest[CountStateResponse]):
    """Count the cores of ``app_id`` that are in ``state``."""

    __slots__ = ()

    def __init__(self, x: int, y: int, app_id: int, state: CPUState) -> None:
        x, y = check_chip(x, y)
        app_id = check_int("app_id", app_id, 0, 255)
        if not isinstance(state, CPUState):
            raise InvalidArgumentError("state", state, "must be a CPUState")
        super().__init__(
            monitor_header(x, y),
            SCPRequestHeader(SCPCommand.CMD_COUNT),
            argument_1=app_id,
            argument_2=state.value,
        )

    def get_scp_response(self) -> CountStateResponse:
        return CountStateResponse()


# -- starting applications (CMD_AR, CMD_APP_COPY_RUN) --------------------------

#: arg1 of CMD_AR (arg3 of CMD_APP_COPY_RUN): a mask of cores (bit 0, the
#: monitor, is refused), a wait flag, and the app id in the top byte.
CORE_MASK = 0x0003_FFFF
WAIT_FLAG = 1 << 18
APP_ID_SHIFT = 24
#: CMD_APP_COPY_RUN's arg1: the link to copy over (0-5) and the checksum
#: of the image's words (29 bits; 0: unchecked); arg2 is its length.
COPY_LINK_MASK = 0x7
CHECKSUM_SHIFT = 3
CHECKSUM_MASK = 0x1FFF_FFFF


def image_checksum(image: bytes) -> int:
    """The sum of an image's little-endian words, as CMD_APP_COPY_RUN checks
    it (its length must be a multiple of 4)."""
    words = struct.unpack(f"<{len(image) // 4}I", image[: len(image) // 4 * 4])
    return int(sum(words)) & CHECKSUM_MASK


# -- signals (CMD_SIG's arg2, and CMD_NNP's) -----------------------------------


def signal_fields(data: int) -> tuple[int, int, int]:
    """(signal number, app id mask, app id) of a signal's data word: the
    signal reaches cores whose ``app_id & mask == app id``."""
    return (data >> 16) & 0xF, (data >> 8) & 0xFF, data & 0xFF


#: CMD_NNP sends a nearest-neighbour packet to every chip: arg1 is its key
#: (the NN command in bits 24-27), arg2 its data. NN_CMD_SIG0 with op
#: SIG0_APP (data bits 28-31) carries an application signal, which is how
#: SpiNNMan's AppStop stops an application everywhere.
NN_COMMAND_SHIFT = 24
NN_CMD_SIG0 = 0
SIG0_OP_SHIFT = 28
SIG0_APP = 5
