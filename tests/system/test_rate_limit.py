"""Connections sharing a RateLimiterActor stay within its rate, over UDP."""

from __future__ import annotations

import threading
import time

import pytest

from actors import RateLimiterActor, connect
from transport import UDPEndpoint, VirtualBoard
from transport.links.endpoint import Address, Datagram

CAPACITY = 64
RATE = 4000.0  # datagrams per second, for all clients together
LEASE = 32  # ConnectionActor's default lease size


class RecordingEndpoint(UDPEndpoint):
    """A UDP endpoint that notes when each datagram leaves."""

    def __init__(self, log: list[float], lock: threading.Lock) -> None:
        super().__init__("127.0.0.1", 0)
        self._log, self._lock = log, lock

    def send_to(self, data: Datagram, address: Address) -> None:
        with self._lock:
            self._log.append(time.monotonic())
        super().send_to(data, address)


@pytest.mark.timeout(60)
def test_two_clients_sharing_a_limiter_never_exceed_its_rate() -> None:
    sends: list[float] = []
    lock = threading.Lock()
    limiter = RateLimiterActor.start(CAPACITY, RATE)
    board = VirtualBoard(2, 2).start()
    try:
        clients = [
            connect(
                *board.address, limiter=limiter, endpoint=RecordingEndpoint(sends, lock)
            )
            for _ in range(2)
        ]
        size = 256 * 1024  # 1024 requests each
        results: dict[int, bytes] = {}

        def read(index: int) -> None:
            results[index] = clients[index].read(index, 0, 0x6000_0000, size)

        threads = [threading.Thread(target=read, args=(i,)) for i in (0, 1)]
        start = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        elapsed = time.monotonic() - start
        for client in clients:
            client.close()
    finally:
        board.stop()
        limiter.stop()
    assert [len(results[i]) for i in (0, 1)] == [size, size]
    total = len(sends)
    assert total >= 2 * size // 256
    # Over the whole run no more than the bucket allows ...
    assert elapsed >= (total - CAPACITY - 2 * LEASE) / RATE
    # ... and over every window longer than one lease's worth of time: at
    # most a bucketful, a lease in hand per client, and the refill.
    sends.sort()
    for width in (0.01, 0.05, 0.2):
        assert width > LEASE / RATE
        j = 0
        for i, begin in enumerate(sends):
            while j < total and sends[j] <= begin + width:
                j += 1
            assert j - i <= CAPACITY + 2 * LEASE + RATE * width, (width, j - i)
