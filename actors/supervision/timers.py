"""A supervisor's clocks: restarts after a backoff, and the liveness tick
for children that cannot report their own end.

Each tells the supervisor a message through its inbox, so that only the
supervisor's own thread touches its state; a supervisor that has gone is
told nothing. cancel() stops them all when the supervisor ends.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import pykka


class Timers:
    """The timers of the supervisor whose ref is ``ref``; the ticker's
    thread is named after ``name``."""

    def __init__(self, ref: pykka.ActorRef[Any], name: str) -> None:
        self._ref = ref
        self._name = name
        self._timers: list[threading.Timer] = []
        self._ticking = threading.Event()
        #: Started with the first child that cannot report its own end.
        self._ticker: threading.Thread | None = None

    def after(self, delay: float, message: Any) -> None:
        """Tell ``message`` once, ``delay`` seconds from now."""
        ref = self._ref

        def fire() -> None:
            with contextlib.suppress(pykka.ActorDeadError):
                ref.tell(message)

        timer = threading.Timer(delay, fire)
        timer.daemon = True
        self._timers = [t for t in self._timers if t.is_alive()]
        self._timers.append(timer)
        timer.start()

    def tick(self, every: float, message: Any) -> None:
        """Tell ``message`` every ``every`` seconds until cancel(); once
        ticking, a second call changes nothing."""
        if self._ticker is None:
            self._ticker = threading.Thread(
                target=self._tick,
                args=(every, message),
                daemon=True,
                name=f"{self._name}-liveness",
            )
            self._ticker.start()

    def _tick(self, every: float, message: Any) -> None:
        ref = self._ref
        while not self._ticking.wait(every):
            try:
                ref.tell(message)
            except pykka.ActorDeadError:
                return

    def cancel(self) -> None:
        """Stop every timer and the ticker, and wait (briefly) for them."""
        self._ticking.set()
        ticker = self._ticker
        if ticker is not None and ticker is not threading.current_thread():
            ticker.join(1)
        for timer in self._timers:
            timer.cancel()
        for timer in self._timers:
            if timer is not threading.current_thread():
                timer.join(1)
        self._timers.clear()
