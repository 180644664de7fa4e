"""Callback actors: where a listener's messages are handled, in order.

Each CallbackActor has a bounded share of one Backlog; a callback's
exception is logged and never stops the actor. Once the listener's
``closed`` flag is set, an actor hands no further message to its callbacks:
what is still queued is dropped and counted, so a close waits only for the
callbacks already running, on every actor at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from actors.supervision.child import Supervised, Watch
from transport.logs import get_logger

log = get_logger(__name__)

#: Messages a CallbackActor may have waiting before the listener drops.
DEFAULT_BACKLOG = 10_000


class Backlog:
    """Messages handed to one CallbackActor and not yet handled; shared by
    the listener (which adds) and that actor (which takes away). Outlives
    the actor, so its counts survive a restart."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._waiting = 0
        #: Messages lost because a CallbackActor died with them waiting.
        self.lost = 0
        #: Messages dropped unhandled because the listener was closed.
        self.dropped_on_close = 0
        self._changed = threading.Condition()

    def reserve(self, wanted: int) -> int:
        """Room for up to ``wanted`` more messages; how many fit."""
        with self._changed:
            room = max(0, min(wanted, self.limit - self._waiting))
            self._waiting += room
            return room

    def release(self, done: int, *, dropped_on_close: int = 0) -> None:
        """``done`` messages are off the backlog, ``dropped_on_close`` of
        them unhandled because the listener closed."""
        with self._changed:
            self._waiting -= done
            self.dropped_on_close += dropped_on_close
            if not self._waiting:
                self._changed.notify_all()

    def wait_empty(
        self, timeout: float | None, unless: Callable[[], bool] = lambda: False
    ) -> bool:
        """Wait until nothing is waiting (True), ``unless()`` turns true
        (see wake) or ``timeout`` passes."""
        with self._changed:
            return (
                self._changed.wait_for(lambda: not self._waiting or unless(), timeout)
                and not self._waiting
            )

    def wake(self) -> None:
        """Have wait_empty look at its ``unless`` again."""
        with self._changed:
            self._changed.notify_all()

    @property
    def waiting(self) -> int:
        return self._waiting


@dataclass(frozen=True)
class Deliver:
    """A batch of messages for the callbacks registered when it arrived."""

    messages: list[Any]
    callbacks: tuple[Callable[[Any], None], ...]


@dataclass(frozen=True)
class CallbackStats:
    handled: int
    errors: int


class CallbackActor(Supervised):
    """Calls its callbacks with each message, in the order they came, until
    ``closed`` is set (checked before each message); after that it drops
    what it is given."""

    def __init__(
        self,
        backlog: Backlog,
        *,
        closed: threading.Event | None = None,
        watch: Watch | None = None,
    ) -> None:
        super().__init__(watch=watch)
        self._backlog = backlog
        self._closed = closed or threading.Event()
        self._handled = 0
        self._errors = 0
        self._log = log.bind(actor="callback")

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Give back the backlog of the batches that die with this actor
        (counted as lost), so its successor starts with room."""
        lost = 0
        inbox = self.actor_inbox
        while not inbox.empty():
            message = inbox.get().message
            if isinstance(message, Deliver):
                lost += len(message.messages)
        if lost:
            self._backlog.release(lost)
            self._backlog.lost += lost
            self._log.warning("callback.lost", messages=lost)
        super().on_failure(exception_type, exception_value, traceback)

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Deliver):
            items, handled, dropped = message.messages, 0, 0
            closed = self._closed.is_set
            try:
                for item in items:
                    if closed():
                        dropped = len(items) - handled
                        break
                    for callback in message.callbacks:
                        try:
                            callback(item)
                        except Exception as error:  # noqa: BLE001
                            self._errors += 1
                            self._log.warning(
                                "callback.error",
                                error=repr(error),
                                callback=repr(callback),
                            )
                    handled += 1
            finally:
                self._handled += handled
                self._backlog.release(len(items), dropped_on_close=dropped)
            return None
        if isinstance(message, CallbackStats):
            return CallbackStats(self._handled, self._errors)
        return super().on_receive(message)
