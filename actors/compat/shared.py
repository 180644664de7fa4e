"""One supervised ConnectionActor per connection, shared by its pipelines.

A board's window is a budget shared by everyone talking to it, so every
SCPRequestPipeLine on one connection hands its requests to the same
actor. That actor runs under a Supervisor of its own: killed or failed
mid-transfer it is restarted, and the requests it had open, kept in the
connection's JobBook, are resent by its successor and answered once
each. The book outlives the actor (and, for a while, the pipelines), so
sequence numbers carry on and a late reply to an earlier request can
never answer a later one.

By default a connection's actor stops when its last pipeline finishes
(``linger`` 0). With a ``linger`` (install() sets one) it stays idle that
long after, so that the next call of SpiNNMan's Transceiver, which makes
a new pipeline for every operation, finds it running: no restart per
operation, and the board stays on /metrics between operations. A
lingering actor whose settings differ from the next pipeline's is
replaced (the book carried over), so that each SpiNNMan process keeps its
own retries, timeout and non-fail codes.
"""

from __future__ import annotations

import socket
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pykka

from actors.connection.actor import ConnectionActor, Wake
from actors.connection.book import JobBook
from actors.errors import ShutDown
from actors.lifetime import track
from actors.protocol.jobs import Job, OutcomeSink
from actors.protocol.settings import WindowSettings
from actors.supervision.api import ChildLookup
from actors.supervision.child import Watch, stop_and_join
from actors.supervision.messages import SupervisorStats
from actors.supervision.spec import Backoff, ChildSpec
from actors.supervision.supervisor import Supervisor
from transport.capture.tap import attach
from transport.capture.writer import PacketCapture
from transport.connections.abstract import BoardConnection
from transport.connections.driven import DrivenConnection, is_plain
from transport.logs import get_logger

log = get_logger(__name__)

#: How long the book of a connection that cannot be weakly referenced
#: (SpiNNMan's) is kept once no pipeline uses it (at least its
#: max_datagram_age): a pipeline back within it goes on with the same
#: sequence numbers and fences; after it the book is dropped, so a
#: process that makes connection after connection does not keep them all.
RELEASED_BOOK_KEEP = 10.0
#: A connection actor failing more often than this is given up on (its
#: open requests end with ShutDown), as a Client's is.
MAX_RESTARTS = 3
RESTART_PERIOD = 5.0
_CHILD = "connection"
_STOP_TIMEOUT = 10.0


@dataclass
class _KeptBook:
    """The book of a connection that cannot be weakly referenced, with the
    connection itself (so that its id stays its own), how long to keep
    the book once no pipeline uses it, and until when (None: in use)."""

    connection: Any
    book: JobBook
    keep: float
    until: float | None = None


class ConnectionGroup:
    """One connection's supervised ConnectionActor, its book, and the
    pipelines using it."""

    def __init__(
        self,
        connection: Any,
        settings: WindowSettings,
        book: JobBook,
        capture: PacketCapture | None,
        backoff: Backoff | None = None,
    ) -> None:
        self.connection = connection
        self.settings = settings
        self.book = book
        self.users = 0
        #: When the last pipeline let go (None: in use).
        self.idle_since: float | None = None
        self._stopping = False
        self._starts = 0
        # Our own connection, unmodified, is driven through its socket;
        # anything else (SpiNNMan's, a subclass, a wrapper, a mock)
        # through its own methods.
        board: BoardConnection
        if is_plain(connection):
            board = connection
            if capture is not None:
                attach(connection.endpoint, capture)
        else:
            board = DrivenConnection(connection, capture=capture)
        self._board = board
        #: Its board's "host:port" (as its connection's stats say it).
        self.label = f"{board.remote_ip_address}:{board.remote_port}"
        self.supervisor = Supervisor.start(
            [ChildSpec(_CHILD, self._start, cleanup=self._give_up)],
            max_restarts=MAX_RESTARTS,
            period=RESTART_PERIOD,
            backoff=backoff,
            name=f"pipeline-{self.label}",
        )
        self._current = ChildLookup(self.supervisor, _CHILD)

    def _start(self, watch: Watch) -> pykka.ActorRef[Any]:
        self._starts += 1
        board = self._board
        return ConnectionActor.start(
            lambda: board,
            self.settings,
            owns_connection=False,
            book=self.book,
            watch=watch,
        )

    def _give_up(self) -> None:
        self.book.fail_all(
            ShutDown("the connection kept failing; its supervisor gave up")
        )

    def post(self, jobs: Sequence[Job], sink: OutcomeSink) -> None:
        """Hand ``jobs`` to whichever incarnation runs (a restarting one
        finds them in the book when it starts)."""
        self.book.put(jobs, sink)
        actor = self._current()
        if actor is not None:
            try:  # noqa: SIM105 - every post: suppress() costs more
                actor.tell(Wake())
            except pykka.ActorDeadError:
                pass

    @property
    def alive(self) -> bool:
        return self.supervisor.is_alive()

    @property
    def actor(self) -> pykka.ActorRef[Any] | None:
        """The connection actor running now (None while it restarts)."""
        return self._current() if self.alive else None

    @property
    def gave_up(self) -> bool:
        """Whether its supervisor has ended without being stopped: it gave
        up on the connection (its board is shown down until the
        connection's owner closes it, or a pipeline starts it again)."""
        return not self._stopping and not self.supervisor.is_alive()

    @property
    def final_supervision(self) -> SupervisorStats:
        """Its supervisor's figures once it has given up (it has stopped:
        there is no one to ask), for metrics."""
        return SupervisorStats(
            children=(_CHILD,),
            running=(),
            restarts=max(0, self._starts - 1),
            gave_up=True,
            name=f"pipeline-{self.label}",
        )

    def stop(self) -> None:
        self._stopping = True
        stop_and_join(self.supervisor, _STOP_TIMEOUT)


class SharedConnections:
    """The ConnectionGroups of every connection pipelines use."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._groups: dict[int, ConnectionGroup] = {}
        #: One per connection, for as long as the connection lives.
        self._books: weakref.WeakKeyDictionary[Any, JobBook] = (
            weakref.WeakKeyDictionary()
        )
        #: The same, by id, for connections that cannot be weakly
        #: referenced.
        self._books_by_id: dict[int, _KeptBook] = {}
        #: How long a connection's actor stays once no pipeline uses it.
        self.linger = 0.0
        #: Where the datagrams of connections started from now on go.
        self.capture: PacketCapture | None = None
        #: The backoff before a restart of connections started from now on
        #: (None: at once).
        self.backoff: Backoff | None = None
        track(self.stop_idle)  # lingering actors stop at exit

    def acquire(self, connection: Any, settings: WindowSettings) -> ConnectionGroup:
        """The running group of ``connection``, started if need be."""
        stale: list[ConnectionGroup] = []
        with self._lock:
            group = self._groups.get(id(connection))
            if (
                group is not None
                and group.alive
                and group.users == 0
                and group.settings != settings
            ):
                # Lingered with another's settings: stopped before its
                # successor starts, so that the book it leaves (where
                # sequence numbers carry on) is the one the successor reads.
                group.stop()
                group = None
            if group is None or not group.alive:
                book = self._book(connection, settings.max_datagram_age)
                group = ConnectionGroup(
                    connection, settings, book, self.capture, self.backoff
                )
                self._groups[id(connection)] = group
            group.users += 1
            group.idle_since = None
            stale += self._expired()
        self._stop(stale)
        return group

    def release(self, connection: Any) -> None:
        """A pipeline has finished with ``connection``."""
        with self._lock:
            group = self._groups.get(id(connection))
            if group is None:
                return
            group.users = max(0, group.users - 1)
            if group.users == 0:
                group.idle_since = self._clock()
                kept = self._books_by_id.get(id(connection))
                if kept is not None:
                    kept.until = self._clock() + kept.keep
            stale = self._expired()
            self._drop_released()
        self._stop(stale)

    def running(self) -> list[pykka.ActorRef[Any]]:
        """The connection actors pipelines use now, or lingering (what
        metrics reads)."""
        return [actor for _, actor in self.boards() if actor is not None]

    def boards(self) -> list[tuple[str, pykka.ActorRef[Any] | None]]:
        """Each board pipelines use now, or linger on, with its connection
        actor (None while it restarts), for metrics: a restart must not
        take the board out of the scrape."""
        with self._lock:
            stale = self._expired()
            groups = [g for g in self._groups.values() if g.alive]
        self._stop(stale)
        return [(group.label, group.actor) for group in groups]

    def given_up(self) -> list[tuple[str, SupervisorStats]]:
        """Each board whose connection's supervisor gave up and whose
        connection's owner has not closed it yet, with that supervisor's
        last figures, for metrics: shown down, not left out."""
        with self._lock:
            stale = self._expired()
            groups = [g for g in self._groups.values() if g.gave_up]
        self._stop(stale)
        return [(group.label, group.final_supervision) for group in groups]

    def stop_idle(self) -> None:
        """Stop every group no pipeline uses now (uninstall, and exit)."""
        with self._lock:
            stale = [g for g in self._groups.values() if g.users == 0]
            for group in stale:
                del self._groups[id(group.connection)]
        self._stop(stale)

    @property
    def books_kept(self) -> int:
        """Books of connections that cannot be weakly referenced, kept."""
        with self._lock:
            return len(self._books_by_id)

    # -- inside ------------------------------------------------------------

    def _expired(self) -> list[ConnectionGroup]:
        """Take out the groups idle for longer than ``linger``, or stopped;
        one given up on once its connection is closed (under the lock);
        the caller stops them outside it."""
        now, linger = self._clock(), self.linger
        stale = [
            group
            for group in self._groups.values()
            if group.idle_since is not None
            and (
                _closed(group.connection)
                if group.gave_up
                else now - group.idle_since >= linger or not group.alive
            )
        ]
        for group in stale:
            del self._groups[id(group.connection)]
        return stale

    @staticmethod
    def _stop(groups: list[ConnectionGroup]) -> None:
        for group in groups:
            group.stop()

    def _book(self, connection: Any, max_datagram_age: float) -> JobBook:
        try:
            return self._books.setdefault(connection, JobBook())
        except TypeError:  # e.g. SpiNNMan's connections have no __weakref__
            pass
        self._drop_released()
        keep = max(RELEASED_BOOK_KEEP, max_datagram_age, self.linger)
        kept = self._books_by_id.get(id(connection))
        if kept is None:
            kept = self._books_by_id[id(connection)] = _KeptBook(
                connection, JobBook(), keep
            )
        kept.keep, kept.until = keep, None
        return kept.book

    def _drop_released(self) -> None:
        """Forget the by-id books released longer ago than they are kept."""
        now = self._clock()
        for key, kept in list(self._books_by_id.items()):
            if kept.until is not None and kept.until <= now and key not in self._groups:
                del self._books_by_id[key]


def _closed(connection: Any) -> bool:
    """Whether ``connection``'s owner has closed it: ours say so; one of
    SpiNNMan's by its socket (closed: no descriptor); anything else is
    taken for open (kept until a pipeline starts it again, or exit)."""
    closed = getattr(connection, "closed", None)
    if isinstance(closed, bool):
        return closed
    sock = getattr(connection, "_socket", None)
    return isinstance(sock, socket.socket) and sock.fileno() == -1


#: Every pipeline's connections in this process.
SHARED = SharedConnections()
