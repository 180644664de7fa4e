"""The BMPs whose boards' sensors /metrics exports, read when scraped.

``watch_bmp`` registers a frame's BMP (and which of its boards: all those
on its CAN bus unless told); ``read_watched`` reads every board of every
BMP registered, now, over UDP, bounded: a BMP that does not answer is
marked down and its other boards are not asked until the next scrape.
Nothing runs between scrapes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType

from actors.boot.bmp import BMPRefused, BMPSilent, frame_boards, read_sensors
from messages.bmp import ADCInfo, check_boards
from messages.scp.layout import SCP_SCAMP_PORT

#: Seconds a scrape waits for one BMP reply (no resend: the next scrape
#: asks again).
SCRAPE_TIMEOUT = 0.5


@dataclass(frozen=True)
class SensorReading:
    """One board's sensors as its BMP read them (None: it could not)."""

    #: "host:port" of the BMP.
    bmp: str
    board: int
    sensors: ADCInfo | None
    error: str | None = None

    @property
    def label(self) -> str:
        """How /metrics names the board: its BMP and its number there."""
        return f"{self.bmp}/{self.board}"


@dataclass(frozen=True)
class BMPStatus:
    """What one scrape made of one BMP."""

    bmp: str
    up: bool
    readings: tuple[SensorReading, ...]


class BMPWatch:
    """A BMP registered with /metrics; ``close()`` (or leaving a ``with``)
    stops its export."""

    def __init__(self, address: tuple[str, int], boards: tuple[int, ...] | None):
        self.address = address
        self.boards = boards

    @property
    def text(self) -> str:
        return "{}:{}".format(*self.address)

    def read(self, timeout: float = SCRAPE_TIMEOUT) -> BMPStatus:
        """Every board's sensors now; down at the first silence."""
        try:
            boards = self.boards or frame_boards(self.address, timeout=timeout)
        except (BMPSilent, BMPRefused):
            return BMPStatus(self.text, False, ())
        readings = []
        for board in boards:
            try:
                sensors = read_sensors(self.address, board, timeout=timeout, retries=0)
            except BMPSilent as error:
                readings.append(SensorReading(self.text, board, None, str(error)))
                return BMPStatus(self.text, False, tuple(readings))
            except BMPRefused as error:
                readings.append(SensorReading(self.text, board, None, str(error)))
                continue
            readings.append(SensorReading(self.text, board, sensors))
        return BMPStatus(self.text, True, tuple(readings))

    def close(self) -> None:
        with _LOCK:
            if self in _WATCHED:
                _WATCHED.remove(self)

    def __enter__(self) -> BMPWatch:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"BMPWatch({self.text}, boards={self.boards})"


_LOCK = threading.Lock()
_WATCHED: list[BMPWatch] = []


def watch_bmp(
    host: str, port: int = SCP_SCAMP_PORT, boards: Iterable[int] | None = None
) -> BMPWatch:
    """Export the sensors of ``boards`` of the frame whose BMP is at
    ``host:port`` (default: every board on its CAN bus) in /metrics."""
    watch = BMPWatch((host, port), None if boards is None else check_boards(boards))
    with _LOCK:
        _WATCHED.append(watch)
    return watch


def read_watched(timeout: float = SCRAPE_TIMEOUT) -> list[BMPStatus]:
    """Every registered BMP's boards, read now."""
    with _LOCK:
        watches = list(_WATCHED)
    return [watch.read(timeout) for watch in watches]
