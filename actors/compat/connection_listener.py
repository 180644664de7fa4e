"""ConnectionListener: SpiNNMan's listener thread, as supervised actors.

Same constructor and methods as SpiNNMan's; behind them a Supervisor runs
one ListenerActor and ``n_processes`` CallbackActors. Callbacks run on the
callback actors' threads, each seeing messages in arrival order.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar, cast

import pykka

from actors.listening.callbacks import DEFAULT_BACKLOG, Backlog, CallbackActor
from actors.listening.listener import (
    GetListenerStats,
    Listenable,
    ListenerActor,
    ListenerStats,
    where_is,
)
from actors.supervision.child import Watch, stop_and_join
from actors.supervision.spec import ChildSpec
from actors.supervision.supervisor import Supervisor, WhereIs
from messages.errors import InvalidArgumentError

T = TypeVar("T")

_CALLBACK = "callback-"
_LISTENER = "listener"


class ConnectionListener(Generic[T]):
    """Listens to ``connection`` and calls every callback with each message.

    ``timeout`` is how long one wait for a message lasts: close() takes
    effect when the pending wait returns. ``backlog`` bounds the messages
    each callback actor may have waiting; beyond it they are dropped and
    counted (see stats()).
    """

    def __init__(
        self,
        connection: Listenable[T],
        n_processes: int = 4,
        timeout: float = 1,
        *,
        backlog: int = DEFAULT_BACKLOG,
    ) -> None:
        if (
            isinstance(n_processes, bool)
            or not isinstance(n_processes, int)
            or n_processes < 1
        ):
            raise InvalidArgumentError(
                "n_processes", n_processes, "must be a positive integer"
            )
        if not isinstance(timeout, (int, float)) or timeout <= 0:
            raise InvalidArgumentError(
                "timeout", timeout, "must be a positive number of seconds"
            )
        self._connection = connection
        self._timeout = float(timeout)
        self._callbacks: list[list[Callable[[Any], None]]] = [
            [] for _ in range(n_processes)
        ]
        self._backlogs = [Backlog(backlog) for _ in range(n_processes)]
        self._added = 0
        self._closing = threading.Event()
        self._finished = threading.Event()
        self._supervisor: pykka.ActorRef[Any] | None = None
        self._lock = threading.Lock()
        self._stopping = False
        self._stopped = threading.Event()

    def add_callback(self, callback: Callable[[T], None]) -> None:
        """Call ``callback(message)`` for every message from now on."""
        if not callable(callback):
            raise InvalidArgumentError("callback", callback, "must be callable")
        with self._lock:
            slot = self._added % len(self._callbacks)
            self._added += 1
            # The listener copies the list for each batch it sends.
            self._callbacks[slot].append(callback)

    def start(self) -> None:
        """Start listening in the background."""
        with self._lock:
            if self._supervisor is not None:
                raise RuntimeError("the listener has already started")
            specs = [self._callback_spec(slot) for slot in range(len(self._callbacks))]
            specs.append(
                ChildSpec(_LISTENER, self._start_listener, restart="transient")
            )
            self._supervisor = Supervisor.start(
                specs,
                strategy="one_for_one",
                max_restarts=10,
                period=1.0,
                name="connection-listener",
            )

    def run(self) -> None:
        """Listen on this thread until closed (or the connection closes)."""
        if self._supervisor is None:
            self.start()
        self._finished.wait()
        self._stop_actors()

    def close(self) -> None:
        """Stop after the pending receive returns, let the callbacks finish
        what they were given, and wait for all of it."""
        self._closing.set()
        if self._supervisor is not None:
            self._finished.wait(self._timeout + 10)
        self._stop_actors()

    def stats(self) -> ListenerStats | None:
        """The listener's counters (None before start)."""
        supervisor = self._supervisor
        if supervisor is None:
            return None
        try:
            listener = cast(
                "pykka.ActorRef[Any] | None",
                supervisor.ask(WhereIs(_LISTENER), timeout=5),
            )
            if listener is None:
                return None
            return cast(ListenerStats, listener.ask(GetListenerStats(), timeout=5))
        except (pykka.ActorDeadError, pykka.Timeout):
            return None

    @property
    def lost(self) -> int:
        """Messages lost with a callback actor that died holding them."""
        return sum(backlog.lost for backlog in self._backlogs)

    # -- inside ----------------------------------------------------------------

    def _callback_spec(self, slot: int) -> ChildSpec:
        def start(watch: Watch) -> pykka.ActorRef[Any]:
            return CallbackActor.start(self._backlogs[slot], watch=watch)

        return ChildSpec(f"{_CALLBACK}{slot}", start)

    def _start_listener(self, watch: Watch) -> pykka.ActorRef[Any]:
        return ListenerActor.start(
            self._connection,
            where_is(watch.supervisor, _CALLBACK),
            self._backlogs,
            self._callbacks,
            timeout=self._timeout,
            closing=self._closing,
            finished=self._finished,
            watch=watch,
        )

    def _stop_actors(self) -> None:
        """Stop the actors (callbacks first finish what they were given);
        whoever comes second waits for whoever came first."""
        with self._lock:
            supervisor = self._supervisor
            first = not self._stopping
            self._stopping = True
        if supervisor is None:
            return
        if first:
            stop_and_join(supervisor, 30)
            self._stopped.set()
        self._stopped.wait(30)
