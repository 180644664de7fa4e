"""The rate limiter actor and the lease helper its users keep locally.

One :class:`RateLimiterActor` owns a :class:`~actors.ratelimit.bucket.TokenBucket`
shared by many connections. Asking an actor per datagram would cost more
than sending it, so tokens go out in leases: a connection asks for a burst,
spends it locally through :class:`RateLimit`, and asks again only when it is
used up. The actor never waits for tokens; it grants what is there and says
when to come back, so one starved user cannot stall the others.

The messages are plain frozen dataclasses so that they pickle and can cross
a process boundary.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import pykka

from actors.ratelimit.bucket import TokenBucket
from messages.errors import InvalidArgumentError
from transport.logs import get_logger

log = get_logger(__name__)


def positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(name, value, "must be an integer")
    if value <= 0:
        raise InvalidArgumentError(name, value, "must be positive")
    return value


@dataclass(frozen=True)
class LeaseRequest:
    """Ask for up to ``tokens`` tokens; more than the capacity is capped."""

    tokens: int

    def __post_init__(self) -> None:
        positive_int("tokens", self.tokens)


@dataclass(frozen=True)
class Lease:
    """``granted`` tokens (maybe 0); if 0, ask again after ``retry_after`` s."""

    granted: int
    retry_after: float


@dataclass(frozen=True)
class LimiterStats:
    """Ask the limiter for its :class:`LimiterCounters`."""


@dataclass(frozen=True)
class LimiterCounters:
    """What the limiter has done since it started."""

    #: Lease requests answered.
    leases_asked: int
    #: Tokens handed out over all leases.
    tokens_granted: int
    #: Lease requests answered with nothing.
    refusals: int
    #: Tokens in the bucket now.
    tokens: float = 0.0


class Limiter(Protocol):
    """What a RateLimit asks for leases: a RateLimiterActor's ref, or what
    stands in for one where the actor cannot be (a RemoteLimiter, remote.py)."""

    def ask(self, message: Any, *, timeout: float | None = None) -> Any: ...


class RateLimiterActor(pykka.ThreadingActor):
    """Owns the shared bucket and answers :class:`LeaseRequest` with
    :class:`Lease` and :class:`LimiterStats` with :class:`LimiterCounters`.

    It never sleeps: a blocked actor would hold up every user's asks. Its
    thread is a daemon, so a limiter never stopped does not hold up exit.
    """

    use_daemon_thread = True

    def __init__(
        self,
        tokens: float,
        fill_rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        # Built here, on the caller's thread, so bad arguments raise from
        # start() rather than killing a half-started actor.
        self._bucket = TokenBucket(tokens, fill_rate, clock=clock)
        self._leases_asked = 0
        self._tokens_granted = 0
        self._refusals = 0
        self._log = log.bind(
            actor="rate_limiter",
            capacity=self._bucket.capacity,
            fill_rate=self._bucket.fill_rate,
        )

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, LeaseRequest):
            return self._lease(message.tokens)
        if isinstance(message, LimiterStats):
            return LimiterCounters(
                self._leases_asked,
                self._tokens_granted,
                self._refusals,
                self._bucket.tokens,
            )
        # A stray tell must not kill a limiter many connections share, so
        # this is logged and answered with None rather than raised.
        self._log.warning(
            "limiter.unknown_message", message_type=type(message).__name__
        )
        return None

    def _lease(self, tokens: int) -> Lease:
        granted, retry_after = self._bucket.take_up_to(tokens)
        self._leases_asked += 1
        self._tokens_granted += granted
        if granted == 0:
            self._refusals += 1
        return Lease(granted, retry_after)
