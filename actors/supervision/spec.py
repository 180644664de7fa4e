"""What a supervisor is told about a child: plain data, as OTP's child
specs are, and the backoff between restarts."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal

import pykka

from actors.supervision.child import Watch
from messages.errors import InvalidArgumentError

Restart = Literal["permanent", "transient", "temporary"]
#: What a start factory returns to decline (OTP's ``ignore``): the child is
#: kept as a spec, not running, until ``restart_child``.
Ignore = Literal["ignore"]
IGNORE: Final[Ignore] = "ignore"
#: The shutdown that does not wait (OTP's ``brutal_kill``): see ChildSpec.
BrutalKill = Literal["brutal_kill"]
BRUTAL_KILL: Final[BrutalKill] = "brutal_kill"


@dataclass(frozen=True)
class ChildSpec:
    """How to start, restart and stop one child."""

    id: str
    #: Starts the child and returns its ref, or IGNORE to decline; raising
    #: is a failed start.
    start: Callable[[Watch], pykka.ActorRef[Any] | Ignore]
    restart: Restart = "permanent"
    #: Seconds its stop may take before it is abandoned, or BRUTAL_KILL:
    #: not waited for at all (it handles no message after its current one,
    #: on_stop runs only if it was idle).
    shutdown: float | BrutalKill = 5.0
    #: Called once the child has ended and will not be restarted by the
    #: supervisor itself (from the supervisor's thread): e.g. to end the
    #: work it leaves behind. At most once per start.
    cleanup: Callable[[], None] | None = None
    #: OTP 24's significant child: its own end (not a restart, not a
    #: terminate_child) may end the supervisor, as its auto_shutdown says.
    #: Only for transient and temporary children.
    significant: bool = False
    #: How long the supervisor waits for the child's on_start to finish
    #: before it starts the next one (OTP's init returning). None: not
    #: waited for, as a child that defers its init (handle_continue).
    start_timeout: float | None = 10.0

    def __post_init__(self) -> None:
        if self.restart not in ("permanent", "transient", "temporary"):
            raise InvalidArgumentError(
                "restart", self.restart, "must be permanent, transient or temporary"
            )
        if self.shutdown != BRUTAL_KILL and not (
            isinstance(self.shutdown, (int, float)) and self.shutdown > 0
        ):
            raise InvalidArgumentError(
                "shutdown",
                self.shutdown,
                "must be a positive number of seconds or brutal_kill",
            )
        if self.significant and self.restart == "permanent":
            raise InvalidArgumentError(
                "significant", self.id, "only transient or temporary children"
            )
        if self.start_timeout is not None and not self.start_timeout > 0:
            raise InvalidArgumentError(
                "start_timeout", self.start_timeout, "must be positive or None"
            )


@dataclass(frozen=True)
class Backoff:
    """Delay before a restart: ``minimum`` doubling up to ``maximum``, each
    stretched by up to ``jitter`` of itself; back to ``minimum`` once the
    child has run ``reset_after`` seconds without failing."""

    minimum: float = 0.1
    maximum: float = 10.0
    jitter: float = 0.2
    reset_after: float = 10.0

    def __post_init__(self) -> None:
        if not 0 <= self.minimum <= self.maximum:
            raise InvalidArgumentError(
                "minimum", self.minimum, "need 0 <= minimum <= maximum"
            )
        if not 0 <= self.jitter <= 1:
            raise InvalidArgumentError("jitter", self.jitter, "must be 0..1")

    def delay(self, failures: int, rng: random.Random) -> float:
        """The delay before restart number ``failures`` (1: the first):
        capped at ``maximum`` (plus jitter) however large the count."""
        # 2.0 ** n overflows past n = 1023; long before that the doubling
        # has passed any maximum a float can hold.
        exponent = min(max(failures - 1, 0), _MAX_DOUBLINGS)
        base = min(self.minimum * 2.0**exponent, self.maximum)
        return base * (1 + self.jitter * rng.random())


#: Doublings beyond which Backoff.delay stops counting (2.0 ** 1023 is the
#: largest power of two a float holds).
_MAX_DOUBLINGS = 1023
