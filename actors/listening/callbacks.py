"""Callback actors: where a listener's messages are handled, in order.

Each CallbackActor has a bounded share of one Backlog; a callback's
exception is logged and never stops the actor.
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
    the listener (which adds) and that actor (which takes away)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._waiting = 0
        #: Messages lost because a CallbackActor died with them waiting.
        self.lost = 0
        self._lock = threading.Lock()

    def reserve(self, wanted: int) -> int:
        """Room for up to ``wanted`` more messages; how many fit."""
        with self._lock:
            room = max(0, min(wanted, self.limit - self._waiting))
            self._waiting += room
            return room

    def release(self, handled: int) -> None:
        with self._lock:
            self._waiting -= handled

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
    """Calls its callbacks with each message, in the order they came."""

    def __init__(self, backlog: Backlog, *, watch: Watch | None = None) -> None:
        super().__init__(watch=watch)
        self._backlog = backlog
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
            try:
                for item in message.messages:
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
                    self._handled += 1
            finally:
                self._backlog.release(len(message.messages))
            return None
        if isinstance(message, CallbackStats):
            return CallbackStats(self._handled, self._errors)
        return super().on_receive(message)
