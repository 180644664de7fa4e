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
