"""ConnectionListener: SpiNNMan's listener thread, as supervised actors.

Same constructor and methods as SpiNNMan's, and like SpiNNMan's it is a
``threading.Thread`` (a daemon unless told otherwise): start(), run(),
is_alive(), join(), name, daemon. It listens to our connections and to
SpiNNMan's (an EIEIOConnection fed by an IP tag, as SpiNNFrontEndCommon's
live events are), whose errors it reads as ours. Behind it a Supervisor runs one
ListenerActor and ``n_processes`` CallbackActors; the thread itself only
waits for the end and then stops them. Callbacks run on the callback
actors' threads, each seeing messages in arrival order.

Close means closed: close() returns within ``shutdown`` seconds however
many callback actors there are. One flag stops the listener reading and
every callback actor handing out messages, so what is still queued is
dropped at once (and counted); the callbacks already running are waited
for on all actors together, and one still running at the deadline is
abandoned (logged). After close() no callback of the listener starts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar, cast

import pykka

from actors.lifetime import track
from actors.listening.callbacks import DEFAULT_BACKLOG, Backlog, CallbackActor
from actors.listening.listener import (
    GetListenerStats,
    Listenable,
    ListenerActor,
    ListenerStats,
    where_is,
)
from actors.supervision.child import Watch, stop_and_join
from actors.supervision.messages import WhereIs
from actors.supervision.spec import ChildSpec
from actors.supervision.supervisor import Supervisor
from messages.errors import InvalidArgumentError
from transport.connections.driven import DrivenListenable
from transport.logs import get_logger

log = get_logger(__name__)

T = TypeVar("T")

_CALLBACK = "callback-"
_LISTENER = "listener"

#: How long close() may take, unless told otherwise (as a ChildSpec's
#: shutdown): the whole close, not each callback actor's share of it.
DEFAULT_SHUTDOWN = 5.0
#: What each actor is given to stop once close() has waited for the running
#: callbacks (it is idle by then, or abandoned). Set aside from the
#: shutdown budget, one per actor, so that the total stays within it.
STOP_GRACE = 0.1
#: How long a closer waits for the listener's own thread to return once the
#: actors are stopped (it has nothing left to do but return).
_THREAD_EXIT = 1.0


class ConnectionListener(threading.Thread, Generic[T]):
    """Listens to ``connection`` and calls every callback with each message.

    ``timeout`` is how long one wait for a message lasts. ``backlog``
    bounds the messages each callback actor may have waiting; beyond it
    they are dropped and counted (see stats()). ``shutdown`` bounds
    close(): a callback still running after it is abandoned.
    """

    def __init__(
        self,
        connection: Listenable[T],
        n_processes: int = 4,
        timeout: float = 1,
        *,
        backlog: int = DEFAULT_BACKLOG,
        shutdown: float = DEFAULT_SHUTDOWN,
        name: str | None = None,
        daemon: bool = True,
    ) -> None:
        if (
            isinstance(n_processes, bool)
            or not isinstance(n_processes, int)
            or n_processes < 1
        ):
            raise InvalidArgumentError(
                "n_processes", n_processes, "must be a positive integer"
            )
        for argument, value in (("timeout", timeout), ("shutdown", shutdown)):
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not value > 0
            ):
                raise InvalidArgumentError(
                    argument, value, "must be a positive number of seconds"
                )
        # Thread's own, not super()'s: under install() the class is also
        # SpiNNMan's listener (actors/compat/bridge.py), whose __init__
        # takes other arguments and must not run.
        threading.Thread.__init__(
            self,
            name=name or f"Connection listener for connection {connection}",
            daemon=daemon,
        )
        # Someone else's connection (SpiNNMan's) raises its own errors: a
        # closed one, a timeout, a datagram it could not read become ours.
        self._connection: Listenable[T] = (
            connection
            if type(connection).__module__.split(".")[0] == "transport"
            else DrivenListenable(connection)
        )
        self._timeout = float(timeout)
        self._shutdown = float(shutdown)
        self._stop_grace = min(STOP_GRACE, self._shutdown / (2 * (n_processes + 1)))
        self._callbacks: list[list[Callable[[Any], None]]] = [
            [] for _ in range(n_processes)
        ]
        self._backlogs = [Backlog(backlog) for _ in range(n_processes)]
        self._added = 0
        #: The one flag of a close: the listener stops reading, the callback
        #: actors stop handing out messages.
        self._closing = threading.Event()
        #: Set once the listener actor has stopped, or everything has.
        self._finished = threading.Event()
        self._final_stats: ListenerStats | None = None
        self._supervisor: pykka.ActorRef[Any] | None = None
        self._lock = threading.Lock()
        self._deadline: float | None = None
        self._shutting_down = False
        self._shut = threading.Event()
        self._log = log.bind(actor="connection-listener")
        track(self.close)  # closed at exit if still open (actors/lifetime.py)

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
        """Start listening in the background: the actors, then this thread,
        which waits for the end (see run())."""
        refused = self._start_actors()
        if refused is not None:
            raise RuntimeError(refused)
        try:
            super().start()
        except BaseException:
            self.close()
            raise

    def run(self) -> None:
        """Listen until closed, or until the connection closes and the
        callbacks have handled what they were given; then stop the actors.

        start() runs this on the listener's own thread; called directly, it
        listens on the caller's (as a Thread's run() would).
        """
        self._start_actors()
        if self._supervisor is None:
            return  # closed before it started
        self._finished.wait()
        self._drain()
        self._shut_down()

    def close(self) -> None:
        """Stop listening and drop what is still queued, within ``shutdown``
        seconds; afterwards no callback of this listener runs again (one
        still running then is abandoned, and logged). The connection stays
        open, as in SpiNNMan."""
        with self._lock:
            if self._deadline is None:
                self._deadline = time.monotonic() + self._shutdown
            deadline = self._deadline
        self._closing.set()
        for backlog in self._backlogs:
            backlog.wake()
        self._shut_down(deadline)
        if self.ident is not None and self is not threading.current_thread():
            self.join(max(0.0, deadline - time.monotonic()) + _THREAD_EXIT)

    def stats(self) -> ListenerStats | None:
        """The listener's counters: None before start, the last ones once
        it has stopped."""
        supervisor = self._supervisor
        if supervisor is None:
            return None
        if self._finished.is_set():
            return self._final_stats
        try:
            listener = cast(
                "pykka.ActorRef[Any] | None",
                supervisor.ask(WhereIs(_LISTENER), timeout=5),
            )
            if listener is None:
                return None
            return cast(ListenerStats, listener.ask(GetListenerStats(), timeout=5))
        except (pykka.ActorDeadError, pykka.Timeout):
            return self._final_stats if self._finished.is_set() else None

    @property
    def lost(self) -> int:
        """Messages lost with a callback actor that died holding them."""
        return sum(backlog.lost for backlog in self._backlogs)

    @property
    def dropped_on_close(self) -> int:
        """Messages handed to a callback actor and dropped unhandled because
        the listener was closed (counted once per callback actor, as
        stats().delivered is). An abandoned callback's actor drops the rest
        of its queue, and counts it, when that callback returns."""
        return sum(backlog.dropped_on_close for backlog in self._backlogs)

    # -- inside ----------------------------------------------------------------

    def _start_actors(self) -> str | None:
        """Start the supervisor and its children, or say why not."""
        with self._lock:
            if self._closing.is_set():
                return "the listener is closed"
            if self._supervisor is not None:
                return "the listener has already started"
            specs = [self._callback_spec(slot) for slot in range(len(self._callbacks))]
            specs.append(
                ChildSpec(
                    _LISTENER,
                    self._start_listener,
                    restart="transient",
                    shutdown=self._stop_grace,
                    # Gone for good (the supervisor gave up, say): run() ends.
                    cleanup=self._finished.set,
                )
            )
            self._supervisor = Supervisor.start(
                specs,
                strategy="one_for_one",
                max_restarts=10,
                period=1.0,
                name="connection-listener",
            )
            return None

    def _callback_spec(self, slot: int) -> ChildSpec:
        def start(watch: Watch) -> pykka.ActorRef[Any]:
            return CallbackActor.start(
                self._backlogs[slot], closed=self._closing, watch=watch
            )

        # Stopped only once close has waited for it (see _wind_down). Its
        # start is not waited for: the listener finds a restarted callback
        # through the supervisor while it runs, and a supervisor held up in
        # a callback's on_start would hold up the listener's fan-out.
        return ChildSpec(
            f"{_CALLBACK}{slot}",
            start,
            shutdown=self._stop_grace,
            start_timeout=None,
        )

    def _start_listener(self, watch: Watch) -> pykka.ActorRef[Any]:
        return ListenerActor.start(
            self._connection,
            where_is(watch.supervisor, _CALLBACK),
            self._backlogs,
            self._callbacks,
            timeout=self._timeout,
            closing=self._closing,
            finished=self._finished,
            report=self._keep_stats,
            watch=watch,
        )

    def _keep_stats(self, stats: ListenerStats) -> None:
        self._final_stats = stats

    def _drain(self) -> None:
        """The listener has stopped by itself: let the callbacks handle what
        they were given, unless close() comes first."""
        for backlog in self._backlogs:
            backlog.wait_empty(None, unless=self._closing.is_set)

    def _shut_down(self, deadline: float | None = None) -> None:
        """Stop the actors, once; whoever comes second waits for whoever
        came first (a closer no longer than its deadline)."""
        with self._lock:
            first = not self._shutting_down
            self._shutting_down = True
            supervisor = self._supervisor
            if deadline is None:
                deadline = self._deadline
        if not first:
            if deadline is None:
                self._shut.wait()
            else:
                self._shut.wait(max(0.0, deadline - time.monotonic()) + _THREAD_EXIT)
            return
        try:
            if supervisor is not None:
                self._wind_down(
                    supervisor, deadline or time.monotonic() + self._shutdown
                )
        finally:
            self._shut.set()
            self._finished.set()

    def _wind_down(self, supervisor: pykka.ActorRef[Any], deadline: float) -> None:
        """Drop what is queued, give the running callbacks until the
        deadline (less each actor's stop grace), abandon any still running,
        then stop the actors."""
        begun = time.monotonic()
        self._closing.set()
        for backlog in self._backlogs:
            backlog.wake()
        wait_until = deadline - (len(self._backlogs) + 1) * self._stop_grace
        self._finished.wait(max(0.0, wait_until - time.monotonic()))
        for backlog in self._backlogs:
            backlog.wait_empty(max(0.0, wait_until - time.monotonic()))
        abandoned = [slot for slot, b in enumerate(self._backlogs) if b.waiting]
        for slot in abandoned:
            self._log.error(
                "callback.abandoned",
                slot=slot,
                queued=self._backlogs[slot].waiting,
                waited=round(time.monotonic() - begun, 3),
            )
        self._log.info(
            "listener.shut_down",
            dropped_on_close=self.dropped_on_close,
            abandoned=abandoned,
        )
        try:  # (an actor its supervisor gave up on and stopped is no error)
            stop_and_join(supervisor, 30)
        except pykka.Timeout:
            self._log.error("listener.stop_timeout", supervisor="connection-listener")
