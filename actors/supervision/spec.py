"""What a supervisor is told about a child: plain data, as OTP's child
specs are, and the backoff between restarts."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import pykka

from actors.supervision.child import Watch
from messages.errors import InvalidArgumentError

Restart = Literal["permanent", "transient", "temporary"]


@dataclass(frozen=True)
class ChildSpec:
    """How to start, restart and stop one child."""

    id: str
    start: Callable[[Watch], pykka.ActorRef[Any]]
    restart: Restart = "permanent"
    shutdown: float = 5.0
    #: Called once the child is gone for good (not to be restarted), from
    #: the supervisor's thread: e.g. to end the work it leaves behind.
    cleanup: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        if self.restart not in ("permanent", "transient", "temporary"):
            raise InvalidArgumentError(
                "restart", self.restart, "must be permanent, transient or temporary"
            )
        if not self.shutdown > 0:
            raise InvalidArgumentError(
                "shutdown", self.shutdown, "must be a positive number of seconds"
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
        base = min(self.minimum * 2.0 ** max(failures - 1, 0), self.maximum)
        return base * (1 + self.jitter * rng.random())
