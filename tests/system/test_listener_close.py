"""Close means closed: a ConnectionListener with a full backlog and slow
callbacks, fed by a real UDP sender on 127.0.0.1, closes within its
documented bound (its ``shutdown``, however many callback actors), and no
callback of it runs afterwards.

Nothing here synchronises on sleep: the fill ends on the listener's own
count, the end on thread joins and on datagrams found unread.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pykka
import pytest

from actors import ConnectionListener
from actors.compat.connection_listener import DEFAULT_SHUTDOWN, STOP_GRACE
from tests.actors.listening.test_listener import captured_events
from transport import UDPConnection

WAIT = 10.0
#: Slack on a time bound for a busy 2-core machine.
MARGIN = 1.0
#: How long each callback takes (its work, not a synchronisation).
SLOW = 0.05
N_PROCESSES = 4


class Slow:
    """A callback that takes SLOW seconds, or until ``gate`` opens when it
    has one, recording when it was entered and on which thread."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.entries: list[float] = []
        self.threads: set[threading.Thread] = set()
        self.entered = threading.Event()
        self.gate = gate
        self._lock = threading.Lock()

    def __call__(self, message: Any) -> None:
        with self._lock:
            self.entries.append(time.monotonic())
            self.threads.add(threading.current_thread())
        self.entered.set()
        if self.gate is None:
            time.sleep(SLOW)  # the callback's work
        else:
            assert self.gate.wait(WAIT), "gate never opened"

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.entries)


@pytest.fixture
def udp() -> Iterator[tuple[UDPConnection, socket.socket]]:
    connection = UDPConnection(local_host="127.0.0.1")
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.bind(("127.0.0.1", 0))
    try:
        yield connection, sender
    finally:
        sender.close()
        connection.close()
        pykka.ActorRegistry.stop_all()


def fill(
    listener: ConnectionListener[bytes],
    connection: UDPConnection,
    sender: socket.socket,
    at_least: int,
) -> int:
    """Send until the listener says it has received ``at_least`` datagrams
    (loopback may drop some of a burst: those are sent again as new ones);
    how many were sent."""
    address = (connection.local_ip_address, connection.local_port)
    sent = 0
    while True:
        stats = listener.stats()
        assert stats is not None
        if stats.received >= at_least:
            return sent
        assert sent < 50 * at_least, f"only {stats.received} of {sent} received"
        for _ in range(100):
            sender.sendto(b"msg-%d" % sent, address)
            sent += 1


def no_reader_left(
    connection: UDPConnection, sender: socket.socket, slows: list[Slow]
) -> None:
    """Every callback thread has ended, and datagrams sent now stay unread
    in the socket: nothing can call a callback any more."""
    for slow in slows:
        for thread in slow.threads:
            thread.join(WAIT)
            assert not thread.is_alive(), thread.name
    address = (connection.local_ip_address, connection.local_port)
    for number in range(20):
        sender.sendto(b"late-%d" % number, address)
    unread = [connection.receive(WAIT)]
    while unread[-1] != b"late-19":  # after any the fill sent but nobody read
        unread.append(connection.receive(WAIT))
    assert [d for d in unread if d.startswith(b"late-")] == [
        b"late-%d" % number for number in range(20)
    ]


@pytest.mark.timeout(60)
def test_close_with_a_full_backlog_is_bounded_and_final(
    udp: tuple[UDPConnection, socket.socket],
) -> None:
    connection, sender = udp
    listener: ConnectionListener[bytes] = ConnectionListener(
        connection, n_processes=N_PROCESSES, timeout=0.2
    )
    slows = [Slow() for _ in range(N_PROCESSES)]  # one per callback actor
    for slow in slows:
        listener.add_callback(slow)
    listener.start()
    try:
        fill(listener, connection, sender, at_least=4000)
        for slow in slows:
            assert slow.entered.wait(WAIT)
        stats = listener.stats()
        assert stats is not None
        # Each actor gets through 20 a second: thousands are queued.
        assert min(stats.backlogs) > 1000, stats.backlogs
        with captured_events() as logs:
            began = time.monotonic()
            listener.close()
            closed_at = time.monotonic()
    finally:
        listener.close()
    took = closed_at - began
    # The bound is the shutdown in total (the old close took 5 s per actor).
    assert took < DEFAULT_SHUTDOWN + MARGIN, f"close() took {took:.2f} s"
    assert not listener.is_alive()
    handled = [slow.count for slow in slows]
    assert all(entry <= closed_at for slow in slows for entry in slow.entries)

    no_reader_left(connection, sender, slows)
    assert [slow.count for slow in slows] == handled, "a callback ran after close()"
    assert pykka.ActorRegistry.get_all() == []

    final = listener.stats()
    assert final is not None and final.received >= 4000
    assert final.dropped == 0  # nothing overflowed: all of it was queued
    assert final.delivered == N_PROCESSES * final.received
    assert listener.dropped_on_close == final.delivered - sum(handled)
    assert listener.dropped_on_close > N_PROCESSES * 1000
    (summary,) = [e for e in logs if e["event"] == "listener.shut_down"]
    assert summary["dropped_on_close"] == listener.dropped_on_close
    assert summary["abandoned"] == []
    events = {e["event"] for e in logs}
    assert "actor.kill" not in events and "callback.abandoned" not in events
    print(
        f"close() with {final.received} received, {sum(handled)} handled: "
        f"{took * 1000:.0f} ms, {listener.dropped_on_close} dropped"
    )


@pytest.mark.timeout(60)
def test_callbacks_stuck_at_close_are_abandoned_together(
    udp: tuple[UDPConnection, socket.socket],
) -> None:
    connection, sender = udp
    shutdown = 1.0
    listener: ConnectionListener[bytes] = ConnectionListener(
        connection, n_processes=N_PROCESSES, timeout=0.2, shutdown=shutdown
    )
    gate = threading.Event()
    slows = [Slow(gate) for _ in range(N_PROCESSES)]
    for slow in slows:
        listener.add_callback(slow)
    listener.start()
    try:
        fill(listener, connection, sender, at_least=1000)
        for slow in slows:
            assert slow.entered.wait(WAIT)  # each stuck in its first callback
        with captured_events() as logs:
            began = time.monotonic()
            listener.close()
            closed_at = time.monotonic()
        final = listener.stats()
        assert final is not None
        assert listener.dropped_on_close == 0  # all queued behind the stuck ones
    finally:
        gate.set()
        listener.close()
    took = closed_at - began
    # Waited for them (less each actor's stop grace), all at once.
    grace = min(STOP_GRACE, shutdown / (2 * (N_PROCESSES + 1)))
    assert took >= shutdown - (N_PROCESSES + 1) * grace
    assert took < shutdown + MARGIN, f"close() took {took:.2f} s"
    assert not listener.is_alive()
    abandoned = [e for e in logs if e["event"] == "callback.abandoned"]
    assert sorted(e["slot"] for e in abandoned) == list(range(N_PROCESSES))
    assert all(e["level"] == "ERROR" for e in abandoned)
    assert pykka.ActorRegistry.get_all() == []

    # The gate is open: each stuck callback returns, and its actor drops
    # the rest and ends; no callback starts again.
    no_reader_left(connection, sender, slows)
    assert [slow.count for slow in slows] == [1] * N_PROCESSES
    assert all(entry <= closed_at for slow in slows for entry in slow.entries)
    assert listener.dropped_on_close == final.delivered - N_PROCESSES
    print(
        f"close() with {N_PROCESSES} callbacks stuck, shutdown {shutdown} s: "
        f"{took * 1000:.0f} ms, {len(abandoned)} abandoned, "
        f"{listener.dropped_on_close} dropped once they returned"
    )
