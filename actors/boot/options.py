"""What a boot is given: the image, the deadline and pacing, and where a
board's BMP is.

Plain data, checked when made, so that a bad option is an error before
anything is sent. ``BoardBMP`` names one board of a frame by its BMP's
address and its number there; ``parse_bmp`` reads SpiNNMan's
``HOST[:PORT][/BOARDS]`` form, boards as ``0-23`` or ``0,2,5``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from messages.bmp import (
    BMP_POST_POWER_ON_SLEEP_TIME,
    BMP_POWER_ON_TIMEOUT,
    MAX_BOARD,
    check_boards,
)
from messages.boot import DEFAULT_FRAME_GAP, BootImage, SystemVariableDefinition
from messages.errors import InvalidArgumentError
from messages.scp.layout import SCP_SCAMP_PORT
from messages.validate import check_int, check_seconds

#: Seconds a whole boot may take, power-on included, unless told: a real
#: board answers within about 6 s of its first frame, and a power-on
#: through its BMP adds up to 10 s for the reply and 5 s to settle.
DEFAULT_DEADLINE = 60.0


@dataclass(frozen=True)
class BoardBMP:
    """One board of a frame, by its BMP: SCP on ``host:port``, board
    ``board`` (0..23) there."""

    host: str
    board: int = 0
    port: int = SCP_SCAMP_PORT

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host.strip():
            raise InvalidArgumentError("bmp", self.host, "must be a host name")
        check_int("board", self.board, 0, MAX_BOARD)
        check_int("port", self.port, 0, 65535)

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def __str__(self) -> str:
        return f"BMP {self.host}:{self.port} board {self.board}"


def parse_boards(text: str) -> tuple[int, ...]:
    """``0-23``, ``0,2,5`` or ``3`` (SpiNNMan's forms, mixed freely):
    the board numbers, sorted, each 0..23."""
    boards: list[int] = []
    for part in text.split(","):
        found = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if found is None:
            raise InvalidArgumentError(
                "boards", text, "must be board numbers: 3, 0-23 or 0,2,5"
            )
        low = int(found[1])
        high = low if found[2] is None else int(found[2])
        if high < low:
            raise InvalidArgumentError("boards", text, f"{low}-{high} is empty")
        boards.extend(range(low, high + 1))
    return check_boards(boards)


def parse_bmp(
    text: str, port: int = SCP_SCAMP_PORT
) -> tuple[str, int, tuple[int, ...] | None]:
    """``HOST[:PORT][/BOARDS]``: the host, the port (``port`` unless
    given) and the boards (None if not given)."""
    where, slash, boards = text.partition("/")
    host, colon, number = where.rpartition(":")
    if not colon:
        host, number = where, ""
    if not host.strip():
        raise InvalidArgumentError("bmp", text, "must start with a host")
    if number:
        if not number.isdigit():
            raise InvalidArgumentError("bmp", text, f"{number!r} is not a port")
        port = check_int("port", int(number), 0, 65535)
    return host, port, (parse_boards(boards) if slash else None)


BMPGiven = BoardBMP | str | None


def board_bmp(given: BMPGiven) -> BoardBMP | None:
    """A BoardBMP from one, or from ``HOST[:PORT][/BOARD]``."""
    if given is None or isinstance(given, BoardBMP):
        return given
    if not isinstance(given, str):
        raise InvalidArgumentError(
            "bmp", given, "must be a BoardBMP or 'HOST[:PORT][/BOARD]'"
        )
    host, port, boards = parse_bmp(given)
    if boards is not None and len(boards) != 1:
        raise InvalidArgumentError("bmp", given, "names one board of the frame")
    return BoardBMP(host, 0 if boards is None else boards[0], port)


def _seconds(name: str, value: object, *, zero: bool = False) -> float:
    return float(check_seconds(name, value, 3600.0, zero=zero))


@dataclass(frozen=True)
class BootOptions:
    """How to bring a board up (see actors/boot/stages.py for the stages).

    ``image``: an SC&MP boot image (a path or a BootImage; None: the one an
    installed SpiNNMan ships). ``deadline``: seconds for the whole of it.
    ``bmp``: the board's BMP (a BoardBMP or ``"HOST[:PORT][/BOARD]"``),
    or for a Machine a mapping of board names to them; with one, a board
    still silent after ``passes`` boots is powered on and booted again.

    ``probe_timeout``: how long the first ``version`` may go unanswered
    before the board is taken for unbooted; ``poll_timeout``: each later
    ``version``'s wait; ``poll_interval``: the pause between asks while
    SC&MP says chip (255, 255); ``pass_timeout``: silence after a pass
    before every frame is sent again; ``gap``: seconds between frames;
    ``power_timeout``: the wait for a power-on's reply (a real BMP's comes
    once the FPGAs are loaded); ``power_settle``: the wait after it.
    ``extra_boot_values``: system variables over SpiNNMan's defaults.
    """

    image: BootImage | str | os.PathLike[str] | None = None
    deadline: float = DEFAULT_DEADLINE
    bmp: BMPGiven | Mapping[Any, BMPGiven] = None
    probe_timeout: float = 2.0
    poll_timeout: float = 0.25
    poll_interval: float = 0.1
    pass_timeout: float = 3.0
    passes: int = 3
    gap: float = DEFAULT_FRAME_GAP
    power_timeout: float = BMP_POWER_ON_TIMEOUT
    power_settle: float = BMP_POST_POWER_ON_SLEEP_TIME
    extra_boot_values: Mapping[SystemVariableDefinition, int | bytes] = field(
        default_factory=dict
    )

    def __post_init__(self) -> None:
        for name in ("deadline", "probe_timeout", "poll_timeout", "pass_timeout"):
            object.__setattr__(self, name, _seconds(name, getattr(self, name)))
        for name in ("poll_interval", "gap", "power_timeout", "power_settle"):
            object.__setattr__(
                self, name, _seconds(name, getattr(self, name), zero=True)
            )
        check_int("passes", self.passes, 1, 100)
        if isinstance(self.bmp, Mapping):
            bmps = {name: board_bmp(given) for name, given in self.bmp.items()}
            object.__setattr__(self, "bmp", bmps)
        else:
            object.__setattr__(self, "bmp", board_bmp(self.bmp))

    @staticmethod
    def of(given: BootOptions | bool | Mapping[str, Any] | None) -> BootOptions:
        """Options from what ``connect(boot=...)`` takes: True (the
        defaults), a BootOptions, or a mapping of its fields."""
        if given is True or given is None:
            return BootOptions()
        if isinstance(given, BootOptions):
            return given
        if isinstance(given, Mapping):
            known = {f.name for f in fields(BootOptions)}
            unknown = sorted(set(given) - known)
            if unknown:
                raise InvalidArgumentError(
                    "boot", unknown, f"unknown options; known: {sorted(known)}"
                )
            return BootOptions(**given)
        raise InvalidArgumentError(
            "boot", given, "must be True, a BootOptions or a mapping of its options"
        )

    def load_image(self) -> BootImage:
        """The image, checked (BootImageError, naming the file, if it is
        missing or bad): read before anything is sent."""
        if isinstance(self.image, BootImage):
            return self.image
        return BootImage.load(self.image)

    def bmp_of(self, name: Hashable | None = None) -> BoardBMP | None:
        """The BMP of a single board, or of a Machine's board ``name``."""
        if isinstance(self.bmp, Mapping):
            found = self.bmp.get(name)
            return found if isinstance(found, BoardBMP) else None
        return self.bmp if isinstance(self.bmp, BoardBMP) else None

    def with_image(self, image: BootImage) -> BootOptions:
        """The same options with the image loaded (shared by many boards)."""
        return replace(self, image=image)
