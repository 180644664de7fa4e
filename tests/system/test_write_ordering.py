"""What the board holds is what the last successful write said.

Callers write and read back their own regions of a board (UDP on
127.0.0.1) that drops, duplicates and reorders datagrams, while a killer
crashes the connection actor again and again. Every read is checked
against a model of what was written: a late copy of an earlier write
landing on a later one shows up as wrong bytes.
"""

from __future__ import annotations

import os
import queue
import random
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

import actors
from actors.board.client import Client
from actors.errors import ShutDown
from actors.protocol.jobs import Outcome, WriteJob
from tests.system.test_restart_without_loss import kill
from transport import FaultPlan, VirtualBoard

BASE = 0x6000_0000
REGION = 1024
CALLERS = 16
#: Operations in all (half writes, half reads), as the issue asks.
OPERATIONS = 20_000


#: Each test fails if it leaves an actor or a thread running.
pytestmark = pytest.mark.usefixtures("actor_system")


def caller(client: Client, index: int, pairs: int, seed: int) -> int:
    """Write a random stretch of this caller's region, then read the whole
    region back and compare it with the model; the wrong bytes seen."""
    rng = random.Random(seed)
    address = BASE + index * REGION
    model = bytearray(REGION)
    client.write(1, 1, address, bytes(model))
    wrong = 0
    for _ in range(pairs):
        size = rng.randint(1, REGION // 2)
        offset = rng.randrange(REGION - size + 1)
        data = os.urandom(size)
        client.write(1, 1, address + offset, data)
        model[offset : offset + size] = data
        back = client.read(1, 1, address, REGION)
        wrong += sum(a != b for a, b in zip(back, model, strict=True))
    return wrong


@pytest.mark.timeout(150)
def test_every_read_sees_the_last_write_under_faults_and_kills() -> None:
    faults = FaultPlan(drop=0.02, duplicate=0.02, reorder=0.02, seed=1212)
    with VirtualBoard(2, 2, faults=faults) as board:
        # The board holds a reordered datagram back 5 ms: 20 ms covers it.
        client = actors.connect(
            *board.address, max_restarts=100_000, period=1, max_datagram_age=0.02
        )
        stop = threading.Event()
        kills = 0

        def killer() -> None:
            nonlocal kills
            rng = random.Random(5)
            last = None
            while not stop.wait(rng.uniform(0.05, 0.2)):
                last = kill(client, last)
                kills += 1

        thread = threading.Thread(target=killer, daemon=True)
        thread.start()
        pairs = OPERATIONS // 2 // CALLERS
        try:
            with ThreadPoolExecutor(CALLERS) as pool:
                wrong = list(
                    pool.map(
                        lambda i: caller(client, i, pairs, 100 + i), range(CALLERS)
                    )
                )
        finally:
            stop.set()
            thread.join(timeout=10)
        client.close()
    assert wrong == [0] * CALLERS
    assert kills >= 5
    counts = board.faults.counts
    # (A restarted connection's stats start afresh: the board's count.)
    assert counts.dropped and counts.duplicated and counts.reordered


@pytest.mark.timeout(30)
def test_a_fenced_range_holds_back_overlapping_writes_only() -> None:
    # What a new worker does with the writes its lost predecessor had sent.
    with VirtualBoard(2, 2) as board:
        # Clean writes free their ranges at once; only the fence holds.
        client = actors.connect(
            *board.address, max_datagram_age=600, network_duplicates=False
        )
        client.write(1, 1, BASE, b"\1" * 512)
        client.fence(((1, 1), BASE, BASE + 256))
        sink: queue.SimpleQueue[list[Outcome]] = queue.SimpleQueue()
        client.post([WriteJob("over", 1, 1, 0, BASE + 200, b"\2" * 100)], sink)
        # Reads pass, and so do writes elsewhere.
        assert client.read(1, 1, BASE, 512) == b"\1" * 512
        client.write(1, 1, BASE + 300, b"\3" * 100)
        client.write(0, 1, BASE, b"\4" * 100)
        assert sink.empty()
        assert client.read(1, 1, BASE, 512) == (b"\1" * 300 + b"\3" * 100 + b"\1" * 112)
        client.close()
    (outcome,) = sink.get(timeout=10)
    assert isinstance(outcome.error, ShutDown)
