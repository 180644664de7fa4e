"""Seeded fault injection for any datagram link.

FaultPlan is the pure part: given a datagram and the time it decides what
the link does with it (drop, duplicate, hold back behind the next one,
delay, corrupt) using its own seeded random generator, so a run can be
replayed. FaultyEndpoint applies a plan to a real or in-memory endpoint.
"""

from __future__ import annotations

import heapq
import itertools
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from messages.errors import InvalidArgumentError
from transport.errors import ReceiveTimeout
from transport.links.endpoint import Address, Datagram, DatagramEndpoint

#: How long a datagram held back for reordering waits for one to overtake it.
REORDER_HOLD = 0.005
#: Datagram bytes 0-1 are SDP padding; corrupting them would change nothing.
_FIRST_MEANINGFUL_BYTE = 2

Sides = Literal["both", "receive", "send"]


@dataclass
class FaultCounts:
    """What a plan has done so far."""

    passed: int = 0
    dropped: int = 0
    duplicated: int = 0
    reordered: int = 0
    delayed: int = 0
    corrupted: int = 0
    busy: int = 0


class FaultPlan:
    """Seeded chances of each fault, applied datagram by datagram.

    ``drop``, ``duplicate``, ``reorder``, ``corrupt`` and ``busy`` are
    probabilities; ``delay`` is the longest extra latency in seconds (each
    datagram gets a uniform share of it). A reordered datagram is held back
    for REORDER_HOLD so that the ones sent after it overtake it. A plan is
    not thread-safe on its own; FaultyEndpoint serialises access to it.
    """

    def __init__(
        self,
        drop: float = 0.0,
        duplicate: float = 0.0,
        reorder: float = 0.0,
        delay: float = 0.0,
        corrupt: float = 0.0,
        busy: float = 0.0,
        seed: int | None = None,
    ) -> None:
        for name, chance in (
            ("drop", drop),
            ("duplicate", duplicate),
            ("reorder", reorder),
            ("corrupt", corrupt),
            ("busy", busy),
        ):
            if not 0.0 <= chance <= 1.0:
                raise InvalidArgumentError(name, chance, "must be a probability 0..1")
        if not 0.0 <= delay <= 60.0:
            raise InvalidArgumentError("delay", delay, "must be 0..60 seconds")
        self.drop, self.duplicate, self.reorder = drop, duplicate, reorder
        self.delay, self.corrupt, self.busy = delay, corrupt, busy
        self.seed = seed if seed is not None else random.randrange(1 << 32)
        self._random = random.Random(self.seed)
        self.counts = FaultCounts()

    @classmethod
    def none(cls) -> FaultPlan:
        return cls(seed=0)

    @property
    def active(self) -> bool:
        """Whether the plan touches traffic at all."""
        return any((self.drop, self.duplicate, self.reorder, self.delay, self.corrupt))

    def apply(self, data: bytes, now: float) -> list[tuple[float, bytes]]:
        """What becomes of ``data``: (due time, bytes) pairs, maybe none."""
        chance = self._random.random
        counts = self.counts
        if self.drop and chance() < self.drop:
            counts.dropped += 1
            return []
        if self.corrupt and chance() < self.corrupt:
            data = self._corrupted(data)
            counts.corrupted += 1
        copies = 1
        if self.duplicate and chance() < self.duplicate:
            copies = 2
            counts.duplicated += 1
        out: list[tuple[float, bytes]] = []
        for _ in range(copies):
            due = now
            if self.delay:
                due += chance() * self.delay
                counts.delayed += 1
            if self.reorder and chance() < self.reorder:
                counts.reordered += 1
                due += REORDER_HOLD
            out.append((due, data))
        counts.passed += 1
        return out

    def answer_busy(self) -> bool:
        """Whether a board should answer this request with a busy code."""
        if self.busy and self._random.random() < self.busy:
            self.counts.busy += 1
            return True
        return False

    def _corrupted(self, data: bytes) -> bytes:
        if len(data) <= _FIRST_MEANINGFUL_BYTE:
            return data
        spoiled = bytearray(data)
        where = self._random.randrange(_FIRST_MEANINGFUL_BYTE, len(data))
        spoiled[where] ^= 1 << self._random.randrange(8)
        return bytes(spoiled)

    def __repr__(self) -> str:
        return (
            f"FaultPlan(drop={self.drop}, duplicate={self.duplicate}, "
            f"reorder={self.reorder}, delay={self.delay}, "
            f"corrupt={self.corrupt}, busy={self.busy}, seed={self.seed})"
        )


class FaultyEndpoint:
    """An endpoint whose traffic passes through a FaultPlan.

    ``sides`` says which direction is faulty. Delayed and held-back
    datagrams wait in a heap; outgoing ones are flushed by later sends and
    by receives, which never sleep past the next one falling due.
    """

    def __init__(
        self,
        inner: DatagramEndpoint,
        plan: FaultPlan,
        *,
        sides: Sides = "both",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if sides not in ("both", "receive", "send"):
            raise InvalidArgumentError("sides", sides, "must be both, receive or send")
        self.inner = inner
        self.plan = plan
        self._faulty_receive = sides in ("both", "receive")
        self._faulty_send = sides in ("both", "send")
        self._clock = clock
        self._lock = threading.Lock()
        self._order = itertools.count()
        self._incoming: list[tuple[float, int, bytes, Address]] = []
        self._outgoing: list[tuple[float, int, bytes, Address]] = []

    @property
    def address(self) -> Address:
        return self.inner.address

    @property
    def closed(self) -> bool:
        return self.inner.closed

    def resolve(self, host: str) -> str:
        return self.inner.resolve(host)

    def send_to(self, data: Datagram, address: Address) -> None:
        if not self._faulty_send:
            self.inner.send_to(data, address)
            return
        with self._lock:
            now = self._clock()
            # Held datagrams are kept as bytes: the sender may reuse its
            # buffer.
            for due, copy in self.plan.apply(bytes(data), now):
                heapq.heappush(self._outgoing, (due, next(self._order), copy, address))
        self._flush_outgoing()

    def receive_from(self, timeout: float | None) -> tuple[bytes, Address]:
        clock = self._clock
        deadline = None if timeout is None else clock() + timeout
        while True:
            self._flush_outgoing()
            ready = self._pop_incoming(clock())
            if ready is not None:
                return ready
            now = clock()
            wait = None if deadline is None else deadline - now
            if wait is not None and wait <= 0:
                raise ReceiveTimeout(
                    f"nothing received on {self.address} in {timeout} s"
                )
            due = self.next_due()
            if due is not None:
                wait = (
                    max(0.0, due - now)
                    if wait is None
                    else min(wait, max(0.0, due - now))
                )
            try:
                data, sender = self.inner.receive_from(wait)
            except ReceiveTimeout:
                continue
            if not self._faulty_receive:
                return data, sender
            with self._lock:
                for due_at, copy in self.plan.apply(data, clock()):
                    heapq.heappush(
                        self._incoming, (due_at, next(self._order), copy, sender)
                    )

    def receive_waiting(self, limit: int) -> list[tuple[bytes, Address]]:
        out: list[tuple[bytes, Address]] = []
        while len(out) < limit:
            try:
                out.append(self.receive_from(0.0))
            except ReceiveTimeout:
                break
        return out

    def wait_readable(self, timeout: float) -> bool:
        with self._lock:
            if self._incoming and self._incoming[0][0] <= self._clock():
                return True
        due = self.next_due()
        if due is not None:
            timeout = min(timeout, max(0.0, due - self._clock()))
        return self.inner.wait_readable(timeout)

    def next_due(self) -> float | None:
        """When the next delayed or held-back datagram falls due."""
        with self._lock:
            times = [heap[0][0] for heap in (self._incoming, self._outgoing) if heap]
        return min(times, default=None)

    def close(self) -> None:
        self.inner.close()

    def _pop_incoming(self, now: float) -> tuple[bytes, Address] | None:
        with self._lock:
            if self._incoming and self._incoming[0][0] <= now:
                _, _, data, sender = heapq.heappop(self._incoming)
                return data, sender
        return None

    def _flush_outgoing(self) -> None:
        now = self._clock()
        ready: list[tuple[bytes, Address]] = []
        with self._lock:
            while self._outgoing and self._outgoing[0][0] <= now:
                _, _, data, address = heapq.heappop(self._outgoing)
                ready.append((data, address))
        for data, address in ready:
            self.inner.send_to(data, address)

    def __repr__(self) -> str:
        return f"FaultyEndpoint({self.inner!r}, {self.plan!r})"
