"""Bringing one board up, as a state machine: what happened and the time
in, what to do next out. No sockets, threads or clocks here (the driver,
actors/boot/driver.py, does the I/O), so every path is tested by feeding
it events.

Theory of operation. This is SpiNNMan's ``ensure_board_is_ready``,
bounded by one deadline and explained when it fails:

- **probe**: ask ``version`` once (the asker may resend within
  ``probe_timeout``). SC&MP at its position: the board is up and is never
  booted again. SC&MP at chip (255, 255): booted, still setting up its
  network: locate. A BMP's BC&MP: the host is a BMP, not a board.
  Anything else that answers is not SC&MP 4.x. Silence: boot.
- **boot**: send every frame of the image, then ask ``version`` until
  ``pass_timeout`` of silence, and send every frame again (a boot ROM
  keeps the blocks it holds and fills what a lossy network lost), up to
  ``passes`` times. Still silent: power, if a BMP is known; else fail.
- **power**: power the board on through its BMP, wait ``power_settle``,
  and boot again (``passes`` more). Powered on once at most.
- **locate**: ask every ``poll_interval`` until SC&MP says where it is.

Once anything has answered, no frame is sent again: a board that answers
is never rebooted. Every wait is cut to the deadline, and when it passes
the boot fails naming the stage it was in. Each failure is a BootError
whose message leads with the board.

``BootSequence.start()`` gives the first action; ``step(event, now)``
takes what came of the last one and gives the next, until Ready or
Failed. Its rules are a table keyed by (phase, event).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from actors.boot.options import BoardBMP, BootOptions
from messages.bmp import BMP_NAME
from messages.errors import SpinnactorsError
from messages.scp.version import (
    SCAMP_MAJOR_VERSION,
    SCAMP_NAME,
    UNKNOWN_CHIP,
    VersionInfo,
)


class BootStage(Enum):
    """Where a boot was when it failed."""

    PROBE = "probe"
    BOOT = "boot"
    LOCATE = "locate"
    POWER = "power"


class BootError(SpinnactorsError):
    """A board that could not be brought up: the message names the board
    and the stage, and says what to check."""

    def __init__(self, message: str, stage: str, board: str) -> None:
        super().__init__(message)
        self.stage = stage
        self.board = board

    def __reduce__(self) -> tuple[type, tuple[str, str, str]]:
        return type(self), (str(self), self.stage, self.board)


# -- what the driver is told to do ---------------------------------------------


@dataclass(frozen=True)
class AskVersion:
    """Ask the board's monitor ``version``, waiting ``timeout`` seconds."""

    timeout: float


@dataclass(frozen=True)
class SendBoot:
    """Send every frame of the image (pass number ``attempt``)."""

    attempt: int


@dataclass(frozen=True)
class PowerOn:
    """Power the board on through ``bmp``; wait ``timeout`` for the reply."""

    bmp: BoardBMP
    timeout: float


@dataclass(frozen=True)
class Pause:
    seconds: float


@dataclass(frozen=True)
class Ready:
    """Up: SC&MP answered at its position."""

    version: VersionInfo
    #: Whether this boot sent it an image (False: it was up already).
    booted: bool
    passes: int
    powered_on: bool


@dataclass(frozen=True)
class Failed:
    error: BootError


Action = AskVersion | SendBoot | PowerOn | Pause | Ready | Failed


# -- what the driver reports back -----------------------------------------------


@dataclass(frozen=True)
class Answered:
    version: VersionInfo


@dataclass(frozen=True)
class Silent:
    """No answer within the wait."""


@dataclass(frozen=True)
class AnsweredError:
    """The board answered ``version`` with an error code: it is there,
    and it is not an unbooted board."""

    reason: str


@dataclass(frozen=True)
class Sent:
    """Every frame of a pass has gone."""


@dataclass(frozen=True)
class Powered:
    """The BMP said the power-on is done."""


@dataclass(frozen=True)
class PowerFailed:
    """No reply from the BMP (``answered`` False), or a refusal; the
    reason names the BMP."""

    answered: bool
    reason: str


@dataclass(frozen=True)
class Paused:
    pass


Event = Answered | Silent | AnsweredError | Sent | Powered | PowerFailed | Paused


class Phase(Enum):
    """Where a sequence is; each phase belongs to a stage (``stage``)."""

    PROBING = "probing"
    SENDING = "sending"
    WAITING = "waiting"
    LOCATING = "locating"
    POWERING = "powering"
    SETTLING = "settling"
    DONE = "done"

    @property
    def stage(self) -> BootStage:
        return _STAGES[self]


_STAGES = {
    Phase.PROBING: BootStage.PROBE,
    Phase.SENDING: BootStage.BOOT,
    Phase.WAITING: BootStage.BOOT,
    Phase.LOCATING: BootStage.LOCATE,
    Phase.POWERING: BootStage.POWER,
    Phase.SETTLING: BootStage.POWER,
    Phase.DONE: BootStage.LOCATE,
}


def is_located(info: VersionInfo) -> bool:
    return (info.x, info.y) != UNKNOWN_CHIP


class BootSequence:
    """One board's boot (``board``: how errors name it; ``bmp``: its BMP,
    if known), started at ``now``; see the module's docstring."""

    def __init__(
        self,
        board: str,
        options: BootOptions,
        now: float,
        bmp: BoardBMP | None = None,
    ) -> None:
        self.board = board
        self.options = options
        self.bmp = bmp
        self.started = now
        self.deadline = now + options.deadline
        self.phase = Phase.PROBING
        #: Passes sent in all, and since the last power-on.
        self.passes = 0
        self._round_passes = 0
        self.powered_on = False
        #: When the last pass went (its silence is timed from then).
        self._pass_sent = now

    def start(self) -> Action:
        return AskVersion(self._cut(self.options.probe_timeout, self.started))

    def step(self, event: Event, now: float) -> Action:
        """What to do after ``event`` (what came of the last action)."""
        rule = _RULES.get((self.phase, type(event)))
        if rule is None:
            raise RuntimeError(f"{self.phase.name} does not expect {event!r}")
        if now >= self.deadline and not isinstance(event, _SAID):
            action: Action = self._fail(self._out_of_time(), now)
        else:
            action = rule(self, event, now)
            if not isinstance(action, Ready | Failed) and now >= self.deadline:
                action = self._fail(self._out_of_time(), now)
        if isinstance(action, Ready | Failed):
            self.phase = Phase.DONE
        return action

    # -- the rules ----------------------------------------------------------------

    def _waited(self, event: Answered, now: float) -> Action:
        return self._answered(event.version, now)

    def _answered(self, info: VersionInfo, now: float) -> Action:
        if info.name == BMP_NAME:
            return self._fail(
                f"the host is a BMP, not a board: it answers version as "
                f"{_name(info)}; give the board's own address, and this one "
                f"as its BMP",
                now,
            )
        if info.name != SCAMP_NAME or info.version_number[0] != SCAMP_MAJOR_VERSION:
            return self._fail(
                f"it runs {_name(info)}, not {SCAMP_NAME} "
                f"{SCAMP_MAJOR_VERSION}.x; it was not booted again",
                now,
            )
        if is_located(info):
            return Ready(info, self.passes > 0, self.passes, self.powered_on)
        self.phase = Phase.LOCATING
        return Pause(self._cut(self.options.poll_interval, now))

    def _refused(self, event: AnsweredError, now: float) -> Action:
        return self._fail(
            f"it answers version with an error ({event.reason}): it is not "
            f"an unbooted board, so it was not booted",
            now,
        )

    def _unbooted(self, event: Silent, now: float) -> Action:
        return self._send(now)

    def _sent(self, event: Sent, now: float) -> Action:
        self.phase = Phase.WAITING
        self._pass_sent = now
        return self._ask(now)

    def _still_silent(self, event: Silent, now: float) -> Action:
        if now - self._pass_sent < self.options.pass_timeout:
            return self._ask(now)
        if self._round_passes < self.options.passes:
            return self._send(now)
        if self.bmp is not None and not self.powered_on:
            self.phase = Phase.POWERING
            return PowerOn(self.bmp, self._cut(self.options.power_timeout, now))
        return self._fail(self._no_answer(now), now)

    def _locate_again(self, event: Paused | Silent, now: float) -> Action:
        return self._ask(now)

    def _powered(self, event: Powered, now: float) -> Action:
        self.powered_on = True
        self._round_passes = 0
        self.phase = Phase.SETTLING
        return Pause(self._cut(self.options.power_settle, now))

    def _power_failed(self, event: PowerFailed, now: float) -> Action:
        if event.answered:
            return self._fail(event.reason, now)
        return self._fail(
            f"{event.reason}; check the BMP's address and that it is powered", now
        )

    def _settled(self, event: Paused, now: float) -> Action:
        return self._send(now)

    # -- helpers ------------------------------------------------------------------

    def _send(self, now: float) -> Action:
        self.passes += 1
        self._round_passes += 1
        self.phase = Phase.SENDING
        return SendBoot(self.passes)

    def _ask(self, now: float) -> Action:
        return AskVersion(self._cut(self.options.poll_timeout, now))

    def _cut(self, seconds: float, now: float) -> float:
        """``seconds``, or what is left before the deadline if less."""
        return max(0.0, min(seconds, self.deadline - now))

    def _fail(self, text: str, now: float) -> Failed:
        stage = self.phase.stage
        message = (
            f"{self.board}: {text} (stage: {stage.value}, {now - self.started:.1f} s)"
        )
        return Failed(BootError(message, stage.value, self.board))

    def _no_answer(self, now: float) -> str:
        power = (
            f", {self._round_passes} after powering it on through its BMP"
            if self.powered_on
            else ""
        )
        hint = (
            "check the image and the network"
            if self.powered_on
            else "check the address and the image, and that the board is "
            "powered (with its BMP given, it is powered on)"
        )
        return (
            f"no answer to boot: SC&MP did not come up after "
            f"{_passes(self.passes)} of the image{power}; {hint}"
        )

    def _out_of_time(self) -> str:
        seconds = f"{self.options.deadline:g} s"
        stage = self.phase.stage
        if stage is BootStage.PROBE:
            return f"no answer to version within the deadline of {seconds}"
        if stage is BootStage.LOCATE:
            return (
                f"stuck at chip (255, 255): SC&MP answers but did not find "
                f"its position within the deadline of {seconds}; is its "
                f"network set-up stuck?"
            )
        if stage is BootStage.POWER:
            return f"the deadline of {seconds} passed while powering it on"
        return (
            f"no answer to boot within the deadline of {seconds}: SC&MP did "
            f"not come up after {_passes(self.passes)} of the image"
        )


def _passes(count: int) -> str:
    return f"{count} pass{'' if count == 1 else 'es'}"


def _name(info: VersionInfo) -> str:
    return f"{info.name}/{info.hardware} {info.version_string}"


#: What the board or its BMP said: taken even at the deadline.
_SAID = (Answered, AnsweredError, PowerFailed)
Rule = Callable[[BootSequence, Any, float], Action]
_P, _S = Phase, BootSequence
_RULES: dict[tuple[Phase, type], Rule] = {
    (_P.PROBING, Answered): _S._waited,
    (_P.PROBING, AnsweredError): _S._refused,
    (_P.PROBING, Silent): _S._unbooted,
    (_P.SENDING, Sent): _S._sent,
    (_P.WAITING, Answered): _S._waited,
    (_P.WAITING, AnsweredError): _S._refused,
    (_P.WAITING, Silent): _S._still_silent,
    (_P.LOCATING, Paused): _S._locate_again,
    (_P.LOCATING, Silent): _S._locate_again,
    (_P.LOCATING, Answered): _S._waited,
    (_P.LOCATING, AnsweredError): _S._refused,
    (_P.POWERING, Powered): _S._powered,
    (_P.POWERING, PowerFailed): _S._power_failed,
    (_P.SETTLING, Paused): _S._settled,
}
