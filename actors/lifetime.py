"""What is still open when the interpreter exits: closed, within a budget.

A script that forgets ``close()`` or ``finish()`` must still exit. Python
joins non-daemon threads before it runs atexit hooks, so every thread of
ours is a daemon (the interpreter never waits for one), and this module's
atexit hook then closes what is still open, newest first, so that open
requests end with ShutDown, sockets close and workers are told to stop.
The closes run on a daemon thread of their own and the hook waits for them
at most EXIT_BUDGET seconds: whatever is left then dies with the process.

Only weak references are kept, so tracking never keeps an object alive;
one already collected is not closed (its daemon threads end at exit).
"""

from __future__ import annotations

import atexit
import itertools

# multiprocessing registers its own atexit hook (terminating daemonic
# children) when multiprocessing.util is first imported. Hooks run last
# registered first, so importing it before registering ours makes ours run
# first: a Machine's workers are asked to stop before they are terminated.
import multiprocessing.util  # noqa: F401
import os
import threading
import time
import weakref
from collections.abc import Callable

from transport.logs import get_logger

log = get_logger(__name__)

#: The longest the atexit hook waits for everything still open to close.
EXIT_BUDGET = 1.0
#: Dead references are swept out once this many more have been tracked.
_SWEEP_EVERY = 64

Close = Callable[[], None]


class Closables:
    """Weak references to what is to be closed at exit, in creation order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._order = itertools.count()
        self._open: dict[int, weakref.WeakMethod[Close]] = {}
        self._since_sweep = 0

    def track(self, close: Close) -> None:
        """Call ``close`` (a bound method) at exit if its object is still
        alive. Closing what has been closed already must do nothing: the
        hook does not know what the caller did meanwhile."""
        reference = weakref.WeakMethod(close)
        with self._lock:
            self._open[next(self._order)] = reference
            self._since_sweep += 1
            if self._since_sweep >= _SWEEP_EVERY:
                self._since_sweep = 0
                dead = [key for key, ref in self._open.items() if ref() is None]
                for key in dead:
                    del self._open[key]

    def tracked(self) -> list[Close]:
        """What would be closed now, newest first."""
        with self._lock:
            references = list(self._open.values())
        closes = (reference() for reference in reversed(references))
        return [close for close in closes if close is not None]

    def close_open(self, budget: float = EXIT_BUDGET) -> bool:
        """Close everything tracked, newest first, on a daemon thread; wait
        at most ``budget`` seconds. True if all of it closed in time."""
        closes = self.tracked()
        with self._lock:
            self._open.clear()
        if not closes:
            return True
        done = threading.Event()
        current: list[str] = []

        def close_all() -> None:
            for close in closes:
                current[:] = [_name(close)]
                _close(close)
            done.set()

        started = time.monotonic()
        try:
            threading.Thread(
                target=close_all, name="spinnactors-exit", daemon=True
            ).start()
        except RuntimeError:
            # Python 3.12.0 and 3.12.1 start no thread in an atexit hook:
            # close here, and start no close once the budget is spent.
            return self._close_here(closes, started, budget)
        if done.wait(budget):
            log.debug(
                "lifetime.closed", count=len(closes), took=time.monotonic() - started
            )
            return True
        log.warning(
            "lifetime.budget_spent",
            budget=budget,
            count=len(closes),
            closing=current[0] if current else None,
        )
        return False

    def _close_here(self, closes: list[Close], started: float, budget: float) -> bool:
        """close_open on the caller's thread: in order, each close to its
        end, none begun once ``budget`` seconds from ``started`` are spent."""
        for index, close in enumerate(closes):
            if time.monotonic() - started >= budget:
                log.warning(
                    "lifetime.budget_spent",
                    budget=budget,
                    count=len(closes),
                    left=len(closes) - index,
                )
                return False
            _close(close)
        return True

    def forget(self) -> None:
        """Drop every reference (a forked child has none of the threads
        its parent's objects run on: nothing there to close)."""
        self._lock = threading.Lock()
        self._open.clear()


def _name(close: Close) -> str:
    return repr(getattr(close, "__self__", close))


def _close(close: Close) -> None:
    """One close; one that fails is logged, and the rest still close."""
    try:
        close()
    except Exception as error:  # noqa: BLE001 - the rest still close
        log.warning("lifetime.close_failed", what=_name(close), error=repr(error))


#: The process's registry, closed by the atexit hook.
closables = Closables()
track = closables.track


def close_first() -> None:
    """Make the hook run before every atexit hook registered so far (hooks
    run last registered first): e.g. before ``ray.shutdown``, so that a
    Machine's Ray actors are told to stop while Ray still runs."""
    atexit.unregister(closables.close_open)
    atexit.register(closables.close_open)


os.register_at_fork(after_in_child=closables.forget)
atexit.register(closables.close_open)
