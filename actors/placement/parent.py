"""The parent's side of a placed board group: the actor that forwards to it.

A GroupActor sends its GroupBook's jobs to one worker and reads back
outcomes, heard messages, logs and heartbeats. When the worker dies
(killed, crashed, silent past its heartbeat deadline) the actor fails, its
supervisor starts a new one with a new worker, and that one sends the
book's open jobs again.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import pykka

from actors.errors import ShutDown
from actors.placement.book import GroupBook
from actors.placement.links import GroupLink, GroupLost
from actors.placement.wire import (
    GetGroupStats,
    GroupFailed,
    GroupSpec,
    GroupStats,
    Heard,
    Heartbeat,
    Listening,
    LogRecords,
    Outcomes,
    Stop,
    Unlisten,
    decode,
    encode,
)
from actors.placement.worker import FORWARDED
from actors.ratelimit.limiter import Lease, LeaseRequest, Limiter
from actors.ratelimit.remote import LeaseAsk, LeaseGrant
from actors.supervision.child import Supervised, Watch
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
#: A group whose worker fails to start this many times in a row is given
#: up: each start may take a link's whole start timeout, so the restart
#: intensity alone would restart it for ever.
START_ATTEMPTS = 3
#: How often the reader looks up from the link to see if it should stop.
_READ_SLICE = 0.05


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
    health: bool = False
    timeout: float | None = None


@dataclass(frozen=True)
class SendListen:
    """Open the book's listener ``listen_id`` (unless already open)."""

    listen_id: int


@dataclass(frozen=True)
class GetWorkerPid:
    """Ask for the process id of the group's worker."""


@dataclass(frozen=True)
class _Lost:
    """The reader found the group lost (told by it to the actor)."""

    reason: str


class GroupActor(Supervised):
    """Forwards one group's jobs to wherever it runs and brings outcomes
    back. ``start_link`` starts the group (a worker process, a Ray actor)
    and returns the parent's end of the link; it is called again by each
    incarnation, so a restart brings a new worker."""

    def __init__(
        self,
        spec: GroupSpec,
        start_link: Callable[[GroupSpec], GroupLink],
        book: GroupBook,
        *,
        heartbeat_deadline: float = HEARTBEAT_DEADLINE,
        start_attempts: int = START_ATTEMPTS,
        limiter: Limiter | None = None,
        watch: Watch | None = None,
    ) -> None:
        super().__init__(watch=watch)
        self.spec = spec
        self._start_attempts = start_attempts
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
        book = self._book
        try:
            self._link = link = self._start_link(self.spec)
        except GroupLost as error:
            # A group that cannot start: its open jobs end with why, now,
            # rather than wait through restart after restart.
            book.failed_starts += 1
            failed = book.failed_starts
            self._log.error("group.start_failed", error=str(error), attempt=failed)
            if failed < self._start_attempts:
                book.fail_all(
                    GroupLost(f"group {self.spec.name!r} could not start: {error}")
                )
                raise
            # Given up: a normal end, which its (transient) spec does not
            # restart; every job for it from now on ends with this error.
            self._log.error("group.gave_up", attempts=failed)
            book.close(
                GroupLost(
                    f"group {self.spec.name!r} could not start "
                    f"{failed} times in a row, and was given up: {error}"
                )
            )
            self.actor_ref.stop(block=False)
            return
        book.failed_starts = 0
        self._log = self._log.bind(where=link.where)
        blobs = book.take_for_new_worker()
        listens = [listen for listen, _ in list(book.listeners.values())]
        self._listened = {listen.listen_id for listen in listens}
        if listens:
            blobs.insert(0, encode(listens))
        for blob in blobs:
            link.send(blob)
        self._reading.set()
        self._reader = threading.Thread(
            target=self._read,
            args=(link,),
            name=f"{self.spec.name}-reader",
            daemon=True,
        )
        self._reader.start()
        self._log.info("group.serving", resent=book.open_jobs)

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Forward):
            self._send_incoming()
        elif isinstance(message, SendStats):
            self._send(
                encode([GetGroupStats(message.ticket, message.health, message.timeout)])
            )
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
        elif isinstance(message, _Lost):
            raise GroupLost(f"group {self.spec.name!r}: {message.reason}")
        else:
            return super().on_receive(message)
        return None

    def on_stop(self) -> None:
        if self._link is not None:
            try:
                self._link.send(encode([Stop()]))
            except GroupLost:
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

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._log.warning("group.lost", error=repr(exception_value))
        self._close(0)
        super().on_failure(exception_type, exception_value, traceback)

    # -- inside ------------------------------------------------------------------

    def _grant(self, ask: LeaseAsk) -> LeaseGrant:
        """The parent's limiter's answer to a group's lease ask."""
        if self._limiter is None:
            return LeaseGrant(ask.ticket, None, "the machine has no limiter")
        try:
            lease = self._limiter.ask(
                LeaseRequest(ask.tokens), timeout=LEASE_ASK_TIMEOUT
            )
        except pykka.ActorDeadError:
            return LeaseGrant(ask.ticket, None, "the rate limiter has stopped")
        except pykka.Timeout:
            self._log.warning("group.limiter_timeout", timeout=LEASE_ASK_TIMEOUT)
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
        except GroupLost as error:
            raise GroupLost(f"group {self.spec.name!r}: {error}") from None

    def _close(self, grace: float) -> None:
        self._book.group_lost()
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
            # (ActorDeadError: it failed already, a send found the link gone)
            with contextlib.suppress(pykka.ActorDeadError):
                me.tell(_Lost(reason))

        heard_at = time.monotonic()
        while self._reading.is_set():
            try:
                blob = link.receive(_READ_SLICE)
            except GroupLost as error:
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
                elif isinstance(message, GroupStats):
                    book.answer(message.ticket, message.stats)
                elif isinstance(message, Listening):
                    book.listening(message)
                elif isinstance(message, LogRecords):
                    _log_here(message.records, link.where)
                elif isinstance(message, LeaseAsk):
                    # Sent from the actor's thread: links are not shared.
                    # (ActorDeadError: stopping, the group's asks end with it)
                    with contextlib.suppress(pykka.ActorDeadError):
                        me.tell(message)
                elif isinstance(message, GroupFailed):
                    lost(f"the group failed: {message.reason}")
                    return
                elif not isinstance(message, Heartbeat):
                    self._log.warning(
                        "group.unknown_message", kind=type(message).__name__
                    )
