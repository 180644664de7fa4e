"""SCPRequestPipeLine: SpiNNMan's pipeline, driven by a ConnectionActor.

Code written for SpiNNMan keeps working: the same constructor, the same
send_request / finish calls, callbacks run on the caller's thread inside
those calls, and the same counters. Behind it, requests go to the one
ConnectionActor of the connection in batches, each with its own
retransmission timer, so a lost packet costs one resend, not a stalled
window.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, Generic, TypeVar

import pykka

from actors.connection.actor import ConnectionActor
from actors.connection.book import JobBook, next_outcomes
from actors.connection.messages import Submit
from actors.errors import ShutDown
from actors.lifetime import track
from actors.protocol.jobs import Outcome, SCPJob
from actors.protocol.settings import WindowSettings
from actors.supervision.child import stop_and_join
from messages.errors import InvalidArgumentError
from messages.scp.base import AbstractSCPRequest, AbstractSCPResponse
from messages.scp.enums import SCPResult
from messages.scp.layout import parse_reply
from messages.validate import caller_names, check_int
from transport.connections.abstract import BoardConnection
from transport.connections.driven import DrivenConnection, has_no_remote, is_plain
from transport.connections.scamp import SCAMPConnection
from transport.logs import get_logger

log = get_logger(__name__)

R = TypeVar("R", bound=AbstractSCPResponse)
Callback = Callable[[R], None]
ErrorCallback = Callable[
    [AbstractSCPRequest[R], Exception, TracebackType | None, SCAMPConnection], None
]

#: SpiNNMan's defaults.
N_RETRIES = 10
SCP_TIMEOUT = 1.0
#: Requests handed to the actor in one message.
_BATCH = 32
#: How long the book of a connection that cannot be weakly referenced
#: (SpiNNMan's) is kept once no pipeline uses it (at least its
#: max_datagram_age): a pipeline back within it goes on with the same
#: sequence numbers and fences; after it the book is dropped, so a
#: process that makes connection after connection does not keep them all.
RELEASED_BOOK_KEEP = 10.0


@dataclass
class _KeptBook:
    """The book of a connection that cannot be weakly referenced, with the
    connection itself (so that its id stays its own), how long to keep
    the book once no pipeline uses it, and until when (None: in use)."""

    connection: Any
    book: JobBook
    keep: float
    until: float | None = None


class _SharedActors:
    """One ConnectionActor per connection, however many pipelines use it:
    a board's window is a budget shared by everyone talking to it."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._actors: dict[int, tuple[pykka.ActorRef[Any], int]] = {}
        #: One per connection, for as long as the connection lives.
        self._books: weakref.WeakKeyDictionary[Any, JobBook] = (
            weakref.WeakKeyDictionary()
        )
        #: The same, by id, for connections that cannot be weakly
        #: referenced.
        self._books_by_id: dict[int, _KeptBook] = {}

    def acquire(self, connection: Any, settings: WindowSettings) -> pykka.ActorRef[Any]:
        with self._lock:
            entry = self._actors.get(id(connection))
            if entry is not None and entry[0].is_alive():
                self._actors[id(connection)] = (entry[0], entry[1] + 1)
                return entry[0]
            # Sequence numbers carry on from the connection's last actor:
            # a late reply to its requests must not answer ours.
            book = self._book(connection, settings.max_datagram_age)
            # Our own connection, unmodified, is driven through its socket;
            # anything else (SpiNNMan's, a subclass, a wrapper, a mock)
            # through its own methods.
            board: BoardConnection = (
                connection if is_plain(connection) else DrivenConnection(connection)
            )
            actor = ConnectionActor.start(
                lambda: board, settings, owns_connection=False, book=book
            )
            self._actors[id(connection)] = (actor, 1)
            return actor

    def _book(self, connection: Any, max_datagram_age: float) -> JobBook:
        try:
            return self._books.setdefault(connection, JobBook())
        except TypeError:  # e.g. SpiNNMan's connections have no __weakref__
            pass
        self._drop_released()
        keep = max(RELEASED_BOOK_KEEP, max_datagram_age)
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
            if kept.until is not None and kept.until <= now:
                del self._books_by_id[key]

    @property
    def books_kept(self) -> int:
        """Books of connections that cannot be weakly referenced, kept."""
        with self._lock:
            return len(self._books_by_id)

    def running(self) -> list[pykka.ActorRef[Any]]:
        """The connection actors pipelines use now (what metrics reads)."""
        with self._lock:
            return [actor for actor, _ in self._actors.values() if actor.is_alive()]

    def release(self, connection: Any) -> None:
        with self._lock:
            entry = self._actors.get(id(connection))
            if entry is None:
                return
            actor, users = entry
            if users > 1:
                self._actors[id(connection)] = (actor, users - 1)
                return
            del self._actors[id(connection)]
            kept = self._books_by_id.get(id(connection))
            if kept is not None:
                kept.until = self._clock() + kept.keep
            self._drop_released()
        stop_and_join(actor, 10)


_shared = _SharedActors()


def pipeline_connections() -> list[pykka.ActorRef[Any]]:
    """The ConnectionActors that SCPRequestPipeLines drive now, one per
    connection (code written for SpiNNMan has no Client to ask)."""
    return _shared.running()


def _window_settings(
    n_channels: int | None,
    intermediate_channel_waits: int | None,
    n_retries: int,
    packet_timeout: float,
    non_fail_retry_codes: Iterable[SCPResult] | None,
) -> WindowSettings:
    """SpiNNMan's pipeline parameters as a window's settings, each refused
    under SpiNNMan's name for it. A receive threshold at or past the
    window's size becomes size - 1 (a sliding window)."""
    with caller_names(
        size="n_channels", retries="n_retries", initial_rto="packet_timeout"
    ):
        settings = WindowSettings.from_timeout(
            packet_timeout,
            size=8 if n_channels is None else n_channels,
            retries=n_retries,
            non_fail_retry_codes=frozenset(non_fail_retry_codes or ()),
        )
    waits = intermediate_channel_waits
    if waits is None:
        waits = max(settings.size - 8, 0)
    check_int("intermediate_channel_waits", waits, 0)
    return replace(settings, refill_at=min(waits, settings.size - 1))


class SCPRequestPipeLine(Generic[R]):
    """Pipelines SCP requests over one connection, SpiNNMan-style.

    ``n_channels`` requests are on the wire at once; once that many are,
    new ones wait until no more than ``intermediate_channel_waits`` are
    outstanding (SpiNNMan's meaning: 0 drains the window first). Each
    request may be resent ``n_retries`` times; ``packet_timeout`` is the
    longest wait for a reply (the actual wait adapts to the round trips
    seen). A result in ``non_fail_retry_codes`` that persists past the
    retries is handed to the callback instead of failing.

    ``connection`` is any object with SpiNNMan's connection surface
    (``send``, ``receive_scp_response`` or ``receive``,
    ``is_ready_to_receive``, ``close``): SpiNNMan's own SCAMPConnection, a
    subclass or wrapper that logs or counts, a mock. It is driven through
    those methods; only an unmodified SCAMPConnection of ours has its
    socket used directly (the fast path). It must have a remote address.
    """

    def __init__(
        self,
        connection: SCAMPConnection,
        n_channels: int | None = 1,
        intermediate_channel_waits: int | None = 0,
        n_retries: int = N_RETRIES,
        packet_timeout: float = SCP_TIMEOUT,
        non_fail_retry_codes: Iterable[SCPResult] | None = None,
    ) -> None:
        if has_no_remote(connection):
            raise InvalidArgumentError(
                "connection",
                connection,
                "has no remote address: a pipeline must be able to send "
                "(give the connection a remote_host)",
            )
        self._settings = _window_settings(
            n_channels,
            intermediate_channel_waits,
            n_retries,
            packet_timeout,
            non_fail_retry_codes,
        )
        self._connection = connection
        self._actor: pykka.ActorRef[Any] | None = None
        self._outcomes: queue.SimpleQueue[list[Outcome]] = queue.SimpleQueue()
        self._keys = itertools.count()
        self._pending: dict[
            int, tuple[AbstractSCPRequest[R], Callback[R] | None, ErrorCallback[R]]
        ] = {}
        self._batch: list[SCPJob] = []
        #: Outcomes taken but not yet called back (an error callback raised).
        self._leftover: list[Outcome] = []
        self._high_water = max(4 * _BATCH, 4 * self._settings.size)
        self._n_resent = 0
        self._n_retry_code_resent = 0
        self._n_timeouts = 0
        track(self._abandon)  # let go of at exit if finish() never came

    # -- SpiNNMan's API --------------------------------------------------------

    def send_request(
        self,
        request: AbstractSCPRequest[R],
        callback: Callback[R] | None,
        error_callback: ErrorCallback[R],
    ) -> None:
        """Queue ``request``; ``callback(response)`` or
        ``error_callback(request, exception, traceback, connection)`` runs
        later, on this thread, inside send_request or finish."""
        if not isinstance(request, AbstractSCPRequest):
            raise InvalidArgumentError(
                "request", type(request).__name__, "must be an AbstractSCPRequest"
            )
        if callback is not None and not callable(callback):
            raise InvalidArgumentError("callback", callback, "must be callable or None")
        if not callable(error_callback):
            raise InvalidArgumentError(
                "error_callback", error_callback, "must be callable"
            )
        if self._actor is None:
            self._actor = _shared.acquire(self._connection, self._settings)
        key = next(self._keys)
        self._pending[key] = (request, callback, error_callback)
        self._batch.append(SCPJob(key, request))
        if len(self._batch) >= _BATCH:
            self._flush()
        self._run_callbacks(block=False)
        while len(self._pending) > self._high_water:
            self._run_callbacks(block=True)

    def finish(self) -> None:
        """Return once every request sent has had one of its callbacks."""
        try:
            self._flush()
            while self._pending or self._leftover:
                self._run_callbacks(block=True)
        finally:
            if self._actor is not None and not self._pending:
                self._actor = None
                _shared.release(self._connection)

    @property
    def n_channels(self) -> int:
        return self._settings.size

    @property
    def n_resent(self) -> int:
        """Resends for any reason (timeouts and busy codes)."""
        return self._n_resent

    @property
    def n_retry_code_resent(self) -> int:
        """Resends because the board answered with a retry code."""
        return self._n_retry_code_resent

    @property
    def n_timeouts(self) -> int:
        """Replies waited for in vain (each led to a resend or a failure)."""
        return self._n_timeouts

    # -- inside ----------------------------------------------------------------

    def _abandon(self) -> None:
        """At exit, without finish(): the caller has gone, so no callback
        runs; requests not yet handed over end with ShutDown here, and
        letting go of the connection actor (the last user stops it) ends
        the rest with ShutDown and closes nothing it does not own."""
        batch, self._batch = self._batch, []
        if batch:
            error = ShutDown("the interpreter is exiting")
            self._outcomes.put([Outcome(job.key, error=error) for job in batch])
        if self._actor is not None:
            self._actor = None
            _shared.release(self._connection)

    def _flush(self) -> None:
        if not self._batch:
            return
        batch, self._batch = self._batch, []
        assert self._actor is not None
        try:
            self._actor.tell(Submit(batch, self._outcomes))
        except pykka.ActorDeadError:
            self._outcomes.put(
                [
                    Outcome(job.key, error=ShutDown("the connection actor has stopped"))
                    for job in batch
                ]
            )

    def _run_callbacks(self, block: bool) -> None:
        """Take the outcomes that have come (waiting for some if
        ``block``) and call each request's callback or error callback."""
        if self._leftover:
            outcomes, self._leftover = self._leftover, []
        else:
            try:
                outcomes = self._outcomes.get_nowait()
            except queue.Empty:
                if not block:
                    return
                outcomes = self._wait_for_outcomes()
        for index, outcome in enumerate(outcomes):
            try:
                self._run_callback(outcome)
            except BaseException:
                # An error callback raised: the caller sees it, and the
                # rest of the batch waits for the next call.
                self._leftover = outcomes[index + 1 :]
                raise

    def _wait_for_outcomes(self) -> list[Outcome]:
        actor = self._actor
        batch = next_outcomes(
            self._outcomes, lambda: actor is not None and actor.is_alive()
        )
        if batch is None:
            error = ShutDown("the connection actor stopped without answering")
            return [Outcome(key, error=error) for key in self._pending]
        return batch

    def _run_callback(self, outcome: Outcome) -> None:
        entry = self._pending.pop(outcome.key, None)  # type: ignore[call-overload]
        if entry is None:
            return
        request, callback, error_callback = entry
        self._n_resent += outcome.resends
        self._n_retry_code_resent += outcome.retry_code_resent
        self._n_timeouts += outcome.timeouts
        error = outcome.error
        if error is None:
            try:
                response = parse_reply(request, outcome.value)
                if callback is not None:
                    callback(response)
                return
            except Exception as failure:  # noqa: BLE001 - goes to the caller
                error = failure
        assert isinstance(error, Exception)
        error_callback(request, error, error.__traceback__, self._connection)
