"""What the Machine tests share: helpers that find, kill and wait for
worker processes, sinks and requests that count, and the fixtures (three
VirtualBoards a module, and no worker left behind by any test)."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from actors.placement.machine import Machine
from actors.protocol.jobs import Outcome
from messages.scp import GetVersion
from transport import VirtualBoard

ROOT = Path(__file__).resolve().parents[2]
BASE = 0x6000_0000
MIB = 1 << 20
COUNTER = struct.Struct("<I")


# -- helpers (the chaos test uses them too) ---------------------------------------


def wait_until(condition: Callable[[], bool], what: str, limit: float = 10.0) -> None:
    """Poll ``condition`` (for state that sends no event, such as a
    process's end), pausing briefly between looks."""
    pause = threading.Event()  # never set: a wait that cannot be cut short
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        pause.wait(0.005)


def process_exists(pid: int) -> bool:
    """Whether ``pid`` is still in the process table (a zombie counts: it
    has not been reaped)."""
    return os.path.exists(f"/proc/{pid}")


def children() -> dict[int, bytes]:
    """This process's child processes: pid -> command line."""
    me = os.getpid()
    found: dict[int, bytes] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
            if int(fields[1]) != me:
                continue
            with open(f"/proc/{name}/cmdline", "rb") as cmdline:
                found[int(name)] = cmdline.read().replace(b"\0", b" ")
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
    return found


def worker_processes() -> dict[int, bytes]:
    """Children that are spawned multiprocessing workers (not the
    resource tracker multiprocessing starts once and keeps)."""
    return {pid: line for pid, line in children().items() if b"spawn_main" in line}


def process_running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != b"Z"


def kill_process(pid: int, sig: signal.Signals = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def live_pids(machine: Machine) -> list[int]:
    return [pid for pid in machine.worker_pids if pid is not None]


def new_pid(machine: Machine, group: int, old: int, limit: float = 10.0) -> int:
    """The pid of group ``group``'s worker once it is not ``old``."""
    found: list[int] = []

    def replaced() -> bool:
        pid = machine.worker_pids[group]
        if pid is not None and pid != old:
            found.append(pid)
            return True
        return False

    wait_until(replaced, f"group {group}'s worker replaced", limit)
    return found[-1]


def assert_hung_worker_replaced_once(machine: Machine, old: int) -> None:
    """The only group's hung worker ``old`` was killed and reaped (not left
    behind), and one restart put a new worker in its place."""
    pid = new_pid(machine, 0, old)
    wait_until(lambda: not process_exists(old), "the hung worker gone")
    assert set(worker_processes()) == {pid}
    supervision = machine.supervision()
    assert supervision is not None and supervision.restarts == 1


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def shm_entries() -> set[str]:
    try:
        return set(os.listdir("/dev/shm"))
    except FileNotFoundError:
        return set()


class CountingSink:
    """An outcome sink that counts every delivery by key and wakes whoever
    waits for a number of keys to be answered."""

    def __init__(self) -> None:
        self.delivered: Counter[Hashable] = Counter()
        self.outcomes: dict[Hashable, Outcome] = {}
        self._ready = threading.Condition()

    def put(self, outcomes: list[Outcome], /) -> None:
        with self._ready:
            for outcome in outcomes:
                self.delivered[outcome.key] += 1
                self.outcomes[outcome.key] = outcome
            self._ready.notify_all()

    def wait_for(self, keys: Sequence[Hashable], limit: float = 30.0) -> list[Outcome]:
        with self._ready:
            if not self._ready.wait_for(
                lambda: all(key in self.outcomes for key in keys), limit
            ):
                missing = [k for k in keys if k not in self.outcomes]
                raise AssertionError(
                    f"never answered: {missing[:10]} ({len(missing)} in all)"
                )
            return [self.outcomes[key] for key in keys]

    def check_exactly_once(self, submitted: Counter[Hashable]) -> None:
        with self._ready:
            assert all(n == 1 for n in submitted.values()), "keys reused"
            twice = {k: n for k, n in self.delivered.items() if n != 1}
            assert twice == {}, f"answered more than once: {twice}"
            never = set(submitted) - set(self.delivered)
            assert never == set(), f"never answered: {never}"
            assert set(self.delivered) == set(submitted)


class VersionWithHook(GetVersion):
    """A request carrying a closure: it cannot cross to a worker."""

    def __init__(self, x: int = 0, y: int = 0, p: int = 0) -> None:
        super().__init__(x, y, p)
        self.hook = lambda: None


def version_of(outcome: Outcome, request: GetVersion) -> Any:
    response = request.get_scp_response()
    response.read_bytestring(outcome.value, 2)
    return response.version_info


# -- fixtures -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def boards() -> Iterator[list[VirtualBoard]]:
    started = [VirtualBoard(2, 2).start() for _ in range(3)]
    try:
        yield started
    finally:
        for board in started:
            board.stop()


@pytest.fixture(autouse=True)
def no_stray_workers() -> Iterator[None]:
    """Whatever a test did, it leaves no worker behind (a stopped one is
    killed, so that a failing test cannot hang the run)."""
    yield
    strays = worker_processes()
    for pid in strays:
        kill_process(pid, signal.SIGCONT)
    for child in multiprocessing.active_children():
        child.join(5)
    assert worker_processes() == {}, f"workers left: {strays}"


def machine_of(boards: Sequence[VirtualBoard], **options: Any) -> Machine:
    return Machine([board.address for board in boards], **options)
