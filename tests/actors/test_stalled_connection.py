"""A connection actor whose thread is stalled past its timeouts (the host
deschedules it) takes the replies that arrived meanwhile before its timers
run: the requests they answer neither expire nor go again.

The board serves an in-memory link, which delivers each reply as it is
sent, and the actor's clock moves only when the test says: the stall is
exact, whatever else the machine is doing."""

from __future__ import annotations

import queue
import random
from typing import cast

import pytest

from actors.connection import (
    ConnectionActor,
    ConnectionStats,
    GetConnectionStats,
    Submit,
)
from actors.protocol import Outcome, ReadJob, WindowSettings, WriteJob
from actors.testing import FakeClock
from transport import MemoryEndpoint, MemoryNetwork, SCAMPConnection, VirtualBoard
from transport.links.endpoint import Address, Datagram

ADDRESS = 0x6000_0000
SETTINGS = WindowSettings(size=8)
#: Blocking receives into the read before the stall: the transfer is going.
STALL_AT = 16


class StallingEndpoint:
    """A MemoryEndpoint whose owner stalls, once, in a blocking receive:
    until every reply to what it has sent has arrived, then a clock jump
    past the longest timeout later, as a thread the host left off the CPU
    would find its socket."""

    def __init__(self, endpoint: MemoryEndpoint, clock: FakeClock) -> None:
        self._endpoint = endpoint
        self._clock = clock
        self._sent = 0
        self._taken = 0
        self._receives_to_stall: int | None = None
        #: Replies owed when the stall began, and whether all had come.
        self.owed_at_stall = 0
        self.all_arrived = False

    def stall_in(self, receives: int) -> None:
        """Stall in the ``receives``-th blocking receive from now."""
        self._receives_to_stall = receives

    @property
    def address(self) -> Address:
        return self._endpoint.address

    @property
    def closed(self) -> bool:
        return self._endpoint.closed

    def resolve(self, host: str) -> str:
        return self._endpoint.resolve(host)

    def send_to(self, data: Datagram, address: Address) -> None:
        self._endpoint.send_to(data, address)
        self._sent += 1

    def receive_from(self, timeout: float | None) -> tuple[bytes, Address]:
        if self._receives_to_stall is not None:
            self._receives_to_stall -= 1
            if not self._receives_to_stall:
                self._receives_to_stall = None
                self._stall()
        received = self._endpoint.receive_from(timeout)
        self._taken += 1
        return received

    def _stall(self) -> None:
        # Each request the board has had gets one reply (no faults), and
        # nothing is sent while the owner is here: what it is owed is
        # fixed, and queued at once when the board sends it.
        self.owed_at_stall = self._sent - self._taken
        self.all_arrived = self._endpoint.wait_queued(self.owed_at_stall, 30)
        self._clock.advance(2 * SETTINGS.rto_ceiling)

    def receive_waiting(self, limit: int) -> list[tuple[bytes, Address]]:
        taken = self._endpoint.receive_waiting(limit)
        self._taken += len(taken)
        return taken

    def wait_readable(self, timeout: float) -> bool:
        return self._endpoint.wait_readable(timeout)

    def close(self) -> None:
        self._endpoint.close()


@pytest.mark.timeout(60)
def test_replies_that_came_during_a_stall_are_taken_before_timers_run() -> None:
    data = random.Random(35).randbytes(1 << 20)
    network = MemoryNetwork()
    # (Frozen but for the stall's jump: no timer falls due but by it.)
    clock = FakeClock()
    with VirtualBoard(2, 2, network=network) as board:
        endpoint = StallingEndpoint(network.endpoint(), clock)
        actor = ConnectionActor.start(
            lambda: SCAMPConnection(
                remote_host=board.address[0],
                remote_port=board.address[1],
                endpoint=endpoint,
            ),
            SETTINGS,
            clock=clock,
        )
        try:
            outcomes: queue.SimpleQueue[list[Outcome]] = queue.SimpleQueue()
            actor.tell(Submit([WriteJob("write", 0, 0, 0, ADDRESS, data)], outcomes))
            (written,) = outcomes.get(timeout=30)
            assert written.ok, written
            endpoint.stall_in(STALL_AT)
            actor.tell(Submit([ReadJob("read", 0, 0, 0, ADDRESS, len(data))], outcomes))
            (read,) = outcomes.get(timeout=30)
            stats = cast(ConnectionStats, actor.ask(GetConnectionStats(), timeout=10))
        finally:
            actor.stop()
    assert endpoint.all_arrived, endpoint.owed_at_stall
    assert endpoint.owed_at_stall == SETTINGS.size  # a full window waited
    assert read.ok and read.value == data
    assert (stats.timeouts, stats.resent, stats.duplicates) == (0, 0, 0), stats
