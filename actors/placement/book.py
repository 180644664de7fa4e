"""The parent's record of the jobs it sent to one board group.

A GroupBook holds every job sent to one group that has no outcome yet, and
outlives the GroupActor that forwards them: when a worker dies its
successor sends the book's open jobs again. An outcome is taken from the
book once, so each job still gets exactly one, even if a late one comes
from the old worker.
"""

from __future__ import annotations

import itertools
import pickle
import queue
import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

from actors.errors import Cancelled, RequestError, at_board
from actors.placement.wire import BoardSpec, Cancel, Listen, Listening, Post, encode
from actors.protocol.fences import Span
from actors.protocol.jobs import (
    Job,
    Outcome,
    OutcomeSink,
    SCPJob,
    deliver,
    written_span,
)
from messages.errors import InvalidArgumentError

#: The answer to a question whose group was lost before it answered.
NO_ANSWER = object()


@dataclass
class _Open:
    board: Hashable
    job: Job  # keyed by the book's wire key
    key: Hashable  # the caller's key
    sink: OutcomeSink
    sent: bool = False
    #: Given up on by its caller: not sent to a new worker.
    cancelled: bool = False


@dataclass(frozen=True)
class Prepared:
    """A batch pickled for a group, not taken yet."""

    blob: bytes
    opened: list[tuple[int, _Open]]


class GroupBook:
    """Jobs sent to one group and not yet answered; thread-safe.

    Every error a job ends with names its board (``board 'a' at
    host:port: ...``, the address where ``boards`` gives it), whether it
    came from the worker or from here (a lost group, a supervisor that
    gave up)."""

    def __init__(self, boards: Sequence[BoardSpec] = ()) -> None:
        self._lock = threading.Lock()
        self._addresses = {board.name: (board.host, board.port) for board in boards}
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
        #: Starts of the group that failed one after another (a start that
        #: works sets it back to 0): the GroupActor gives up past a limit.
        self.failed_starts = 0
        #: Why the group will never run again (set by ``close``); jobs put
        #: after that end with it at once.
        self.closed_by: BaseException | None = None

    def put(self, entries: Sequence[tuple[Hashable, Job]], sink: OutcomeSink) -> None:
        """Admit jobs for the group (see prepare)."""
        self.admit(self.prepare(entries, sink))

    def prepare(
        self, entries: Sequence[tuple[Hashable, Job]], sink: OutcomeSink
    ) -> Prepared:
        """Jobs for the group, pickled here, on the caller's thread, so that
        one that cannot cross is refused at once (InvalidArgumentError) and
        nothing of the batch is taken; ``take`` then takes them."""
        with self._lock:
            keys = [next(self._keys) for _ in entries]
        wire = [
            (board, replace(job, key=key))
            for key, (board, job) in zip(keys, entries, strict=True)
        ]
        try:
            blob = encode([Post(wire)])
        except Exception as error:  # noqa: BLE001 - whatever pickle raises
            raise InvalidArgumentError(
                "jobs",
                _describe(entries),
                f"cannot cross to the worker process: {error!r}",
            ) from None
        opened = [
            (key, _Open(board, wired, job.key, sink))
            for key, (board, job), (_, wired) in zip(keys, entries, wire, strict=True)
        ]
        return Prepared(blob, opened)

    def admit(self, prepared: Prepared) -> None:
        """Open prepared jobs (awaiting their outcomes) and queue them for
        the group; on a closed group they end at once with why."""
        with self._lock:
            error = self.closed_by
            if error is None:
                self._open.update(prepared.opened)
                keys = [key for key, _ in prepared.opened]
                self._incoming.append((prepared.blob, keys))
                return
        self._deliver(
            [(entry, Outcome(entry.key, error=error)) for _, entry in prepared.opened]
        )

    def cancel(self, sink: OutcomeSink, keys: Sequence[Hashable]) -> bool:
        """Give up on the open jobs put with ``sink`` under ``keys``: a
        Cancel for them joins what goes to the group next (after the jobs
        themselves); True if there is one to send."""
        wanted = set(keys)
        with self._lock:
            found = [
                (wire, entry)
                for wire, entry in self._open.items()
                if entry.sink is sink and entry.key in wanted and not entry.cancelled
            ]
            if not found:
                return False
            for _, entry in found:
                entry.cancelled = True
            self._incoming.append(
                (encode([Cancel([(entry.board, wire) for wire, entry in found])]), [])
            )
        return True

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
            given_up: list[_Open] = []
            fenced: list[tuple[Hashable, Span]] = []
            for key, entry in list(self._open.items()):
                job = entry.job
                if entry.cancelled:
                    given_up.append(self._open.pop(key))
                    continue
                if (
                    entry.sent
                    and isinstance(job, SCPJob)
                    and not job.request.may_resend
                ):
                    refused.append(self._open.pop(key))
                    continue
                written = written_span(job)
                if entry.sent and written is not None:
                    fenced.append((entry.board, written))
                entry.sent = True
                again.append((entry.board, job))
        self._deliver([(entry, _not_resent(entry)) for entry in refused])
        self._deliver(
            [
                (entry, Outcome(entry.key, error=Cancelled(f"job {entry.key!r}")))
                for entry in given_up
            ]
        )
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
        self._deliver([(entry, Outcome(entry.key, error=error)) for entry in entries])

    def close(self, error: BaseException) -> None:
        """No worker will ever run this group's jobs: end the open ones,
        and every one put from now on, with ``error``."""
        with self._lock:
            self.closed_by = error
        self.fail_all(error)

    @property
    def open_jobs(self) -> int:
        return len(self._open)

    # -- stats asked across the link --------------------------------------------

    def new_ticket(
        self, lost_with_group: bool = True
    ) -> tuple[int, queue.SimpleQueue[Any]]:
        """A ticket for a question to the group, and where its answer will
        come. If ``lost_with_group``, a lost group answers it NO_ANSWER (ask
        again); else it waits for the next worker (a Listen, which each
        new worker is sent again)."""
        answer: queue.SimpleQueue[Any] = queue.SimpleQueue()
        with self._lock:
            ticket = next(self._tickets)
            self._waiting[ticket] = (answer, lost_with_group)
        return ticket, answer

    def answer(self, ticket: int, value: Any) -> None:
        with self._lock:
            waiting = self._waiting.pop(ticket, None)
        if waiting is not None:
            waiting[0].put(value)

    def group_lost(self) -> None:
        """Answer NO_ANSWER to every question the lost group will not answer."""
        with self._lock:
            lost = [ticket for ticket, (_, drop) in self._waiting.items() if drop]
            answers = [self._waiting.pop(ticket)[0] for ticket in lost]
        for answer in answers:
            answer.put(NO_ANSWER)

    def listening(self, message: Listening) -> None:
        """A listener's port is open: remember where, so that a new worker
        opens the same one; and tell whoever asked."""
        with self._lock:
            entry = self.listeners.get(message.listen_id)
            if entry is not None and message.address is not None:
                listen, heard = entry
                self.listeners[message.listen_id] = (
                    replace(
                        listen,
                        local_host=message.address[0],
                        local_port=message.address[1],
                    ),
                    heard,
                )
        self.answer(message.listen_id, message)

    def forget(self, ticket: int) -> None:
        with self._lock:
            self._waiting.pop(ticket, None)

    def _deliver(self, found: list[tuple[_Open, Outcome]]) -> None:
        deliver(
            (entry.sink, self._named(entry.board, outcome)) for entry, outcome in found
        )

    def _named(self, board: Hashable, outcome: Outcome) -> Outcome:
        if outcome.error is None:
            return outcome
        named = at_board(outcome.error, board, self._addresses.get(board))
        return replace(outcome, error=named)


def _describe(entries: Sequence[tuple[Hashable, Job]]) -> str:
    for board, job in entries:
        try:
            pickle.dumps((board, job))
        except Exception:  # noqa: BLE001
            return f"{type(job).__name__} for board {board!r}"
    return f"{len(entries)} jobs"


def _not_resent(entry: _Open) -> Outcome:
    """The outcome of a job sent to a worker that died, and not safe to
    send again."""
    request = cast(SCPJob, entry.job).request
    return Outcome(
        entry.key,
        error=RequestError(
            f"{request!r}: its worker died after it was sent; "
            f"not sent again, as running it twice is not safe"
        ),
    )
