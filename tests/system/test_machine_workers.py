"""Machine: a worker killed (SIGKILL), hung (SIGSTOP) or orphaned, for real,
against VirtualBoards on 127.0.0.1: its boards serve again, its open jobs
end once, and nothing is left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from actors.connection.actor import ConnectionStats
from actors.placement.parent import STOP_GRACE
from tests.system import machine_kit
from tests.system.machine_kit import (
    BASE,
    MIB,
    ROOT,
    assert_hung_worker_replaced_once,
    kill_process,
    machine_of,
    new_pid,
    process_exists,
    process_running,
    wait_until,
    worker_processes,
)
from transport import VirtualBoard

#: The kit's fixtures: three boards a module, and no worker left behind.
boards = machine_kit.boards
no_stray_workers = machine_kit.no_stray_workers

# -- a killed worker ---------------------------------------------------------------


@pytest.mark.timeout(40)
def test_killed_worker_serves_again_within_two_seconds(
    boards: list[VirtualBoard],
) -> None:
    data = os.urandom(4 * MIB)
    with machine_of(boards, workers=2) as machine:
        # Group 0 holds boards 0 and 2, group 1 board 1.
        old = machine.worker_pids[0]
        assert old is not None
        other = machine.worker_pids[1]
        received = boards[0].stats.received
        with ThreadPoolExecutor(1) as pool:
            transfer = pool.submit(machine.write, 0, 0, 1, BASE, data)
            # Kill once the write is well under way on the board.
            wait_until(
                lambda: boards[0].stats.received > received + 2000,
                "the write under way",
            )
            assert not transfer.done()
            os.kill(old, signal.SIGKILL)
            killed_at = time.monotonic()
            machine.version(2)  # the killed worker's other board
            quiet_board = time.monotonic() - killed_at
            machine.version(0)  # behind what is left of the write
            busy_board = time.monotonic() - killed_at
            transfer.result(timeout=20)
            finished = time.monotonic() - killed_at
        print(
            f"\nkill -> serving: version() on the killed worker's idle "
            f"board after {quiet_board:.3f} s, on the board with the "
            f"transfer after {busy_board:.3f} s; the 4 MiB write done "
            f"{finished:.3f} s after the kill"
        )
        assert quiet_board < 2.0
        assert busy_board < 2.0
        assert machine.read(0, 0, 1, BASE, len(data)) == data
        pid = new_pid(machine, 0, old)
        assert machine.worker_pids == [pid, other]  # the other untouched
        assert not process_exists(old)
        supervision = machine.supervision()
        assert supervision is not None and supervision.restarts == 1


@pytest.mark.timeout(40)
def test_hung_worker_is_replaced_after_its_heartbeat_deadline(
    boards: list[VirtualBoard],
) -> None:
    with machine_of(boards[:1], workers=1, heartbeat_deadline=0.5) as machine:
        (old,) = machine.worker_pids
        assert old is not None
        try:
            machine.write(0, 1, 1, BASE, b"before" * 100)
            os.kill(old, signal.SIGSTOP)
            stopped_at = time.monotonic()
            # Asked while the worker is hung: answered by its successor.
            assert machine.read(0, 1, 1, BASE, 600) == b"before" * 100
            took = time.monotonic() - stopped_at
            print(
                f"\nhung worker -> serving again after {took:.3f} s "
                f"(heartbeat deadline 0.5 s)"
            )
            assert 0.5 <= took < 3.0
            assert_hung_worker_replaced_once(machine, old)
        finally:
            kill_process(old)


@pytest.mark.timeout(60)
def test_a_hung_worker_with_a_full_pipe_is_replaced_too(
    boards: list[VirtualBoard],
) -> None:
    """A job too large for the pipe, sent to a hung worker, blocks the
    sending actor: the heartbeat deadline must still replace the worker
    (it is killed, so the send fails), and the job is done by the next."""
    data = bytes(range(256)) * (1 << 12)  # 1 MiB, far more than a pipe holds
    with machine_of(boards[:1], workers=1, heartbeat_deadline=0.5) as machine:
        (old,) = machine.worker_pids
        assert old is not None
        try:
            machine.version(0)
            os.kill(old, signal.SIGSTOP)
            machine.write(0, 1, 1, BASE, data)
            assert machine.read(0, 1, 1, BASE, len(data)) == data
            assert_hung_worker_replaced_once(machine, old)
        finally:
            kill_process(old)


@pytest.mark.timeout(60)
def test_closing_with_a_hung_worker_takes_its_heartbeat_deadline(
    boards: list[VirtualBoard],
) -> None:
    """close() does not wait out the grace a live worker gets to end: a
    hung one is killed once it has missed its heartbeat deadline."""
    machine = machine_of(boards[:1], workers=1, heartbeat_deadline=0.5)
    (old,) = machine.worker_pids
    assert old is not None
    try:
        machine.version(0)
        os.kill(old, signal.SIGSTOP)
        started = time.monotonic()
        machine.close()
        took = time.monotonic() - started
        assert took < STOP_GRACE, took
        wait_until(lambda: not process_exists(old), "the hung worker gone")
        assert worker_processes() == {}
    finally:
        kill_process(old)


@pytest.mark.timeout(40)
def test_stats_asked_of_a_hung_worker_come_from_its_successor(
    boards: list[VirtualBoard],
) -> None:
    with machine_of(boards[:1], workers=1, heartbeat_deadline=0.5) as machine:
        (old,) = machine.worker_pids
        assert old is not None
        try:
            os.kill(old, signal.SIGSTOP)
            asked_at = time.monotonic()
            stats = machine.stats()
            took = time.monotonic() - asked_at
            assert isinstance(stats[0], ConnectionStats)
            assert took < 3.0, f"stats() took {took:.1f} s"
        finally:
            kill_process(old)


@pytest.mark.timeout(30)
def test_worker_exits_when_its_parent_dies(boards: list[VirtualBoard]) -> None:
    script = (
        "import sys, threading\n"
        "from actors.placement.machine import Machine\n"
        "machine = Machine([('127.0.0.1', int(sys.argv[1]))], workers=1)\n"
        "machine.version(0)\n"
        "print(machine.worker_pids[0], flush=True)\n"
        "threading.Event().wait(60)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script, str(boards[0].address[1])],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    try:
        assert parent.stdout is not None
        worker = int(parent.stdout.readline())
        assert process_running(worker)
        parent.kill()
        parent.wait(10)
        # The worker sees its pipe close and exits (init reaps it, or it
        # stays a zombie where init does not reap: either way, not running).
        wait_until(
            lambda: not process_running(worker), "the orphaned worker exited", limit=10
        )
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)
