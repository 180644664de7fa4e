"""The I/O of a boot: it does what a BootSequence (actors/boot/stages.py)
says and tells it what came of it.

``version`` goes through the board's own supervised client (anything
with ``call``: a Client, or a Machine's board in its worker), so the
probes are the board's requests like any other; boot frames go from this
process over a BootConnection, and a power-on over a BMPConnection. Many
boards boot at once on threads of their own (``boot_boards``), sharing
one image, loaded and checked before anything is sent.

Counted in actors.boot.bmp.COUNTS: ``booted``, ``already_up``,
``failed:STAGE`` and ``passes`` (images sent).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from actors.boot.bmp import COUNTS, BMPRefused, BMPSilent, set_power
from actors.boot.options import BoardBMP, BootOptions
from actors.boot.stages import (
    Action,
    Answered,
    AnsweredError,
    AskVersion,
    BootError,
    BootSequence,
    Event,
    Failed,
    Pause,
    Paused,
    Powered,
    PowerFailed,
    PowerOn,
    Ready,
    SendBoot,
    Sent,
    Silent,
)
from actors.errors import MalformedReply
from messages.boot import BootPlan, boot_values
from messages.errors import UnexpectedResponseCodeError
from messages.scp.version import (
    UNKNOWN_CHIP,
    GetVersion,
    GetVersionResponse,
    VersionInfo,
)
from transport.capture.writer import PacketCapture
from transport.connections.boot import BootConnection
from transport.errors import TransportError
from transport.logs import get_logger

log = get_logger(__name__)
Address = tuple[str, int]
#: Boards booted at once by boot_boards, unless told.
MAX_PARALLEL = 1024


class Asker(Protocol):
    """What a boot asks ``version`` through: a Client, a Machine's board."""

    def call(
        self, request: GetVersion, timeout: float | None = None
    ) -> GetVersionResponse: ...


@dataclass(frozen=True)
class BootReport:
    """How a board came up."""

    board: str
    version: VersionInfo
    #: Whether it was sent an image (False: it answered already).
    booted: bool
    passes: int
    powered_on: bool
    seconds: float

    def __str__(self) -> str:
        info = self.version
        running = f"{info.name} {info.version_string} at {info.x},{info.y}"
        if not self.booted:
            return f"{self.board} was up already: {running} (not booted again)"
        passes = f"{self.passes} pass{'' if self.passes == 1 else 'es'}"
        power = ", powered on through its BMP" if self.powered_on else ""
        return (
            f"{self.board} booted in {self.seconds:.1f} s ({passes}{power}): {running}"
        )


def make_plan(options: BootOptions) -> BootPlan:
    """The frames every board of one boot gets: the image (checked: a bad
    one raises BootImageError here, before anything is sent) with
    SpiNNMan's values for a SpiNN-5 and the time now."""
    values = boot_values(
        int(time.time()), extra_boot_values=dict(options.extra_boot_values)
    )
    return BootPlan.build(options.load_image(), values, gap=options.gap)


class BoardBoot:
    """One board's boot: a BootSequence and the I/O it asks for;
    ``capture`` (a Client's) records its boot frames and BMP exchanges."""

    def __init__(
        self,
        asker: Asker,
        address: Address,
        label: str,
        options: BootOptions,
        plan: BootPlan,
        *,
        bmp: BoardBMP | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        capture: PacketCapture | None = None,
    ) -> None:
        self._asker, self._address, self._label = asker, address, label
        self._options, self._plan, self._bmp = options, plan, bmp
        self._capture = capture
        self._clock, self._sleep = clock, sleep
        self._frames: BootConnection | None = None
        self._do: dict[type, Callable[[Any], Event]] = {
            AskVersion: self._ask,
            SendBoot: self._send,
            PowerOn: self._power,
            Pause: self._pause,
        }
        self._log = log.bind(board=label)

    def run(self) -> BootReport:
        """Boot the board, unless it answers; BootError if it cannot be."""
        started = self._clock()
        sequence = BootSequence(self._label, self._options, started, self._bmp)
        action: Action = sequence.start()
        try:
            while not isinstance(action, Ready | Failed):
                event = self._do[type(action)](action)
                action = sequence.step(event, self._clock())
        finally:
            if self._frames is not None:
                self._frames.close()
        if isinstance(action, Failed):
            COUNTS.add(f"failed:{action.error.stage}")
            self._log.info("boot.failed", error=str(action.error))
            raise action.error
        COUNTS.add("booted" if action.booted else "already_up")
        report = BootReport(
            self._label,
            action.version,
            action.booted,
            action.passes,
            action.powered_on,
            self._clock() - started,
        )
        self._log.info("boot.ready", report=str(report))
        return report

    def _ask(self, action: AskVersion) -> Event:
        if action.timeout <= 0:
            return Silent()
        x, y = UNKNOWN_CHIP  # "this chip": answered before SC&MP knows where
        try:
            reply = self._asker.call(GetVersion(x, y, 0), timeout=action.timeout)
        except (TimeoutError, ConnectionRefusedError):
            return Silent()
        except (UnexpectedResponseCodeError, MalformedReply) as error:
            return AnsweredError(str(error))
        assert reply.version_info is not None
        return Answered(reply.version_info)

    def _send(self, action: SendBoot) -> Event:
        host, _ = self._address
        try:
            if self._frames is None:
                self._frames = BootConnection(
                    host, gap=self._plan.gap, capture=self._capture
                )
            self._frames.send_boot_plan(self._plan)
        except TransportError as error:
            raise BootError(
                f"{self._label}: cannot send boot frames to {host}: {error} "
                f"(stage: boot)",
                "boot",
                self._label,
            ) from None
        COUNTS.add("passes")
        self._log.info("boot.pass", attempt=action.attempt)
        return Sent()

    def _power(self, action: PowerOn) -> Event:
        bmp = action.bmp
        self._log.info("boot.power_on", bmp=str(bmp))
        try:
            set_power(
                bmp.address,
                [bmp.board],
                True,
                timeout=action.timeout,
                capture=self._capture,
            )
        except BMPSilent as error:
            return PowerFailed(False, str(error))
        except BMPRefused as error:
            return PowerFailed(True, str(error))
        return Powered()

    def _pause(self, action: Pause) -> Event:
        if action.seconds > 0:
            self._sleep(action.seconds)
        return Paused()


def boot_board(
    asker: Asker,
    address: Address,
    label: str,
    options: BootOptions,
    *,
    bmp: BoardBMP | None = None,
    capture: PacketCapture | None = None,
) -> BootReport:
    """Boot one board (see BoardBoot), its image checked first."""
    plan = make_plan(options)
    boot = BoardBoot(asker, address, label, options, plan, bmp=bmp, capture=capture)
    return boot.run()


class MachineBootError(BootError):
    """Some boards of a Machine could not be brought up; the others were.
    ``errors`` has each one's BootError by name, ``reports`` the others'."""

    def __init__(
        self,
        message: str,
        errors: Mapping[Hashable, BaseException] | None = None,
        reports: Mapping[Hashable, BootReport] | None = None,
    ) -> None:
        BootError.__init__(self, message, "machine", "")
        self.errors = dict(errors or {})
        self.reports = dict(reports or {})

    def __reduce__(self) -> tuple[type, tuple[Any, ...]]:
        return type(self), (str(self), self.errors, self.reports)


def boot_boards(
    boards: Mapping[Hashable, tuple[Asker, Address, str]],
    options: BootOptions,
    *,
    parallel: int = MAX_PARALLEL,
    captures: Mapping[Hashable, PacketCapture | None] | None = None,
) -> dict[Hashable, BootReport]:
    """Boot many boards at once (``boards``: name -> (asker, address,
    label)), each on a thread of its own, up to ``parallel`` at a time;
    their reports by name, or MachineBootError once every board has ended,
    naming each that failed. ``captures`` (by name: each board's client's)
    record each board's boot frames and BMP exchanges."""
    shared = options.with_image(options.load_image())
    plan = make_plan(shared)
    recorded = captures or {}

    def one(name: Hashable) -> BootReport:
        asker, address, label = boards[name]
        bmp, capture = shared.bmp_of(name), recorded.get(name)
        boot = BoardBoot(asker, address, label, shared, plan, bmp=bmp, capture=capture)
        return boot.run()

    if not boards:
        return {}
    workers = max(1, min(parallel, len(boards)))
    with ThreadPoolExecutor(workers, thread_name_prefix="boot") as pool:
        futures = {name: pool.submit(one, name) for name in boards}
    reports: dict[Hashable, BootReport] = {}
    errors: dict[Hashable, BaseException] = {}
    for name, future in futures.items():
        error = future.exception()
        if error is None:
            reports[name] = future.result()
        else:
            errors[name] = error
    if errors:
        lines = "; ".join(str(error) for error in errors.values())
        raise MachineBootError(
            f"{len(errors)} of {len(boards)} boards did not come up: {lines}",
            errors,
            reports,
        )
    return reports
