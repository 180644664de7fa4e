"""Worker processes killed at random lose nothing and answer nothing twice.

Four lossy boards (UDP on 127.0.0.1, seeded drops and duplicates) over two
worker processes; a killer thread SIGKILLs a worker every 0.3-0.8 s
(seeded) while rounds of multi-board writes, batches of small SCP jobs
and read-backs run. Every job is counted as its outcome is delivered, so
one answered twice or never is seen, not just a wrong byte. Afterwards no
worker process, thread or actor is left.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Hashable, Iterator
from typing import Any

import pykka
import pytest

from actors.errors import RequestError
from actors.placement.machine import Machine
from actors.placement.spawner import is_spawner
from actors.protocol.jobs import Job, Outcome, ReadJob, SCPJob, WriteJob
from messages.scp import GetVersion, ReadMemory, SDRAMAlloc, WriteMemory
from tests.system.machine_kit import (
    CountingSink,
    process_exists,
    version_of,
    worker_processes,
)
from transport import FaultPlan, VirtualBoard

BASE = 0x6000_0000
SMALL = 0x7000_0000
MIB = 1 << 20
#: Kills the killer makes; it paces them 0.3-0.8 s apart.
KILLS = 12


@pytest.fixture
def lossy_boards() -> Iterator[list[VirtualBoard]]:
    boards = [
        VirtualBoard(
            2,
            2,
            faults=FaultPlan(
                drop=0.02, duplicate=0.02, reorder=0.02, seed=4100 + index
            ),
        ).start()
        for index in range(4)
    ]
    try:
        yield boards
    finally:
        for board in boards:
            board.stop()


class Killer:
    """SIGKILLs a random live worker every 0.3-0.8 s (seeded), KILLS times."""

    def __init__(self, machine: Machine, seed: int) -> None:
        self.machine = machine
        self.random = random.Random(seed)
        self.killed: list[int] = []
        self.errors: list[BaseException] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="killer")

    def _run(self) -> None:
        try:
            while len(self.killed) < KILLS and not self.stop.is_set():
                # The pause decides when to kill; it waits for nothing.
                if self.stop.wait(self.random.uniform(0.3, 0.8)):
                    return
                # A pid already killed may still be reported until its
                # actor notices: never count a kill twice.
                pids = [
                    pid
                    for pid in self.machine.worker_pids
                    if pid is not None and pid not in self.killed
                ]
                if not pids:
                    continue
                pid = self.random.choice(sorted(pids))
                os.kill(pid, signal.SIGKILL)
                self.killed.append(pid)
        except BaseException as error:  # noqa: BLE001
            self.errors.append(error)


def round_jobs(
    round_: int, boards: list[Hashable], rng: random.Random
) -> tuple[dict[Hashable, bytes], list[tuple[Hashable, Job]], dict[Hashable, Any]]:
    """A round's data for each board, its batch of small SCP jobs, and
    what each small job should give (or write)."""
    data = {board: rng.randbytes(MIB + 97 * round_) for board in boards}
    batch: list[tuple[Hashable, Job]] = []
    expect: dict[Hashable, Any] = {}
    for index in range(120):
        board = boards[index % len(boards)]
        key = ("small", round_, index)
        kind = index % 4
        if kind == 0:
            request: Any = GetVersion(1, 1, index % 18)
            expect[key] = ("version", request, index % 18)
        elif kind == 1:
            at = rng.randrange(MIB - 256)
            request = ReadMemory((0, 0, 0), BASE + at, 200)
            expect[key] = ("read", request, (board, at))
        elif kind == 2:
            payload = rng.randbytes(rng.randint(1, 256))
            address = SMALL + (round_ * 120 + index) * 256
            request = WriteMemory((1, 0, 0), address, payload)
            expect[key] = ("write", request, (board, address, payload))
        else:
            # Unsafe to resend: ends OK, or with a RequestError that says
            # why it was not sent again.
            request = SDRAMAlloc(0, 1, app_id=5, size=64)
            expect[key] = ("alloc", request, None)
        batch.append((board, SCPJob(key, request)))
    return data, batch, expect


@pytest.mark.timeout(90)
def test_random_worker_kills_lose_nothing_and_answer_nothing_twice(
    lossy_boards: list[VirtualBoard],
) -> None:
    threads_before = set(threading.enumerate())
    actors_before = set(pykka.ActorRegistry.get_all())
    machine = Machine(
        [board.address for board in lossy_boards],
        workers=2,
        max_restarts=1000,
        period=1,
        timeout=0.2,
    )
    sink = CountingSink()
    submitted: Counter[Hashable] = Counter()
    killer = Killer(machine, seed=20260)
    rng = random.Random(6)
    boards = machine.boards
    small_writes: list[tuple[Hashable, int, bytes]] = []
    refused_allocs = 0
    rounds = 0

    def post(entries: list[tuple[Hashable, Job]]) -> list[Outcome]:
        for _, job in entries:
            submitted[job.key] += 1
        machine.post(entries, sink)
        return sink.wait_for([job.key for _, job in entries], 60)

    begun = time.monotonic()
    killer.thread.start()
    try:
        # Rounds until the killer is done, so that every kill lands during
        # traffic: write, small jobs, read back, on every board at once.
        while rounds < 1 or killer.thread.is_alive():
            data, batch, expect = round_jobs(rounds, boards, rng)
            writes: list[tuple[Hashable, Job]] = [
                (board, WriteJob(("write", rounds, board), 0, 0, 0, BASE, data[board]))
                for board in boards
            ]
            for outcome in post(writes):
                assert outcome.ok, outcome.error

            for outcome in post(batch):
                kind, request, what = expect[outcome.key]
                if kind == "alloc":
                    if not outcome.ok:
                        assert isinstance(outcome.error, RequestError)
                        # Refused after a worker's death, or lost on the
                        # lossy link and (rightly) not tried again.
                        text = str(outcome.error)
                        assert "not sent again" in text or "not resent" in text, text
                        refused_allocs += 1
                    continue
                assert outcome.ok, (outcome.key, outcome.error)
                if kind == "version":
                    assert version_of(outcome, request).p == what
                elif kind == "read":
                    response = request.get_scp_response()
                    response.read_bytestring(outcome.value, 2)
                    board, at = what
                    assert response.payload == data[board][at : at + 200]
                else:
                    small_writes.append(what)

            reads: list[tuple[Hashable, Job]] = [
                (
                    board,
                    ReadJob(("read", rounds, board), 0, 0, 0, BASE, len(data[board])),
                )
                for board in boards
            ]
            for outcome, (board, _) in zip(post(reads), reads, strict=True):
                assert outcome.ok, outcome.error
                assert bytes(outcome.value) == data[board]
            rounds += 1

        killer.thread.join()
        assert killer.errors == []
        assert len(killer.killed) == KILLS

        # Every small write landed where it should.
        for board, address, payload in small_writes:
            assert machine.read(board, 1, 0, address, len(payload)) == payload
        supervision = machine.supervision()
        assert supervision is not None
        assert supervision.restarts >= KILLS
        assert not supervision.gave_up
        for board in boards:
            assert machine.version(board).x == 0  # all still serving
        elapsed = time.monotonic() - begun
        print(
            f"\n{rounds} rounds, {KILLS} kills, {supervision.restarts} "
            f"restarts, {refused_allocs} unsafe allocations refused, "
            f"{sum(submitted.values())} jobs, in {elapsed:.1f} s"
        )
    finally:
        killer.stop.set()
        killer.thread.join(10)
        machine.close()

    # After close too (which ends anything open): each job exactly once.
    sink.check_exactly_once(submitted)
    # No orphans: the killed workers were reaped, and no worker remains.
    for pid in killer.killed:
        assert not process_exists(pid), f"killed worker {pid} not reaped"
    assert multiprocessing.active_children() == []
    assert worker_processes() == {}
    for board in lossy_boards:
        board.stop()
    for thread in set(threading.enumerate()) - threads_before:
        thread.join(10)
    leaked = [
        t.name
        for t in set(threading.enumerate()) - threads_before
        if not is_spawner(t)  # made by the first Machine, lasts: not a leak
    ]
    assert leaked == []
    assert set(pykka.ActorRegistry.get_all()) == actors_before
