"""What every BMP request and response shares.

A BMP request is an SCP request to chip (0, 0) whose destination CPU is the
number of the board it is for (the lowest, for a command that names
several in a board mask). The BMP answers RC_ROUTE for a board that is not
in its frame; that becomes BMPBoardAbsentError, which names the board.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Generic, TypeVar

from messages.bmp.enums import MAX_BOARD, MAX_DELAY_MS
from messages.errors import (
    InvalidArgumentError,
    MalformedDatagramError,
    SpinnactorsError,
    UnexpectedResponseCodeError,
)
from messages.scp.base import AbstractSCPRequest, AbstractSCPResponse
from messages.scp.enums import SCPCommand, SCPResult
from messages.scp.header import SCPRequestHeader
from messages.sdp import SDPFlag, SDPHeader
from messages.validate import check_int

#: One board, or several of the same frame.
Boards = int | Iterable[int]
T = TypeVar("T")


def check_boards(boards: Boards) -> tuple[int, ...]:
    """The boards named, sorted, each checked; at least one."""
    if isinstance(boards, int):
        return (check_int("board", boards, 0, MAX_BOARD),)
    try:
        named = list(boards)
    except TypeError:
        raise InvalidArgumentError(
            "boards", boards, "must be a board number or some of them"
        ) from None
    if not named:
        raise InvalidArgumentError("boards", named, "name at least one board")
    return tuple(sorted({check_int("board", board, 0, MAX_BOARD) for board in named}))


def get_first_board(boards: Boards) -> int:
    """The board a request naming ``boards`` is addressed to: the lowest."""
    return check_boards(boards)[0]


def get_board_mask(boards: Boards) -> int:
    """A bit per board, as CMD_POWER, CMD_RESET and CMD_LED take them."""
    mask = 0
    for board in check_boards(boards):
        mask |= 1 << board
    return mask


def delay_argument(delay: float) -> int:
    """Seconds between one board and the next, as argument 1's top 16 bits
    carry them (milliseconds, truncated as SpiNNMan truncates them)."""
    if (
        isinstance(delay, bool)
        or not isinstance(delay, (int, float))
        or not math.isfinite(delay)
    ):
        raise InvalidArgumentError("delay", delay, "must be seconds")
    milliseconds = int(delay * 1000)
    if not 0 <= milliseconds <= MAX_DELAY_MS:
        raise InvalidArgumentError(
            "delay", delay, f"must be 0 to {MAX_DELAY_MS / 1000} seconds"
        )
    return milliseconds << 16


class BMPBoardAbsentError(UnexpectedResponseCodeError):
    """The BMP has no such board in its frame (it answered RC_ROUTE)."""

    def __init__(self, operation: str, command: str, board: int) -> None:
        SpinnactorsError.__init__(
            self,
            f"{operation} ({command}) failed: the BMP has no board {board} in "
            f"its frame (it answered RC_ROUTE)",
        )
        self.operation = operation
        self.command = command
        self.result = SCPResult.RC_ROUTE
        self.board = board

    def __reduce__(self) -> tuple[type, tuple[str, str, int]]:
        return type(self), (self.operation, self.command, self.board)


class BMPResponse(AbstractSCPResponse, Generic[T]):
    """A BMP's reply: OK and a payload, or an error naming the board."""

    __slots__ = ("operation", "command", "board", "_value")

    def __init__(self, operation: str, command: SCPCommand, board: int = 0) -> None:
        super().__init__()
        self.operation = operation
        self.command = command
        self.board = board
        self._value: T | None = None

    def read_data_bytestring(self, data: bytes, offset: int) -> None:
        if self.result is SCPResult.RC_ROUTE:
            raise BMPBoardAbsentError(self.operation, self.command.name, self.board)
        self.check_ok(self.operation, self.command.name)
        self._value = self._parse_payload(data, offset)

    def _parse_payload(self, data: bytes, offset: int) -> T:
        raise NotImplementedError

    @property
    def value(self) -> T:
        """What the reply carried; ValueError before one has been read."""
        if self._value is None:
            raise ValueError("no reply has been read yet")
        return self._value


class BMPOKResponse(BMPResponse[bool]):
    """A reply that carries nothing but OK."""

    __slots__ = ()

    def _parse_payload(self, data: bytes, offset: int) -> bool:
        return True


def payload(data: bytes, offset: int, size: int, what: str) -> bytes:
    """``size`` bytes of a reply from ``offset``, or MalformedDatagramError."""
    if len(data) - offset < size:
        raise MalformedDatagramError(
            f"{what}: reply carries {max(len(data) - offset, 0)} bytes, {size} expected"
        )
    return bytes(data[offset : offset + size])


R = TypeVar("R", bound=AbstractSCPResponse)


class BMPRequest(AbstractSCPRequest[R]):
    """An SCP request for the BMP of the lowest of ``boards``."""

    __slots__ = ()

    def __init__(
        self,
        boards: Boards,
        scp_request_header: SCPRequestHeader,
        argument_1: int | None = None,
        argument_2: int | None = None,
        argument_3: int | None = None,
        data: bytes | None = None,
    ) -> None:
        header = SDPHeader(
            flags=SDPFlag.REPLY_EXPECTED,
            destination_port=0,
            destination_cpu=get_first_board(boards),
            destination_chip_x=0,
            destination_chip_y=0,
        )
        super().__init__(
            header, scp_request_header, argument_1, argument_2, argument_3, data
        )

    #: SpiNNMan's helpers, where SpiNNMan's subclasses look for them.
    get_first_board = staticmethod(get_first_board)
    get_board_mask = staticmethod(get_board_mask)

    @property
    def board(self) -> int:
        """The board the request is addressed to."""
        return self.sdp_header.destination_cpu

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(board={self.board} "
            f"seq={self.scp_request_header.sequence})"
        )
