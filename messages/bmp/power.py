"""Power, reset and LEDs: what a BMP does to whole boards.

Each takes a board mask in argument 2 and, in the top 16 bits of argument
1, a delay in milliseconds that the BMP multiplies by each board's number
(so a frame's boards switch one after another, not all at once). None of
them may be resent: a second power-on or reset puts a board that has since
been booted back in its ROM, and a second toggle undoes the first.
"""

from __future__ import annotations

from collections.abc import Iterable

from messages.bmp.base import (
    BMPOKResponse,
    BMPRequest,
    Boards,
    delay_argument,
    get_board_mask,
)
from messages.bmp.enums import N_LEDS, LEDAction, PowerCommand, ResetAction
from messages.errors import InvalidArgumentError
from messages.scp.enums import SCPCommand
from messages.scp.header import SCPRequestHeader
from messages.validate import check_int


class SetPower(BMPRequest[BMPOKResponse]):
    """Power ``boards`` of a frame on or off (SpiNNMan's arguments).

    Sent to board 0's BMP unless told (SpiNNMan's note: some BMPs ignore a
    power command sent to another). A power-on is answered only once board
    0's FPGAs are loaded, seconds later (BMP_POWER_ON_TIMEOUT); a board
    powered on is back in its boot ROM, one powered off is silent.
    """

    __slots__ = ()
    may_resend = False

    def __init__(
        self,
        power_command: PowerCommand,
        boards: Boards,
        *,
        delay: float = 0.0,
        board_to_send_to: int = 0,
    ) -> None:
        if not isinstance(power_command, PowerCommand):
            raise InvalidArgumentError(
                "power_command", power_command, "must be a PowerCommand"
            )
        super().__init__(
            board_to_send_to,
            SCPRequestHeader(SCPCommand.CMD_BMP_POWER),
            argument_1=delay_argument(delay) | power_command.value,
            argument_2=get_board_mask(boards),
        )

    def get_scp_response(self) -> BMPOKResponse:
        return BMPOKResponse("powering request", SCPCommand.CMD_BMP_POWER, self.board)


class ResetBoards(BMPRequest[BMPOKResponse]):
    """Hold, release or pulse the reset of ``boards``' SpiNNaker chips (and
    their FPGAs' too with ``fpgas``); a pulsed board is back in its ROM."""

    __slots__ = ()
    may_resend = False

    def __init__(
        self,
        action: ResetAction,
        boards: Boards,
        *,
        fpgas: bool = False,
        delay: float = 0.0,
    ) -> None:
        if not isinstance(action, ResetAction):
            raise InvalidArgumentError("action", action, "must be a ResetAction")
        super().__init__(
            boards,
            SCPRequestHeader(SCPCommand.CMD_RESET),
            argument_1=delay_argument(delay) | int(bool(fpgas)) << 2 | action.value,
            argument_2=get_board_mask(boards),
        )

    def get_scp_response(self) -> BMPOKResponse:
        return BMPOKResponse("reset boards", SCPCommand.CMD_RESET, self.board)


class BMPSetLed(BMPRequest[BMPOKResponse]):
    """Turn LEDs 0..7 of ``boards`` on, off or over (SpiNNMan's arguments)."""

    __slots__ = ()

    def __init__(
        self, led: int | Iterable[int], action: LEDAction, boards: Boards
    ) -> None:
        if not isinstance(action, LEDAction):
            raise InvalidArgumentError("action", action, "must be an LEDAction")
        leds = _leds(led)
        argument_1 = 0
        for number in leds:
            argument_1 |= action.value << (2 * number)
        super().__init__(
            boards,
            SCPRequestHeader(SCPCommand.CMD_LED),
            argument_1=argument_1,
            argument_2=get_board_mask(boards),
        )

    @property
    def may_resend(self) -> bool:  # type: ignore[override]
        """A toggle sent twice is no toggle; on and off are the same twice."""
        assert self.argument_1 is not None
        fields = (self.argument_1 >> (2 * led) & 3 for led in range(N_LEDS))
        return LEDAction.TOGGLE.value not in fields

    def get_scp_response(self) -> BMPOKResponse:
        return BMPOKResponse("Set the LEDs of a board", SCPCommand.CMD_LED, self.board)


def _leds(led: int | Iterable[int]) -> tuple[int, ...]:
    """The LED numbers named, each 0..7, at least one."""
    if isinstance(led, int):
        return (check_int("led", led, 0, N_LEDS - 1),)
    try:
        named = list(led)
    except TypeError:
        raise InvalidArgumentError(
            "led", led, "must be an LED number or some"
        ) from None
    if not named:
        raise InvalidArgumentError("led", named, "name at least one LED")
    return tuple(sorted({check_int("led", number, 0, N_LEDS - 1) for number in named}))
