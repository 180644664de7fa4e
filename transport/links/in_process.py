"""An in-memory datagram network with the same surface as UDP.

Unit tests run the board and connections over it: no ports, no kernel
buffers, no loss unless a fault plan adds it. Like UDP, a datagram to an
address nobody holds, or to a full queue, is dropped (and counted).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque

from messages.errors import InvalidArgumentError
from transport.errors import ConnectionClosed, ReceiveTimeout, TransportError
from transport.links.endpoint import Address, Datagram

#: The host part of every in-memory address.
MEMORY_HOST = "memory"
_FIRST_EPHEMERAL = 49152


class MemoryNetwork:
    """A set of in-memory endpoints that can send to each other."""

    def __init__(self, queue_limit: int = 4096) -> None:
        if queue_limit < 1:
            raise InvalidArgumentError("queue_limit", queue_limit, "must be at least 1")
        self.queue_limit = queue_limit
        self._endpoints: dict[int, MemoryEndpoint] = {}
        self._lock = threading.Lock()
        self._ephemeral = itertools.count(_FIRST_EPHEMERAL)
        self.n_undeliverable = 0
        self.n_overflow = 0

    def endpoint(self, port: int = 0) -> MemoryEndpoint:
        """Bind a new endpoint to ``port`` (0: pick a free one)."""
        if not 0 <= port <= 65535:
            raise InvalidArgumentError("port", port, "must be 0-65535")
        with self._lock:
            if port == 0:
                port = next(p for p in self._ephemeral if p not in self._endpoints)
            elif port in self._endpoints:
                raise TransportError(
                    f"cannot bind {MEMORY_HOST}:{port}: address in use"
                )
            endpoint = MemoryEndpoint(self, port)
            self._endpoints[port] = endpoint
            return endpoint

    def deliver(self, data: bytes, sender: Address, address: Address) -> None:
        with self._lock:
            target = (
                self._endpoints.get(address[1]) if address[0] == MEMORY_HOST else None
            )
            if target is None:
                self.n_undeliverable += 1
                return
        if not target.enqueue(data, sender, self.queue_limit):
            with self._lock:
                self.n_overflow += 1

    def release(self, port: int) -> None:
        with self._lock:
            self._endpoints.pop(port, None)

    @property
    def ports(self) -> list[int]:
        with self._lock:
            return sorted(self._endpoints)


class MemoryEndpoint:
    """One bound address on a MemoryNetwork."""

    def __init__(self, network: MemoryNetwork, port: int) -> None:
        self._network = network
        self._address: Address = (MEMORY_HOST, port)
        self._queue: deque[tuple[bytes, Address]] = deque()
        self._ready = threading.Condition(threading.Lock())
        self._closed = False

    @property
    def address(self) -> Address:
        return self._address

    @property
    def closed(self) -> bool:
        return self._closed

    def resolve(self, host: str) -> str:
        if host != MEMORY_HOST:
            raise TransportError(
                f"host {host!r} is not on the in-memory network; use {MEMORY_HOST!r}"
            )
        return host

    def send_to(self, data: Datagram, address: Address) -> None:
        if self._closed:
            raise ConnectionClosed(f"{self._text()} is closed")
        self._network.deliver(bytes(data), self._address, address)

    def enqueue(self, data: bytes, sender: Address, limit: int) -> bool:
        with self._ready:
            if self._closed or len(self._queue) >= limit:
                return False
            self._queue.append((data, sender))
            self._ready.notify_all()  # (a receiver, and any wait_queued)
            return True

    @property
    def queued(self) -> int:
        """Datagrams delivered here and not yet received (what a socket's
        FIONREAD would count, in datagrams)."""
        with self._ready:
            return len(self._queue)

    def wait_queued(self, count: int, timeout: float) -> bool:
        """Wait until at least ``count`` datagrams are queued here (False:
        not within ``timeout`` seconds, or closed): a test's way to know
        that what a peer sent has all arrived, without sleeping."""
        with self._ready:
            return (
                self._ready.wait_for(
                    lambda: len(self._queue) >= count or self._closed, timeout
                )
                and not self._closed
            )

    def receive_from(self, timeout: float | None) -> tuple[bytes, Address]:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._ready:
            while not self._queue:
                if self._closed:
                    raise ConnectionClosed(f"{self._text()} is closed")
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise ReceiveTimeout(
                        f"nothing received on {self._text()} in {timeout} s"
                    )
                self._ready.wait(left)
            if self._closed:
                raise ConnectionClosed(f"{self._text()} is closed")
            return self._queue.popleft()

    def receive_waiting(self, limit: int) -> list[tuple[bytes, Address]]:
        with self._ready:
            count = min(limit, len(self._queue))
            return [self._queue.popleft() for _ in range(count)]

    def wait_readable(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._ready:
            while not self._queue and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._ready.wait(left)
            return True

    def close(self) -> None:
        with self._ready:
            if self._closed:
                return
            self._closed = True
            self._queue.clear()
            self._ready.notify_all()
        self._network.release(self._address[1])

    def _text(self) -> str:
        return f"{MEMORY_HOST}:{self._address[1]}"

    def __repr__(self) -> str:
        state = " closed" if self._closed else ""
        return f"MemoryEndpoint({self._text()}{state})"
