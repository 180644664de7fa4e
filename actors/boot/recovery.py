"""Recovery for long runs (opt-in): a board that is lost is power-cycled
through its BMP, booted again, and served again by its client.

Theory of operation. A board is lost when its client's supervisor gives up
on its connection, or (with ``hung_after``) when it has owed a reply for
that long: a hung board does not crash its connection, it only goes
silent. Then, on a thread of its own, never blocking the supervisor:

1. the client's connection is stopped, keeping its job book;
2. the board is powered off through its BMP: everything it held is gone,
   so every open request ends with PowerCycled, which says so (requests
   put in after this wait for the board to come back);
3. after ``off_time`` it is powered on, left ``boot.power_settle``
   seconds, and booted (actors/boot/driver.py, over a connection of its
   own);
4. the client's connection starts again, and the IP tags set through the
   client (``IPTagSet``, and not cleared since) are set again, so that
   listeners receive again.

Each cycle is logged (``board.power_cycle``, ``board.recovered``) and
counted (actors.boot.bmp.COUNTS: ``power_cycles``, ``recovered``,
``recovery_failed``). More than ``max_cycles`` within ``period`` seconds,
or a cycle that fails (the BMP silent, the boot failing), gives the board
up for good: its open requests end with ShutDown saying why.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, Protocol

from actors.boot.bmp import COUNTS, BMPRefused, BMPSilent, set_power
from actors.boot.driver import boot_board
from actors.boot.options import BMPGiven, BoardBMP, BootOptions, board_bmp
from actors.boot.stages import BootError
from actors.errors import PowerCycled, ShutDown
from messages.errors import InvalidArgumentError
from messages.scp.base import AbstractSCPRequest
from messages.scp.iptag import IPTagClear, IPTagSet
from messages.validate import check_int, check_seconds
from transport.capture.writer import PacketCapture
from transport.connections.call import call
from transport.connections.scamp import SCAMPConnection
from transport.logs import get_logger

log = get_logger(__name__)
TagKey = tuple[int, int, int]


@dataclass(frozen=True)
class Recovery:
    """How to bring a lost board back: through ``bmp`` (a BoardBMP or
    ``"HOST[:PORT][/BOARD]"``), booted with ``boot``; ``off_time``
    seconds powered off (SpiNNMan leaves 30); ``hung_after``: seconds of
    silence after which a board is lost too (None: only when its
    supervisor gives up); at most ``max_cycles`` within ``period``."""

    bmp: BMPGiven
    boot: BootOptions = field(default_factory=BootOptions)
    off_time: float = 1.0
    hung_after: float | None = None
    max_cycles: int = 3
    period: float = 3600.0

    def __post_init__(self) -> None:
        bmp = board_bmp(self.bmp)
        if bmp is None:
            raise InvalidArgumentError("bmp", None, "recovery needs the board's BMP")
        object.__setattr__(self, "bmp", bmp)
        check_seconds("off_time", self.off_time, 3600.0, zero=True)
        if self.hung_after is not None:
            check_seconds("hung_after", self.hung_after, 86400.0)
        check_int("max_cycles", self.max_cycles, 1, 1000)
        check_seconds("period", self.period)

    @property
    def board_bmp(self) -> BoardBMP:
        assert isinstance(self.bmp, BoardBMP)
        return self.bmp


class Recoverable(Protocol):
    """What a recovery does to a client (actors/board/client.py)."""

    @property
    def address(self) -> tuple[str, int]: ...

    @property
    def boot_capture(self) -> PacketCapture | None: ...

    def health(self) -> Any: ...

    def call(
        self, request: AbstractSCPRequest[Any], timeout: float | None = None
    ) -> Any: ...

    def _halt(self) -> None: ...

    def _fail_open(self, error: BaseException) -> None: ...

    def _revive(self) -> None: ...

    def _lose(self, error: BaseException) -> None: ...

    # (and Client.call notes what it was asked, see BoardRecovery.noted)


class _Direct:
    """version for a boot while the client's own connection is stopped."""

    def __init__(self, address: tuple[str, int], capture: PacketCapture | None) -> None:
        self._address, self._capture = address, capture

    def call(self, request: Any, timeout: float | None = None) -> Any:
        host, port = self._address
        with SCAMPConnection(
            remote_host=host, remote_port=port, capture=self._capture
        ) as connection:
            return call(connection, request, timeout=timeout or 1.0, retries=0)


class BoardRecovery:
    """The recovery of one client's board (see the module's docstring)."""

    def __init__(self, client: Recoverable, settings: Recovery) -> None:
        self._client = client
        self.settings = settings
        host, port = client.address
        self._label = f"board {host}:{port}"
        self._lock = threading.Lock()
        self._tags: dict[TagKey, IPTagSet] = {}
        self._cycles: deque[float] = deque()
        self._closing = threading.Event()
        self._running: threading.Thread | None = None
        self._watch: threading.Thread | None = None
        #: Set while the board is being power-cycled and booted.
        self.recovering = threading.Event()
        self.cycles = 0
        if settings.hung_after is not None:
            self._watch = threading.Thread(
                target=self._watch_silence, name=f"recovery-{host}:{port}", daemon=True
            )
            self._watch.start()

    # -- what the client tells it ---------------------------------------------

    def noted(self, request: AbstractSCPRequest[Any]) -> None:
        """A request the board answered OK: an IP tag set is remembered to
        set again, one cleared is forgotten."""
        if not isinstance(request, IPTagSet | IPTagClear):
            return
        header = request.sdp_header
        assert request.argument_1 is not None
        key = (
            header.destination_chip_x,
            header.destination_chip_y,
            request.argument_1 & 0xFF,
        )
        with self._lock:
            if isinstance(request, IPTagSet):
                self._tags[key] = request
            else:
                self._tags.pop(key, None)

    def lost(self, reason: str) -> bool:
        """The board is lost (``reason`` says how): recover it, on a thread
        of its own; False if it will not be (closing, or one under way)."""
        with self._lock:
            if self._closing.is_set() or self.recovering.is_set():
                return False
            self.recovering.set()
            self._running = threading.Thread(
                target=self._recover, args=(reason,), name="recovery", daemon=True
            )
            self._running.start()
            return True

    def close(self, timeout: float = 30.0) -> None:
        """No more recovery; wait for one under way to end."""
        self._closing.set()
        for thread in (self._running, self._watch):
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout)

    # -- the cycle ---------------------------------------------------------------

    def _recover(self, reason: str) -> None:
        settings, client = self.settings, self._client
        bmp, capture = settings.board_bmp, client.boot_capture
        try:
            self._count_cycle(reason)
            log.warning(
                "board.power_cycle", board=self._label, bmp=str(bmp), reason=reason
            )
            client._halt()
            set_power(bmp.address, [bmp.board], False, capture=capture)
            client._fail_open(
                PowerCycled(
                    f"{self._label} was power-cycled through its {bmp} ({reason}): "
                    f"what it held is gone, and this request was not done; send "
                    f"it again once the board is back"
                )
            )
            self._pause(settings.off_time)
            set_power(
                bmp.address,
                [bmp.board],
                True,
                timeout=settings.boot.power_timeout,
                capture=capture,
            )
            self._pause(settings.boot.power_settle)
            boot_board(
                _Direct(client.address, capture),
                client.address,
                self._label,
                settings.boot,
                capture=capture,
            )
            if self._closing.is_set():
                raise ShutDown("the client was closed")
            client._revive()
            self._set_tags_again()
        except (BMPSilent, BMPRefused, BootError, ShutDown, _TooOften) as error:
            COUNTS.add("recovery_failed")
            log.error("board.recovery_failed", board=self._label, error=str(error))
            client._halt()  # (if it was not yet: nothing runs its jobs now)
            client._lose(
                ShutDown(
                    f"{self._label} was lost ({reason}) and not recovered: {error}"
                )
            )
        else:
            COUNTS.add("recovered")
            log.warning("board.recovered", board=self._label, tags=len(self._tags))
        finally:
            self.recovering.clear()

    def _count_cycle(self, reason: str) -> None:
        now = time.monotonic()
        while self._cycles and now - self._cycles[0] > self.settings.period:
            self._cycles.popleft()
        if len(self._cycles) >= self.settings.max_cycles:
            raise _TooOften(
                f"{len(self._cycles)} power cycles within {self.settings.period:g} s "
                f"already (max_cycles)"
            )
        self._cycles.append(now)
        self.cycles += 1
        COUNTS.add("power_cycles")

    def _pause(self, seconds: float) -> None:
        if self._closing.wait(seconds):
            raise ShutDown("the client was closed")

    def _set_tags_again(self) -> None:
        with self._lock:
            tags = list(self._tags.values())
        for request in tags:
            try:
                self._client.call(request)
            except Exception as error:  # noqa: BLE001 - logged, the others still set
                log.error("board.tag_not_set", board=self._label, error=str(error))

    def _watch_silence(self) -> None:
        """Take a board silent for ``hung_after`` seconds for lost."""
        hung_after = self.settings.hung_after
        assert hung_after is not None
        while not self._closing.wait(min(1.0, hung_after / 4)):
            if self.recovering.is_set():
                continue
            try:
                health = self._client.health()
            except Exception:  # noqa: BLE001 - closed meanwhile: checked above
                continue
            silent = getattr(health, "silent_for", None)
            if health.state == "silent" and silent is not None and silent >= hung_after:
                self.lost(f"silent for {silent:.1f} s")


class _TooOften(Exception):
    """More power cycles than max_cycles within period."""


def check_recovery(recovery: Recovery | None, shared: Hashable | None) -> None:
    if recovery is not None and shared is not None:
        raise InvalidArgumentError(
            "recovery", recovery, "is for a client with a supervisor of its own"
        )
