"""The lease helper: tokens taken from a RateLimiterActor a burst at a time."""

from __future__ import annotations

import math

import pykka

from actors.ratelimit.limiter import Lease, LeaseRequest, Limiter, positive_int
from messages.errors import InvalidArgumentError
from transport.logs import get_logger

log = get_logger(__name__)


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

    def __init__(
        self, limiter_ref: Limiter, lease_size: int = 32, ask_timeout: float = 1.0
    ) -> None:
        self._ref = limiter_ref
        self._lease_size = positive_int("lease_size", lease_size)
        if (
            isinstance(ask_timeout, bool)
            or not isinstance(ask_timeout, (int, float))
            or not ask_timeout > 0
            or not math.isfinite(ask_timeout)
        ):
            raise InvalidArgumentError(
                "ask_timeout", ask_timeout, "must be a positive number of seconds"
            )
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
            raise InvalidArgumentError(
                "wanted", wanted, "must be a non-negative integer"
            )
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
                "tokens", tokens, f"must be 0..{self._held} (in hand)"
            )
        self._held -= tokens

    def next_ready(self, now: float) -> float | None:
        """When :meth:`take` may next return something: None if tokens are
        in hand, else the later of ``now`` and the end of the refusal."""
        if self._held > 0:
            return None
        return max(now, self._blocked_until)

    def _ask(self, now: float) -> None:
        try:
            lease = self._ref.ask(
                LeaseRequest(self._lease_size), timeout=self._ask_timeout
            )
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
