"""A clock for tests of timing logic: it moves only when told to.

Everything in spinnactors that cares about time takes a clock (a function
returning seconds), so a test can pass a FakeClock and play out timeouts,
refills and backoffs exactly, with no sleeping.
"""

from __future__ import annotations

import threading


class FakeClock:
    """A settable clock; ``sleep`` moves it on instead of
    waiting (and remembers how long each sleep was). Safe to read from
    other threads, such as an actor's."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move on ``seconds`` (negative: back, to test code against a
        clock that misbehaves)."""
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"seconds={seconds}: cannot sleep backwards")
        with self._lock:
            self.sleeps.append(seconds)
            self._now += seconds
