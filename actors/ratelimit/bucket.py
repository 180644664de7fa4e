"""A thread-safe token bucket on an injectable monotonic clock.

Same contract as SpiNNMan's ``TokenBucket(tokens, fill_rate)``: the bucket
holds at most ``tokens`` (its capacity), starts full, and refills at
``fill_rate`` tokens per second. It differs on purpose where SpiNNMan's is
wrong or unsafe:

* the clock is monotonic and injectable, so a wall-clock jump cannot mint
  tokens and tests run on a fake clock;
* the refill time stamp moves on every look, full or not, so an idle spell
  never banks more than one bucketful: over any interval of ``t`` seconds at
  most ``capacity + fill_rate * t`` tokens are handed out;
* asking for more than the capacity raises instead of sleeping forever;
* a lock guards the state, and a blocking :meth:`consume` sleeps without it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from messages.errors import InvalidArgumentError

#: Float refills drift (0.1 * 10 steps is not quite 1); a deficit this small
#: is treated as met so a waiter that slept exactly long enough is served.
_SLACK = 1e-9


def _number(name: str, value: object) -> float:
    """``value`` as a finite float, or raise naming it (bools are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgumentError(name, value, "must be a number")
    number = float(value)
    if not math.isfinite(number):
        raise InvalidArgumentError(name, value, "must be finite")
    return number


class TokenBucket:
    """Tokens refilled at a steady rate up to a capacity; see the module doc."""

    __slots__ = (
        "_capacity",
        "_fill_rate",
        "_tokens",
        "_stamp",
        "_clock",
        "_sleep",
        "_lock",
    )

    def __init__(
        self,
        tokens: float,
        fill_rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        """``tokens`` is the capacity (at least 1, so a whole token fits);
        ``fill_rate`` is tokens per second (0 means a one-off budget)."""
        capacity = _number("tokens", tokens)
        if capacity < 1:
            raise InvalidArgumentError(
                "tokens", tokens, "capacity must be at least one token"
            )
        rate = _number("fill_rate", fill_rate)
        if rate < 0:
            raise InvalidArgumentError("fill_rate", fill_rate, "must not be negative")
        self._capacity = capacity
        self._fill_rate = rate
        self._tokens = capacity
        self._clock = clock
        self._sleep = sleep
        self._stamp = clock()
        self._lock = threading.Lock()

    @property
    def capacity(self) -> float:
        """The most tokens the bucket holds (the seed's ``tokens`` argument)."""
        return self._capacity

    @property
    def fill_rate(self) -> float:
        """Tokens added per second."""
        return self._fill_rate

    @property
    def tokens(self) -> float:
        """Tokens in the bucket now, after refilling for the time passed."""
        with self._lock:
            self._refill()
            return max(self._tokens, 0.0)

    def consume(self, tokens: float, block: bool = True) -> bool:
        """Take ``tokens`` and return True; if there are too few, either wait
        for the refill (``block``) or return False having taken nothing.

        A blocking call on a bucket with ``fill_rate`` 0 that cannot be met
        returns False, since waiting would never end.
        """
        wanted = _number("tokens", tokens)
        if wanted <= 0:
            raise InvalidArgumentError("tokens", tokens, "must be positive")
        if wanted > self._capacity:
            raise InvalidArgumentError(
                "tokens",
                tokens,
                f"more than the capacity {self._capacity:g} can never be met",
            )
        while True:
            with self._lock:
                self._refill()
                deficit = wanted - self._tokens
                if deficit <= _SLACK:
                    self._tokens -= wanted
                    return True
                if not block or self._fill_rate == 0:
                    return False
                delay = deficit / self._fill_rate
            # Sleep unlocked so other threads can refill-check and take;
            # after waking we re-check, as someone may have beaten us to it.
            self._sleep(delay)

    def take_up_to(self, tokens: int) -> tuple[int, float]:
        """Take as many whole tokens as are there, at most ``tokens``, without
        waiting; return ``(granted, retry_after)``.

        ``retry_after`` is 0.0 when something was granted, else the seconds
        until one whole token is in (``math.inf`` if the bucket never refills).
        Asking for more than the capacity is allowed: the grant is just capped.
        """
        if isinstance(tokens, bool) or not isinstance(tokens, int):
            raise InvalidArgumentError("tokens", tokens, "must be an integer")
        if tokens <= 0:
            raise InvalidArgumentError("tokens", tokens, "must be positive")
        with self._lock:
            self._refill()
            whole = math.floor(self._tokens + _SLACK)
            granted = min(tokens, whole)
            if granted > 0:
                self._tokens -= granted
                return granted, 0.0
            if self._fill_rate == 0:
                return 0, math.inf
            return 0, max(1.0 - self._tokens, 0.0) / self._fill_rate

    def _refill(self) -> None:
        """Add the tokens earned since the last look; the caller holds the lock.

        The stamp moves even when the bucket is full: time spent full earns
        nothing, which is the seed's idle-spell bug fixed.
        """
        now = self._clock()
        elapsed = now - self._stamp
        if elapsed > 0:
            self._tokens = min(self._capacity, self._tokens + self._fill_rate * elapsed)
            self._stamp = now

    def __repr__(self) -> str:
        return f"TokenBucket(tokens={self._capacity:g}, fill_rate={self._fill_rate:g})"
