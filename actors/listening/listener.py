"""Listening: a ListenerActor reads a connection and fans messages out to
CallbackActors, which call the registered callbacks.

Each callback belongs to one CallbackActor (round robin over
``n_processes`` of them) and sees every message in arrival order, which
SpiNNMan's thread pool does not promise. Messages travel in batches, one
actor message per batch. Each CallbackActor has a bounded backlog: when it
falls behind, the listener drops what does not fit and counts it, instead
of growing without bound. A callback that raises is logged and the next
message goes on; a CallbackActor that dies is restarted by its supervisor.
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import pykka

from actors.listening.callbacks import (
    Backlog,
    Deliver,
)
from actors.supervision.api import ChildLookup
from actors.supervision.child import Supervised, Watch
from messages.errors import MalformedDatagramError
from transport.errors import ConnectionClosed, ReceiveTimeout, TransportError
from transport.logs import get_logger

log = get_logger(__name__)

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

#: How long one pump of the listener runs before letting its inbox in.
READ_SLICE = 0.02


class Outlet(Protocol):
    """Where the listener tells a slot's batches (Deliver): a
    CallbackActor's ref, or another taker that releases their backlog."""

    def tell(self, message: Any) -> None: ...


class Listenable(Protocol[T_co]):
    """What a listener can read: SpiNNMan's Listenable."""

    def is_ready_to_receive(self, timeout: float = 0) -> bool: ...

    def get_receive_method(self) -> Callable[[], T_co]: ...


# -- callback actors ----------------------------------------------------------------


# -- the listener ---------------------------------------------------------------------


@dataclass(frozen=True)
class _ReadOn:
    pass


@dataclass(frozen=True)
class GetListenerStats:
    pass


@dataclass(frozen=True)
class ListenerStats:
    received: int
    delivered: int
    dropped: int
    malformed: int
    receive_errors: int
    backlogs: tuple[int, ...]
    #: Where it listens ("host:port"; "" if its connection does not say).
    local: str = ""


class ListenerActor(Supervised, Generic[T]):
    """Reads ``connection`` and hands each message to every CallbackActor.

    ``callback_actors`` find the current CallbackActor for slot i (they may
    have been restarted); ``backlogs[i]`` bounds what slot i may have
    waiting. ``timeout`` is how long one wait for a message lasts, so how
    soon a stop is noticed while nothing arrives. ``report``, if given, is
    told the counts once the listener stops, when it can no longer be
    asked; ``ended``, if given, is told why it stopped: the
    ConnectionClosed that ended it, or None (stopped, or closing).
    """

    def __init__(
        self,
        connection: Listenable[T],
        callback_actors: Callable[[int], Outlet | None],
        backlogs: list[Backlog],
        callbacks: list[list[Callable[[Any], None]]],
        *,
        timeout: float = 1.0,
        closing: threading.Event | None = None,
        finished: threading.Event | None = None,
        report: Callable[[ListenerStats], None] | None = None,
        ended: Callable[[BaseException | None], None] | None = None,
        watch: Watch | None = None,
    ) -> None:
        super().__init__(watch=watch)
        #: Set by whoever wants the listener to stop after this receive.
        self._closing = closing or threading.Event()
        #: Set once the listener has stopped (closed, or stopped).
        self._finished = finished or threading.Event()
        self._report = report
        self._ended = ended
        self._closed_by: BaseException | None = None
        self._connection = connection
        self._receive = _without_waiting(connection.get_receive_method())
        self._callback_actors = callback_actors
        self._backlogs = backlogs
        #: Each slot's callbacks, read when a batch goes out: a callback
        #: added later does not see messages received before it.
        self._callbacks = callbacks
        self._timeout = min(timeout, READ_SLICE)
        self._received = self._delivered = self._dropped = 0
        self._malformed = self._receive_errors = 0
        self._closed = False
        self._log = log.bind(actor="listener")

    def on_start(self) -> None:
        self.actor_ref.tell(_ReadOn())

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _ReadOn):
            self._pump()
            return None
        if isinstance(message, GetListenerStats):
            return self._stats()
        return super().on_receive(message)

    def on_stop(self) -> None:
        if self._report is not None:
            self._report(self._stats())
        if self._ended is not None:
            self._ended(self._closed_by)
        self._finished.set()
        super().on_stop()

    def _stats(self) -> ListenerStats:
        return ListenerStats(
            self._received,
            self._delivered,
            self._dropped,
            self._malformed,
            self._receive_errors,
            tuple(backlog.waiting for backlog in self._backlogs),
            _local(self._connection),
        )

    def _pump(self) -> None:
        """Read for one slice (or until a message waits in the inbox), then
        hand the batch out and carry on."""
        batch: list[T] = []
        inbox = self.actor_inbox
        end = time.monotonic() + READ_SLICE
        ready, receive = self._connection.is_ready_to_receive, self._receive
        try:
            while (
                inbox.empty() and time.monotonic() < end and not self._closing.is_set()
            ):
                if not ready(self._timeout if not batch else 0.0):
                    if batch:
                        break
                    continue
                try:
                    batch.append(receive())
                except MalformedDatagramError:
                    self._malformed += 1
                except ReceiveTimeout:
                    pass  # what was ready came from a foreign sender
                except ConnectionClosed:
                    raise
                except (TransportError, TimeoutError):
                    self._receive_errors += 1
        except ConnectionClosed as error:
            self._closed = True
            self._closed_by = error
        finally:
            self._received += len(batch)
            if batch:
                self._fan_out(batch)
        if self._closed or self._closing.is_set():
            self._log.info("listener.closed", received=self._received)
            self.actor_ref.stop(block=False)
            return
        self.actor_ref.tell(_ReadOn())

    def _fan_out(self, batch: list[T]) -> None:
        for slot, backlog in enumerate(self._backlogs):
            room = backlog.reserve(len(batch))
            if room < len(batch):
                self._dropped += len(batch) - room
                self._log.debug("listener.drop", slot=slot, dropped=len(batch) - room)
            if not room:
                continue
            actor = self._callback_actors(slot)
            try:
                if actor is None:
                    raise pykka.ActorDeadError("restarting")
                actor.tell(Deliver(batch[:room], tuple(self._callbacks[slot])))
                self._delivered += room
            except pykka.ActorDeadError:
                backlog.release(room)
                self._dropped += room


def _without_waiting(handler: Callable[[], T]) -> Callable[[], T]:
    """The handler, called with a timeout of 0 where it takes one (ours
    and SpiNNMan's do): it runs only after is_ready_to_receive() said yes,
    and a datagram from a foreign sender, which the connection ignores,
    must not leave it waiting until the peer speaks again."""
    try:
        inspect.signature(handler).bind(0.0)
    except (TypeError, ValueError):
        return handler
    return lambda: handler(0.0)  # type: ignore[call-arg]


def where_is(
    supervisor: pykka.ActorRef[Any], prefix: str
) -> Callable[[int], pykka.ActorRef[Any] | None]:
    """Find callback actor ``i`` of ``supervisor`` (cached until it dies)."""
    lookups: dict[int, ChildLookup] = {}

    def find(slot: int) -> pykka.ActorRef[Any] | None:
        lookup = lookups.get(slot)
        if lookup is None:
            lookups[slot] = lookup = ChildLookup(
                supervisor, f"{prefix}{slot}", timeout=1
            )
        return lookup()

    return find


def _local(connection: object) -> str:
    host = getattr(connection, "local_ip_address", None)
    port = getattr(connection, "local_port", None)
    return "" if host is None or port is None else f"{host}:{port}"
