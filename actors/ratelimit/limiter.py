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

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import pykka

from actors.ratelimit.bucket import TokenBucket
from messages.errors import InvalidArgumentError
from transport.logs import get_logger

log = get_logger(__name__)


def _positive_int(name: str, value: object) -> int:
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
        _positive_int("tokens", self.tokens)


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


class Limiter(Protocol):
    """What a RateLimit asks for leases: a RateLimiterActor's ref, or what
    stands in for one where the actor cannot be (remote_limiter.py)."""

    def ask(self, message: Any, *, timeout: float | None = None) -> Any:
        ...


class RateLimiterActor(pykka.ThreadingActor):
    """Owns the shared bucket and answers :class:`LeaseRequest` with
    :class:`Lease` and :class:`LimiterStats` with :class:`LimiterCounters`.

    It never sleeps: a blocked actor would hold up every user's asks.
    """

    def __init__(self, tokens: float, fill_rate: float, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        # Built here, on the caller's thread, so bad arguments raise from
        # start() rather than killing a half-started actor.
        self._bucket = TokenBucket(tokens, fill_rate, clock=clock)
        self._leases_asked = 0
        self._tokens_granted = 0
        self._refusals = 0
        self._log = log.bind(actor="rate_limiter",
                             capacity=self._bucket.capacity,
                             fill_rate=self._bucket.fill_rate)

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, LeaseRequest):
            return self._lease(message.tokens)
        if isinstance(message, LimiterStats):
            return LimiterCounters(self._leases_asked, self._tokens_granted,
                                   self._refusals)
        # A stray tell must not kill a limiter many connections share, so
        # this is logged and answered with None rather than raised.
        self._log.warning("limiter.unknown_message",
                          message_type=type(message).__name__)
        return None

    def _lease(self, tokens: int) -> Lease:
        granted, retry_after = self._bucket.take_up_to(tokens)
        self._leases_asked += 1
        self._tokens_granted += granted
        if granted == 0:
            self._refusals += 1
        return Lease(granted, retry_after)


class RateLimit:
    """A connection's local purse of leased tokens.

    Used on the connection actor's own thread (not thread-safe): it spends
    tokens it already holds, and only when those are gone asks the limiter
    for a new lease, at most once per :meth:`take`. After a refusal it does
    not ask again until the limiter's ``retry_after`` has passed, so a
    starved connection does not flood the limiter with asks.

    ``now`` is the caller's clock; only differences are compared with the
    limiter's ``retry_after``, so the two clocks need not share an origin.
    """

    def __init__(self, limiter_ref: Limiter, lease_size: int = 32,
                 ask_timeout: float = 1.0) -> None:
        self._ref = limiter_ref
        self._lease_size = _positive_int("lease_size", lease_size)
        if (isinstance(ask_timeout, bool)
                or not isinstance(ask_timeout, (int, float))
                or not ask_timeout > 0 or not math.isfinite(ask_timeout)):
            raise InvalidArgumentError("ask_timeout", ask_timeout,
                                       "must be a positive number of seconds")
        self._ask_timeout = float(ask_timeout)
        self._held = 0
        self._blocked_until = -math.inf

    @property
    def held(self) -> int:
        """Leased tokens not yet spent."""
        return self._held

    @property
    def blocked_until(self) -> float:
        """Before this time (on the caller's clock) asking again is pointless."""
        return self._blocked_until

    def take(self, wanted: int, now: float) -> int:
        """How many of ``wanted`` datagrams may go out now (0..wanted).

        Raises :class:`pykka.ActorDeadError` if the limiter is gone: sending
        unlimited would break the contract, so the caller must fail.
        If the limiter does not answer within ``ask_timeout`` the ask counts
        as a refusal for that long (a lease that arrives late is lost, which
        only ever under-spends).
        """
        if isinstance(wanted, bool) or not isinstance(wanted, int) or wanted < 0:
            raise InvalidArgumentError("wanted", wanted,
                                       "must be a non-negative integer")
        given = min(wanted, self._held)
        self._held -= given
        if given < wanted and self._held == 0 and now >= self._blocked_until:
            self._ask(now)
            more = min(wanted - given, self._held)
            self._held -= more
            given += more
        return given

    def available(self, now: float) -> int:
        """Tokens in hand, asking for a lease first if there are none and
        the last refusal has run out; spend what is used with spend()."""
        if self._held == 0 and now >= self._blocked_until:
            self._ask(now)
        return self._held

    def spend(self, tokens: int) -> None:
        """Use ``tokens`` of those available() said were in hand."""
        if not 0 <= tokens <= self._held:
            raise InvalidArgumentError(
                "tokens", tokens, f"must be 0..{self._held} (in hand)")
        self._held -= tokens

    def next_ready(self, now: float) -> float | None:
        """When :meth:`take` may next return something: None if tokens are
        in hand, else the later of ``now`` and the end of the refusal."""
        if self._held > 0:
            return None
        return max(now, self._blocked_until)

    def _ask(self, now: float) -> None:
        try:
            lease = self._ref.ask(LeaseRequest(self._lease_size),
                                  timeout=self._ask_timeout)
        except pykka.Timeout:
            log.warning("limiter.ask_timeout", timeout=self._ask_timeout)
            self._blocked_until = now + self._ask_timeout
            return
        if not isinstance(lease, Lease):
            raise TypeError(f"limiter answered {lease!r}, not a Lease")
        if lease.granted > 0:
            self._held += lease.granted
            self._blocked_until = -math.inf
        else:
            self._blocked_until = now + lease.retry_after
