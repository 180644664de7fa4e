"""The parent's side of a placed board group: a book and a forwarding actor.

A GroupBook holds every job sent to one group that has no outcome yet, and
outlives the GroupActor that forwards them: when a worker dies (killed,
crashed, silent past its heartbeat deadline) the actor fails, its
supervisor starts a new one with a new worker, and that one sends the
book's open jobs again. An outcome is taken from the book once, so each
job still gets exactly one, even if a late one comes from the old worker.
"""

from __future__ import annotations

import itertools
import logging
import pickle
import queue
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any

import pykka

from actors.errors import RequestError, ShutDown
from actors.placement.links import GroupLink, LinkLost
from actors.placement.worker import (
    FORWARDED,
    AskStats,
    GroupFailed,
    GroupSpec,
    Heard,
    Heartbeat,
    Listen,
    Listening,
    LogRecords,
    Outcomes,
    Post,
    StatsReply,
    Stop,
    Unlisten,
    decode,
    encode,
)
from actors.protocol.fences import Span
from actors.protocol.jobs import (
    Job,
    Outcome,
    OutcomeSink,
    SCPJob,
    deliver,
    written_span,
)
from actors.ratelimit.limiter import Lease, LeaseRequest, Limiter
from actors.ratelimit.remote import LeaseAsk, LeaseGrant
from actors.supervision.supervisor import Supervised, Watch
from messages.errors import InvalidArgumentError
from transport.logs import get_logger

log = get_logger(__name__)

#: A group silent for this long is taken for hung, and restarted.
HEARTBEAT_DEADLINE = 2.0
#: How long a group's lease ask may wait on the parent's rate limiter (it
#: never sleeps; this only bounds a limiter that is stuck).
LEASE_ASK_TIMEOUT = 1.0
#: How long a stopping group may take to end on its own before it is killed.
STOP_GRACE = 5.0
#: How often the reader looks up from the link to see if it should stop.
_READ_SLICE = 0.05


#: The answer to a question whose worker was lost before it answered.
LOST = object()


@dataclass
class _Open:
    board: Hashable
    job: Job  # keyed by the book's wire key
    key: Hashable  # the caller's key
    sink: OutcomeSink
    sent: bool = False


@dataclass(frozen=True)
class Prepared:
    """A batch pickled for a group, not taken yet."""

    blob: bytes
    opened: list[tuple[int, _Open]]


class GroupBook:
    """Jobs sent to one group and not yet answered; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys = itertools.count()
        self._open: dict[int, _Open] = {}
        self._incoming: list[tuple[bytes, list[int]]] = []
        self._tickets = itertools.count()
        #: Questions asked of the group: ticket -> (where the answer goes,
        #: whether to give up on it when the worker is lost).
        self._waiting: dict[int, tuple[queue.SimpleQueue[Any], bool]] = {}
        #: What each listener hears: listen id -> where to put it.
        self.listeners: dict[int, tuple[Listen, Callable[[list[Any]], None]]] = {}
        #: Outcomes that came for jobs already answered (from an old worker).
        self.stale = 0

    def put(self, entries: Sequence[tuple[Hashable, Job]],
            sink: OutcomeSink) -> None:
        """Take jobs for the group (see prepare)."""
        self.take(self.prepare(entries, sink))

    def prepare(self, entries: Sequence[tuple[Hashable, Job]],
                sink: OutcomeSink) -> Prepared:
        """Jobs for the group, pickled here, on the caller's thread, so that
        one that cannot cross is refused at once (InvalidArgumentError) and
        nothing of the batch is taken; ``take`` then takes them."""
        with self._lock:
            keys = [next(self._keys) for _ in entries]
        wire = [(board, replace(job, key=key))
                for key, (board, job) in zip(keys, entries, strict=True)]
        try:
            blob = encode([Post(wire)])
        except Exception as error:  # noqa: BLE001 - whatever pickle raises
            raise InvalidArgumentError(
                "jobs", _describe(entries),
                f"cannot cross to the worker process: {error!r}") from None
        opened = [(key, _Open(board, wired, job.key, sink))
                  for key, (board, job), (_, wired)
                  in zip(keys, entries, wire, strict=True)]
        return Prepared(blob, opened)

    def take(self, prepared: Prepared) -> None:
        with self._lock:
            self._open.update(prepared.opened)
            self._incoming.append((prepared.blob,
                                   [key for key, _ in prepared.opened]))

    def take_incoming(self) -> list[bytes]:
        """Batches put since the last look, marked as sent."""
        with self._lock:
            incoming, self._incoming = self._incoming, []
            for _, keys in incoming:
                for key in keys:
                    entry = self._open.get(key)
                    if entry is not None:
                        entry.sent = True
            return [blob for blob, _ in incoming]

    def take_for_new_worker(self) -> list[bytes]:
        """Everything open, as a batch to send to a new worker; the jobs
        that may not be sent again (an unsafe request that may have run
        already) end here with RequestError."""
        with self._lock:
            self._incoming.clear()
            again: list[tuple[Hashable, Job]] = []
            refused: list[_Open] = []
            fenced: list[tuple[Hashable, Span]] = []
            for key, entry in list(self._open.items()):
                job = entry.job
                if (entry.sent and isinstance(job, SCPJob)
                        and not job.request.may_resend):
                    refused.append(self._open.pop(key))
                    continue
                written = written_span(job)
                if entry.sent and written is not None:
                    fenced.append((entry.board, written))
                entry.sent = True
                again.append((entry.board, job))
        self._deliver([(entry, Outcome(entry.key, error=RequestError(
            f"{entry.job.request!r}: its worker died after it was sent; "  # type: ignore[union-attr]
            f"not sent again, as running it twice is not safe")))
            for entry in refused])
        return [encode([Post(again, fenced)])] if again else []

    def complete(self, outcomes: list[Outcome]) -> None:
        """Outcomes from the group: each to its job's sink, once."""
        with self._lock:
            found = []
            for outcome in outcomes:
                entry = self._open.pop(outcome.key, None)  # type: ignore[call-overload]
                if entry is None:
                    self.stale += 1
                else:
                    found.append((entry, replace(outcome, key=entry.key)))
        self._deliver(found)

    def fail_all(self, error: BaseException) -> None:
        """End every open job with ``error`` (no worker will run them)."""
        with self._lock:
            entries = list(self._open.values())
            self._open.clear()
            self._incoming.clear()
        self._deliver([(entry, Outcome(entry.key, error=error))
                       for entry in entries])

    @property
    def open_jobs(self) -> int:
        return len(self._open)

    # -- stats asked across the link --------------------------------------------

    def new_ticket(self, lost_with_worker: bool = True
                   ) -> tuple[int, queue.SimpleQueue[Any]]:
        """A ticket for a question to the group, and where its answer will
        come. If ``lost_with_worker``, a lost worker answers it LOST (ask
        again); else it waits for the next worker (a Listen, which each
        new worker is sent again)."""
        answer: queue.SimpleQueue[Any] = queue.SimpleQueue()
        with self._lock:
            ticket = next(self._tickets)
            self._waiting[ticket] = (answer, lost_with_worker)
        return ticket, answer

    def answer(self, ticket: int, value: Any) -> None:
        with self._lock:
            waiting = self._waiting.pop(ticket, None)
        if waiting is not None:
            waiting[0].put(value)

    def worker_lost(self) -> None:
        """Answer LOST to every question the lost worker will not answer."""
        with self._lock:
            lost = [ticket for ticket, (_, drop) in self._waiting.items()
                    if drop]
            answers = [self._waiting.pop(ticket)[0] for ticket in lost]
        for answer in answers:
            answer.put(LOST)

    def listening(self, message: Listening) -> None:
        """A listener's port is open: remember where, so that a new worker
        opens the same one; and tell whoever asked."""
        with self._lock:
            entry = self.listeners.get(message.listen_id)
            if entry is not None and message.address is not None:
                listen, heard = entry
                self.listeners[message.listen_id] = (replace(
                    listen, local_host=message.address[0],
                    local_port=message.address[1]), heard)
        self.answer(message.listen_id, message)

    def forget(self, ticket: int) -> None:
        with self._lock:
            self._waiting.pop(ticket, None)

    @staticmethod
    def _deliver(found: list[tuple[_Open, Outcome]]) -> None:
        deliver((entry.sink, outcome) for entry, outcome in found)


def _describe(entries: Sequence[tuple[Hashable, Job]]) -> str:
    for board, job in entries:
        try:
            pickle.dumps((board, job))
        except Exception:  # noqa: BLE001
            return f"{type(job).__name__} for board {board!r}"
    return f"{len(entries)} jobs"


def _log_here(records: list[dict[str, Any]], where: str) -> None:
    """A group's log records, handled by this process's loggers (as far as
    their levels let them through), marked with where they came from."""
    for fields in records:
        logger = logging.getLogger(fields.get("name", "actors"))
        if logger.isEnabledFor(fields.get("levelno", logging.WARNING)):
            record = logging.makeLogRecord(fields)
            setattr(record, FORWARDED, where)
            logger.handle(record)


# -- the forwarding actor -----------------------------------------------------------

@dataclass(frozen=True)
class Forward:
    """The book has new jobs (or a listener, or a stats ticket) to send."""


@dataclass(frozen=True)
class SendStats:
    ticket: int


@dataclass(frozen=True)
class SendListen:
    """Open the book's listener ``listen_id`` (unless already open)."""

    listen_id: int


@dataclass(frozen=True)
class GetWorkerPid:
    """Ask for the process id of the group's worker."""


@dataclass(frozen=True)
class _LinkLost:
    reason: str


class WorkerLost(RuntimeError):
    """A group's worker died, hung or gave up; its supervisor restarts it."""


class GroupActor(Supervised):
    """Forwards one group's jobs to wherever it runs and brings outcomes
    back. ``start_link`` starts the group (a worker process, a Ray actor)
    and returns the parent's end of the link; it is called again by each
    incarnation, so a restart brings a new worker."""

    def __init__(self, spec: GroupSpec,
                 start_link: Callable[[GroupSpec], GroupLink],
                 book: GroupBook, *,
                 heartbeat_deadline: float = HEARTBEAT_DEADLINE,
                 limiter: Limiter | None = None,
                 watch: Watch | None = None) -> None:
        super().__init__(watch=watch)
        self.spec = spec
        self._limiter = limiter
        self._start_link = start_link
        self._book = book
        self._deadline = heartbeat_deadline
        self._link: GroupLink | None = None
        #: The listeners this incarnation's worker was asked to open.
        self._listened: set[int] = set()
        self._reading = threading.Event()
        self._reader: threading.Thread | None = None
        self._log = log.bind(group=spec.name)

    # -- lifetime ------------------------------------------------------------

    def on_start(self) -> None:
        self._link = link = self._start_link(self.spec)
        self._log = self._log.bind(where=link.where)
        blobs = self._book.take_for_new_worker()
        listens = [listen for listen, _ in list(self._book.listeners.values())]
        self._listened = {listen.listen_id for listen in listens}
        if listens:
            blobs.insert(0, encode(listens))
        for blob in blobs:
            link.send(blob)
        self._reading.set()
        self._reader = threading.Thread(
            target=self._read, args=(link,),
            name=f"{self.spec.name}-reader", daemon=True)
        self._reader.start()
        self._log.info("group.serving", resent=self._book.open_jobs)

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Forward):
            self._send_incoming()
        elif isinstance(message, SendStats):
            self._send(encode([AskStats(message.ticket)]))
        elif isinstance(message, Unlisten):
            if message.listen_id in self._listened:
                self._listened.discard(message.listen_id)
                self._send(encode([message]))
        elif isinstance(message, SendListen):
            entry = self._book.listeners.get(message.listen_id)
            if entry is not None and message.listen_id not in self._listened:
                self._listened.add(message.listen_id)
                self._send(encode([entry[0]]))
        elif isinstance(message, LeaseAsk):
            self._send(encode([self._grant(message)]))
        elif isinstance(message, GetWorkerPid):
            return None if self._link is None else self._link.pid
        elif isinstance(message, _LinkLost):
            raise WorkerLost(f"group {self.spec.name!r}: {message.reason}")
        else:
            return super().on_receive(message)
        return None

    def on_stop(self) -> None:
        if self._link is not None:
            try:
                self._link.send(encode([Stop()]))
            except LinkLost:
                pass
            else:
                # The worker answers what it had open (ShutDown) and exits:
                # read until then, so those outcomes are the ones delivered.
                if self._reader is not None:
                    self._reader.join(STOP_GRACE)
        self._close(STOP_GRACE)
        # As a ConnectionActor does: stopped (not failed), it ends its jobs.
        self._book.fail_all(ShutDown(f"group {self.spec.name!r} was stopped"))
        super().on_stop()

    def on_failure(self, exception_type: type[BaseException] | None,
                   exception_value: BaseException | None,
                   traceback: TracebackType | None) -> None:
        self._log.warning("group.lost", error=repr(exception_value))
        self._close(0)
        super().on_failure(exception_type, exception_value, traceback)

    # -- inside ------------------------------------------------------------------

    def _grant(self, ask: LeaseAsk) -> LeaseGrant:
        """The parent's limiter's answer to a group's lease ask."""
        if self._limiter is None:
            return LeaseGrant(ask.ticket, None, "the machine has no limiter")
        try:
            lease = self._limiter.ask(LeaseRequest(ask.tokens),
                                      timeout=LEASE_ASK_TIMEOUT)
        except pykka.ActorDeadError:
            return LeaseGrant(ask.ticket, None, "the rate limiter has stopped")
        except pykka.Timeout:
            self._log.warning("group.limiter_timeout",
                              timeout=LEASE_ASK_TIMEOUT)
            return LeaseGrant(ask.ticket, Lease(0, LEASE_ASK_TIMEOUT))
        except InvalidArgumentError as error:
            return LeaseGrant(ask.ticket, None, str(error))
        return LeaseGrant(ask.ticket, lease)

    def _send_incoming(self) -> None:
        for blob in self._book.take_incoming():
            self._send(blob)

    def _send(self, blob: bytes) -> None:
        assert self._link is not None
        try:
            self._link.send(blob)
        except LinkLost as error:
            raise WorkerLost(f"group {self.spec.name!r}: {error}") from None

    def _close(self, grace: float) -> None:
        self._book.worker_lost()
        self._reading.clear()
        if self._reader is not None:
            self._reader.join()
            self._reader = None
        if self._link is not None:
            self._link.close(grace)
            self._link = None

    def _read(self, link: GroupLink) -> None:
        """The reader thread: outcomes to the book, the rest where it goes;
        a lost link or a silence past the deadline fails the actor."""
        book, me = self._book, self.actor_ref

        def lost(reason: str) -> None:
            try:
                me.tell(_LinkLost(reason))
            except pykka.ActorDeadError:
                pass  # it failed already (a send found the link gone)
        heard_at = time.monotonic()
        while self._reading.is_set():
            try:
                blob = link.receive(_READ_SLICE)
            except LinkLost as error:
                lost(str(error))
                return
            now = time.monotonic()
            if blob is None:
                if now - heard_at >= self._deadline:
                    # Hung: end it, so that a send blocked on its full pipe
                    # fails too and the actor can be restarted.
                    link.abandon()
                    lost(f"silent for {now - heard_at:.1f} s (no heartbeat)")
                    return
                continue
            heard_at = now
            try:
                messages = decode(blob)
            except Exception as error:  # noqa: BLE001 - whatever unpickling raises
                lost(f"an unreadable batch from the group: {error!r}")
                return
            for message in messages:
                if isinstance(message, Outcomes):
                    book.complete(message.outcomes)
                elif isinstance(message, Heard):
                    entry = book.listeners.get(message.listen_id)
                    if entry is not None:
                        entry[1](message.messages)
                elif isinstance(message, StatsReply):
                    book.answer(message.ticket, message.stats)
                elif isinstance(message, Listening):
                    book.listening(message)
                elif isinstance(message, LogRecords):
                    _log_here(message.records, link.where)
                elif isinstance(message, LeaseAsk):
                    try:  # sent from the actor's thread: links are not shared
                        me.tell(message)
                    except pykka.ActorDeadError:
                        pass  # stopping: the group's asks end with it
                elif isinstance(message, GroupFailed):
                    lost(f"the group failed: {message.reason}")
                    return
                elif not isinstance(message, Heartbeat):
                    self._log.warning("group.unknown_message",
                                      kind=type(message).__name__)

