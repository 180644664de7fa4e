"""A health check asks every board at once and waits for them together,
at every level: a worker's clients, a scrape's Machines. One stuck
connection actor shows as unresponsive alone, and holds the check no
longer than its one timeout."""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest

from actors.board.client import Client
from actors.placement.links import GroupLost, ready_pid
from actors.placement.machine import Machine
from actors.placement.wire import GroupSpec
from actors.placement.worker import serve
from actors.protocol.jobs import SCPJob
from actors.scrape import machine_healths, open_objects
from messages.scp import GetVersion
from tests.system.test_metrics_visibility import StuckSink
from transport import VirtualBoard

#: What ThreadLink's receive() gives the group once the parent closes it.
_CLOSED = b""


class ThreadLink:
    """A group served on a thread of this process (GroupLink): the worker's
    own code (serve, GroupServer), its Clients reachable from here, so a
    test can hold one of their connection actors."""

    def __init__(self, spec: GroupSpec) -> None:
        self._inbox: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._outbox: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=serve,
            args=(spec, self._receive, self._outbox.put, self._stopping),
            name=f"thread-group-{spec.name}",
            daemon=True,
        )
        self._thread.start()
        self.where = f"thread {self._thread.name}"
        first = self.receive(30)
        if first is None:
            self.close(0)
            raise GroupLost(f"{self.where} did not start within 30 s")
        self.pid: int | None = ready_pid(first, self.where)

    def _receive(self, timeout: float) -> bytes | None:
        """The group's end: the parent's next batch."""
        try:
            blob = self._inbox.get(timeout=timeout)
        except queue.Empty:
            return None
        if blob is _CLOSED:
            raise EOFError("the parent closed the link")
        return blob

    def send(self, blob: bytes) -> None:
        if self._stopping.is_set():
            raise GroupLost(f"{self.where} has stopped")
        self._inbox.put(blob)

    def receive(self, timeout: float) -> bytes | None:
        try:
            return self._outbox.get(timeout=timeout)
        except queue.Empty:
            if not self._thread.is_alive():
                raise GroupLost(f"{self.where} has gone") from None
            return None

    def abandon(self) -> None:
        self._stopping.set()
        self._inbox.put(_CLOSED)

    def close(self, grace: float) -> None:
        self._inbox.put(_CLOSED)
        self._thread.join(max(grace, 30))


def client_of(board: VirtualBoard) -> Client:
    """The open Client (here, not a Machine's in-process one) of ``board``."""
    clients, _ = open_objects()
    (client,) = [c for c in clients if c.address == board.address and not c.closed]
    return client


@contextmanager
def stuck(client: Client) -> Iterator[None]:
    """``client``'s connection actor held (handing over an outcome to a
    consumer that does not take it) until the block ends."""
    sink = StuckSink()
    client.post([SCPJob("stuck", GetVersion(0, 0, 0))], sink)
    try:
        assert sink.entered.wait(10)
        yield
    finally:
        sink.release.set()


@pytest.mark.timeout(60)
def test_a_stuck_client_in_a_worker_is_unresponsive_alone() -> None:
    """One of a worker's boards has a stuck connection actor: it alone is
    unresponsive, within the health check's timeout; its group's other
    board serves (the worker asks its clients at once, not one after
    another, each given 10 s)."""
    with (
        VirtualBoard(2, 2) as a,
        VirtualBoard(2, 2) as b,
        Machine({"a": a, "b": b}, workers=1, start_link=ThreadLink) as machine,
    ):
        assert machine.version("a") and machine.version("b")
        assert machine.worker_pids == [os.getpid()]  # the group is on a thread
        with stuck(client_of(a)):
            health = machine.health(timeout=3)
        assert health["a"].state == "unresponsive", health["a"]
        assert "did not answer" in health["a"].reason
        assert health["b"].state == "serving", health["b"]
        assert machine.health(timeout=30)["a"].state == "serving"


@pytest.mark.timeout(60)
def test_a_scrape_waits_one_timeout_for_all_machines() -> None:
    """Three Machines, each with a stuck board: the scrape's machines are
    asked at once, so it takes about one timeout, not one per Machine; the
    answers are as each Machine alone gives them."""
    timeout = 2.0  # (the bound below leaves a loaded machine 3 s over one)
    with ExitStack() as stack:
        machines: list[Machine] = []
        for _ in range(3):
            boards = [stack.enter_context(VirtualBoard(2, 2)) for _ in range(2)]
            machine = stack.enter_context(Machine(boards, workers=0))
            assert machine.version(0) and machine.version(1)
            machines.append(machine)
            sink = StuckSink()
            stack.callback(sink.release.set)
            machine.local_clients[0].post([SCPJob("stuck", GetVersion(0, 0, 0))], sink)
            assert sink.entered.wait(10)
        started = time.monotonic()
        healths, _ = machine_healths(machines, timeout)
        took = time.monotonic() - started
    assert [h.state for h in healths] == ["unresponsive", "serving"] * 3
    # One after another takes at least 3 timeouts (each Machine waits its
    # full timeout for its stuck board); at once, one and some overhead.
    assert took < 2.5 * timeout
