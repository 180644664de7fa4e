"""A Listenable fed by another thread: messages heard somewhere else (in a
worker process, say) and handed over in batches, for a listener here."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from transport.errors import ConnectionClosed, ReceiveTimeout

T = TypeVar("T")

#: Messages a feed holds before it drops (and counts) what comes next.
DEFAULT_LIMIT = 100_000


class MessageFeed(Generic[T]):
    """Messages waiting for a listener; ``add`` from any thread."""

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self._messages: deque[T] = deque()
        self._limit = limit
        self._ready = threading.Condition()
        self._closed = False
        #: Messages dropped because the feed was full (or closed).
        self.dropped = 0

    def add(self, messages: Iterable[T]) -> None:
        with self._ready:
            for message in messages:
                if self._closed or len(self._messages) >= self._limit:
                    self.dropped += 1
                else:
                    self._messages.append(message)
            self._ready.notify_all()

    def is_ready_to_receive(self, timeout: float = 0) -> bool:
        with self._ready:
            if not self._messages and not self._closed and timeout > 0:
                self._ready.wait(timeout)
            return bool(self._messages) or self._closed

    def receive(self, timeout: float | None = None) -> T:
        """The next message; ReceiveTimeout if none comes in ``timeout``
        seconds (None waits for ever), ConnectionClosed once closed."""
        with self._ready:
            if not self._messages and not self._closed:
                self._ready.wait(timeout)
            if self._messages:
                return self._messages.popleft()
            if self._closed:
                raise ConnectionClosed("the feed is closed")
            raise ReceiveTimeout(f"no message within {timeout} s")

    def get_receive_method(self) -> Callable[[], T]:
        return self.receive

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify_all()
