"""Machine: many boards over worker processes (and in-process), against
VirtualBoards on 127.0.0.1 and real spawned workers.

Workers are killed (SIGKILL) and hung (SIGSTOP) for real; the tests then
check that the boards serve again, that open jobs end exactly once, and
that no process, thread, file descriptor or shared-memory entry is left.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import random
import signal
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Hashable
from typing import Any, cast

import pykka
import pytest

from actors import connect
from actors.connection.actor import ConnectionStats
from actors.errors import RequestError, RequestTimeout, ShutDown
from actors.placement.links import GroupLink, GroupLost, ProcessLink
from actors.placement.machine import Machine
from actors.placement.parent import Forward
from actors.placement.wire import BoardSpec, GroupSpec
from actors.protocol.jobs import Job, ReadJob, SCPJob, WriteJob
from actors.ratelimit.limiter import LimiterCounters, LimiterStats, RateLimiterActor
from messages.errors import InvalidArgumentError
from messages.scp import GetVersion, IPTagSet, ReadMemory
from tests.system import machine_kit
from tests.system.machine_kit import (
    BASE,
    COUNTER,
    MIB,
    CountingSink,
    VersionWithHook,
    children,
    live_pids,
    machine_of,
    new_pid,
    open_fds,
    process_exists,
    shm_entries,
    version_of,
    wait_until,
    worker_processes,
)
from transport import VirtualBoard
from transport.errors import TransportError
from transport.virtual.traffic import TagTraffic

#: The kit's fixtures: three boards a module, and no worker left behind.
boards = machine_kit.boards
no_stray_workers = machine_kit.no_stray_workers

# -- the operations, placed and in-process -------------------------------------------


@pytest.mark.timeout(40)
@pytest.mark.parametrize("workers", [2, 0])
def test_operations_on_every_board(boards: list[VirtualBoard], workers: int) -> None:
    rng = random.Random(workers)
    with connect([board.address for board in boards], workers=workers) as machine:
        assert isinstance(machine, Machine)
        assert machine.boards == [0, 1, 2]
        assert machine.placement == ("process" if workers else "in-process")

        # Write to each board, then read every one back: byte-identical,
        # and no board got another's data.
        base = BASE + workers * 4 * MIB
        written = {b: rng.randbytes(300_000 + 1001 * b) for b in range(3)}
        for b, data in written.items():
            machine.write(b, 1, 0, base + 3, data)
        for b, data in written.items():
            assert machine.read(b, 1, 0, base + 3, len(data)) == data
            assert machine.board(b).read(1, 0, base + 3, 1000) == data[:1000]

        for b in range(3):
            info = machine.version(b)
            assert (info.name, info.hardware, info.x, info.y) == (
                "SC&MP",
                "Virtual",
                0,
                0,
            )
            other = machine.version(b, 1, 1, 3)
            assert (other.name, other.x, other.y, other.p) == ("SARK", 1, 1, 3)

        for b in range(3):
            word = 0xDEAD_0000 + b
            machine.fill(b, 0, 1, base, word, 1024)
            assert machine.read(b, 0, 1, base, 1024) == struct.pack("<I", word) * 256

        # A mixed batch across boards: outcomes in the order given.
        entries: list[tuple[int, Job]] = []
        for index in range(60):
            b = index % 3
            key = ("mix", index)
            job: Job
            if index % 4 == 0:
                job = SCPJob(key, GetVersion(1, 0, index % 18))
            elif index % 4 == 1:
                offset = rng.randrange(200_000)
                job = ReadJob(key, 1, 0, 0, base + 3 + offset, 777)
            elif index % 4 == 2:
                job = WriteJob(key, 1, 1, 0, base + index * 2048, rng.randbytes(1500))
            else:
                job = SCPJob(key, ReadMemory((0, 1, 0), base, 64))
            entries.append((b, job))
        outcomes = machine.submit(entries)
        assert [o.key for o in outcomes] == [job.key for _, job in entries]
        for outcome, (b, job) in zip(outcomes, entries, strict=True):
            assert outcome.ok, outcome.error
            if isinstance(job, ReadJob):
                at = job.address - base - 3
                assert bytes(outcome.value) == written[b][at : at + 777]
            elif isinstance(job, WriteJob):
                assert outcome.value is None
                assert machine.read(b, 1, 1, job.address, len(job.data)) == job.data
            elif isinstance(job.request, GetVersion):
                info = version_of(outcome, job.request)
                assert (info.x, info.y, info.p) == (
                    1,
                    0,
                    job.request.sdp_header.destination_cpu,
                )
            else:
                response = job.request.get_scp_response()
                response.read_bytestring(outcome.value, 2)
                assert response.payload == struct.pack("<I", 0xDEAD_0000 + b) * 16

        stats = machine.stats()
        assert list(stats) == [0, 1, 2]
        for b, board in enumerate(boards):
            entry = stats[b]
            assert isinstance(entry, ConnectionStats), entry
            assert entry.remote == board.address_text
            # Each request sent once and completed once; what else was sent
            # was resent (a busy machine holds replies past the RTO floor).
            assert entry.sent > 2000
            assert entry.completed == entry.sent - entry.resent
            assert entry.failed == 0

        with pytest.raises(InvalidArgumentError):
            machine.version(7)
        with pytest.raises(InvalidArgumentError):
            machine.submit(
                [
                    (0, SCPJob("a", GetVersion(0, 0, 0))),
                    ("nope", SCPJob("b", GetVersion(0, 0, 0))),
                ]
            )

        pids = machine.worker_pids
        if workers:
            assert len(pids) == 2
            assert None not in pids and len(set(pids)) == 2
            assert os.getpid() not in pids
            for pid in pids:
                assert pid is not None
                os.kill(pid, 0)  # alive (raises if not)
            assert set(worker_processes()) >= set(pids)  # our children
            supervision = machine.supervision()
            assert supervision is not None and supervision.restarts == 0
        else:
            assert pids == []
            assert machine.supervision() is None
            assert worker_processes() == {}
    assert machine.closed
    with pytest.raises(ShutDown):
        machine.version(0)
    if workers:
        for pid in pids:
            assert pid is not None and not process_exists(pid)


@pytest.mark.timeout(30)
def test_boards_named_by_a_mapping(boards: list[VirtualBoard]) -> None:
    named: dict[Hashable, VirtualBoard] = {"left": boards[0], "right": boards[1]}
    with Machine(named, workers=2) as machine:
        assert machine.boards == ["left", "right"]
        machine.write("left", 0, 0, BASE, b"L" * 600)
        machine.write("right", 0, 0, BASE, b"R" * 600)
        assert machine.read("left", 0, 0, BASE, 600) == b"L" * 600
        assert machine.read("right", 0, 0, BASE, 600) == b"R" * 600
        assert set(machine.stats()) == {"left", "right"}


# -- live traffic to a listener --------------------------------------------------------


class Heard:
    """Counters of the SDP messages a callback heard, in order."""

    def __init__(self) -> None:
        self.counters: list[int] = []
        self._ready = threading.Condition()

    def __call__(self, message: Any) -> None:
        with self._ready:
            self.counters.append(COUNTER.unpack_from(message.payload)[0])
            self._ready.notify_all()

    def wait_for(self, count: int, limit: float = 10.0) -> None:
        with self._ready:
            assert self._ready.wait_for(lambda: len(self.counters) >= count, limit), (
                f"heard {len(self.counters)} of {count}"
            )

    def __len__(self) -> int:
        with self._ready:
            return len(self.counters)


@pytest.mark.timeout(40)
def test_listen_streams_in_order_and_survives_a_worker_kill() -> None:
    with VirtualBoard(2, 2, traffic=TagTraffic(400.0)) as board:
        machine = Machine([board.address], workers=1)
        try:
            # Once the worker is up (see the next test for why it matters).
            machine.version(0)
            heard = Heard()
            handle = machine.listen(0, heard)
            host, port = handle.address
            assert port > 0
            machine.board(0).call(IPTagSet(0, 0, "127.0.0.1", port, tag=1, strip=False))
            heard.wait_for(60)
            before = list(heard.counters)
            assert before == list(range(before[0], before[0] + len(before)))

            (old,) = machine.worker_pids
            assert old is not None
            os.kill(old, signal.SIGKILL)
            assert machine.version(0).x == 0  # serving again: a new worker
            pid = new_pid(machine, 0, old)
            assert not process_exists(old)
            after_restart = len(heard)
            heard.wait_for(after_restart + 60)

            counters = list(heard.counters)
            # Every message once, in the order the board sent them; what
            # was sent while no worker listened is lost (UDP), not reordered.
            assert counters == sorted(set(counters))
            assert counters[: len(before)] == before
            # The new worker listens on the same port: heard after it came.
            assert counters[-1] > before[-1] + 60
            assert machine.worker_pids == [pid]
            handle.close()
        finally:
            machine.close()


@pytest.mark.timeout(40)
def test_listen_right_after_start_survives_a_worker_kill() -> None:
    holder: list[Machine] = []

    def link_after_listen(spec: GroupSpec) -> GroupLink:
        # Hold the worker's start until listen() has asked (what a slow
        # spawn does by chance when listen() follows Machine() at once).
        wait_until(
            lambda: bool(holder and holder[0]._groups[0].book.listeners),
            "listen() called",
        )
        return ProcessLink(spec)

    with VirtualBoard(2, 2, traffic=TagTraffic(400.0)) as board:
        machine = Machine([board.address], workers=1, start_link=link_after_listen)
        holder.append(machine)
        try:
            heard = Heard()
            handle = machine.listen(0, heard)
            machine.board(0).call(IPTagSet(0, 0, "127.0.0.1", handle.address[1], tag=1))
            heard.wait_for(40)
            (old,) = machine.worker_pids
            assert old is not None
            os.kill(old, signal.SIGKILL)
            machine.version(0)
            new_pid(machine, 0, old)
            after_restart = len(heard)
            heard.wait_for(after_restart + 40, limit=2)
            ((_, book_listen),) = [
                (k, v[0]) for k, v in machine._groups[0].book.listeners.items()
            ]
            assert book_listen.local_port == handle.address[1]
            handle.close()
        finally:
            machine.close()


@pytest.mark.timeout(30)
def test_listen_in_process(boards: list[VirtualBoard]) -> None:
    with (
        VirtualBoard(2, 2, traffic=TagTraffic(400.0)) as board,
        Machine([board.address], workers=0) as machine,
    ):
        heard = Heard()
        handle = machine.listen(0, heard, local_host="127.0.0.1")
        assert handle.address[0] == "127.0.0.1"
        machine.board(0).call(IPTagSet(0, 0, "127.0.0.1", handle.address[1], tag=2))
        heard.wait_for(40)
        counters = list(heard.counters)
        assert counters == list(range(counters[0], counters[0] + len(counters)))
        with pytest.raises(InvalidArgumentError):
            machine.listen(0, heard, kind="carrier pigeon")


# -- bad input at the boundary -------------------------------------------------------


@pytest.mark.timeout(30)
def test_bad_input_is_refused_and_the_worker_keeps_serving(
    boards: list[VirtualBoard],
) -> None:
    with machine_of(boards, workers=2) as machine:
        pids = machine.worker_pids
        with pytest.raises(InvalidArgumentError, match="cannot cross"):
            machine.board(0).call(VersionWithHook())
        with pytest.raises(InvalidArgumentError, match="cannot cross"):
            machine.submit(
                [
                    (0, WriteJob("w", 0, 0, 0, BASE + 8192, b"not written")),
                    (0, SCPJob("bad", VersionWithHook())),
                ]
            )
        with pytest.raises(InvalidArgumentError):
            machine.version("no such board")
        with pytest.raises(InvalidArgumentError):
            machine.read(3, 0, 0, BASE, 10)

        # A board the parent knows but the group does not (as if the
        # parent's table and the worker's disagreed): the worker answers
        # with an InvalidArgumentError that crosses back.
        group = machine._groups[0]
        sink = CountingSink()
        group.book.put(
            [
                ("ghost", SCPJob("ghost", GetVersion(0, 0, 0))),
                (0, SCPJob("real", GetVersion(0, 0, 0))),
            ],
            sink,
        )
        group.tell(Forward())
        ghost, real = sink.wait_for(["ghost", "real"], 10)
        assert isinstance(ghost.error, InvalidArgumentError)
        assert "ghost" in str(ghost.error)
        assert real.ok

        # Still serving, by the same workers, and the refused write never ran.
        assert machine.version(0).x == 0
        assert machine.read(0, 0, 0, BASE + 8192, 11) != b"not written"
        assert machine.version(1).x == 0
        assert machine.worker_pids == pids
        supervision = machine.supervision()
        assert supervision is not None and supervision.restarts == 0


@pytest.mark.timeout(30)
def test_a_refused_batch_across_groups_sends_nothing(
    boards: list[VirtualBoard],
) -> None:
    with machine_of(boards, workers=2) as machine:
        marker = b"must never be written"
        sink = CountingSink()
        with pytest.raises(InvalidArgumentError):
            machine.post(
                [
                    (0, WriteJob("good", 0, 0, 0, BASE + 12288, marker)),
                    (1, SCPJob("bad", VersionWithHook())),
                ],
                sink,
            )
        machine.version(0)  # anything else for group 0 forwards its book
        assert machine.read(0, 0, 0, BASE + 12288, len(marker)) != marker
        assert sink.delivered == Counter()


# -- giving up -------------------------------------------------------------------------


@pytest.mark.timeout(40)
def test_past_the_restart_intensity_open_jobs_end_with_shutdown() -> None:
    # A slow board, so that the jobs are still open at the second kill.
    with VirtualBoard(2, 2, service_time=0.002) as board:
        machine = Machine([board.address], workers=1, max_restarts=1, period=30)
        killed: list[int] = []
        try:
            sink = CountingSink()
            jobs: list[tuple[Hashable, Job]] = [
                (0, ReadJob("big read", 0, 0, 0, BASE, 2 * MIB))
            ]
            jobs += [(0, SCPJob(("v", i), GetVersion(0, 0, 0))) for i in range(20)]
            machine.post(jobs, sink)
            received = board.stats.received
            wait_until(
                lambda: board.stats.received > received + 50, "the read under way"
            )
            (first,) = machine.worker_pids
            assert first is not None
            os.kill(first, signal.SIGKILL)
            killed.append(first)
            second = new_pid(machine, 0, first)  # restart 1: within bounds
            os.kill(second, signal.SIGKILL)  # restart 2 within 30 s: too many
            killed.append(second)

            keys = [job.key for _, job in jobs]
            outcomes = sink.wait_for(keys, 20)
            # The versions go ahead of the read's pieces, so they may have
            # been answered; the read cannot have been.
            assert isinstance(outcomes[0].error, ShutDown), outcomes[0]
            assert all(o.ok or isinstance(o.error, ShutDown) for o in outcomes[1:]), (
                outcomes
            )
            wait_until(lambda: machine.closed, "the machine closed")
            with pytest.raises(ShutDown):
                machine.version(0)
            with pytest.raises(ShutDown):
                machine.submit([(0, SCPJob("late", GetVersion(0, 0, 0)))])
            sink.check_exactly_once(Counter(keys))
        finally:
            machine.close()
        for pid in killed:
            assert not process_exists(pid)
        assert worker_processes() == {}


# -- nothing leaks ------------------------------------------------------------------


def actor_threads() -> list[threading.Thread]:
    return [
        thread
        for thread in threading.enumerate()
        if thread is not threading.main_thread()
    ]


@pytest.mark.timeout(60)
def test_ten_machines_leave_nothing_behind(boards: list[VirtualBoard]) -> None:
    # The first use starts multiprocessing's resource tracker, which stays:
    # a first machine, then the baseline.
    with machine_of(boards, workers=2) as machine:
        machine.version(0)
    threads = set(threading.enumerate())
    fds = open_fds()
    shm = shm_entries()
    processes = children()
    actors_before = set(pykka.ActorRegistry.get_all())

    pids: list[int] = []
    for round_ in range(10):
        with machine_of(boards[:2], workers=2) as machine:
            assert machine.read(round_ % 2, 0, 0, BASE, 256)
            pids += live_pids(machine)
    assert len(set(pids)) == 20

    for thread in set(threading.enumerate()) - threads:
        thread.join(5)
    assert [t.name for t in set(threading.enumerate()) - threads] == []
    assert set(pykka.ActorRegistry.get_all()) == actors_before
    assert multiprocessing.active_children() == []
    assert children() == processes
    assert not any(process_exists(pid) for pid in pids)
    assert open_fds() == fds, "file descriptors leaked"
    assert shm_entries() == shm


@pytest.mark.timeout(30)
def test_open_jobs_at_close_end_with_shutdown(boards: list[VirtualBoard]) -> None:
    with VirtualBoard(2, 2, service_time=0.002) as slow:
        machine = Machine([slow.address], workers=1)
        sink = CountingSink()
        keys = ["read"] + [("v", i) for i in range(10)]
        machine.post(
            [(0, ReadJob("read", 0, 0, 0, BASE, MIB))]
            + [(0, SCPJob(key, GetVersion(0, 0, 0))) for key in keys[1:]],
            sink,
        )
        received = slow.stats.received
        wait_until(lambda: slow.stats.received > received + 20, "the read under way")
        (pid,) = machine.worker_pids
        machine.close()
        outcomes = sink.wait_for(keys, 10)
        assert isinstance(outcomes[0].error, ShutDown)
        assert all(
            o.ok or isinstance(o.error, (ShutDown, RequestError)) for o in outcomes
        )
        sink.check_exactly_once(Counter(keys))
        assert pid is not None and not process_exists(pid)


@pytest.mark.timeout(20)
def test_wrong_options_are_refused_before_anything_starts(
    boards: list[VirtualBoard],
) -> None:
    before = worker_processes()
    with pytest.raises(InvalidArgumentError):
        Machine([boards[0].address], workers=-1)
    with pytest.raises(InvalidArgumentError):
        Machine([boards[0].address], workers=1, placement="thread")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        Machine([], workers=1)
    with pytest.raises(InvalidArgumentError):
        Machine([(1, 2)], workers=1)
    assert worker_processes() == before


# -- logs ----------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_a_workers_log_records_reach_the_parents_handlers(
    boards: list[VirtualBoard],
) -> None:
    """What a group logs in its worker is handled by the parent's loggers,
    marked with the worker it came from; below the parent's level nothing
    crosses."""
    seen: list[logging.LogRecord] = []
    started = threading.Event()

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)
            if record.getMessage() == "group.started":
                started.set()

    logger = logging.getLogger("actors")
    handler, level = Catch(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with Machine(boards[:1], workers=1) as machine:
            machine.version(0)
            assert started.wait(30)
            (pid,) = machine.worker_pids
        record = next(r for r in seen if r.getMessage() == "group.started")
        assert record.group_worker == f"pid {pid}"  # type: ignore[attr-defined]
        assert record.pid == pid  # type: ignore[attr-defined]
        assert record.process != os.getpid()
        assert all(r.levelno >= logging.INFO for r in seen)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.mark.timeout(60)
def test_a_board_name_that_does_not_resolve_is_an_error_at_once() -> None:
    with pytest.raises(TransportError, match="cannot resolve host"):
        Machine(["no-such-host.invalid"], workers=1)


@pytest.mark.timeout(60)
def test_a_group_that_cannot_start_says_why() -> None:
    """The worker tells the parent why its group failed before it exits,
    instead of just closing the pipe."""
    spec = GroupSpec("bad", (BoardSpec(0, "no-such-host.invalid", 1),))
    with pytest.raises(GroupLost, match="cannot resolve host"):
        ProcessLink(spec)


@pytest.mark.timeout(60)
def test_jobs_for_a_group_that_cannot_start_end_saying_why(
    boards: list[VirtualBoard],
) -> None:
    """A worker that cannot start its group (here: never ready in time)
    ends the group's open jobs with why, at once, instead of leaving them
    waiting through restart after restart; no raw pykka.Timeout either."""
    starts: list[str] = []

    def never_ready(spec: GroupSpec) -> GroupLink:
        starts.append(spec.name)
        raise GroupLost(f"worker {spec.name} did not start within 30 s")

    machine = Machine(boards[:1], workers=1, start_link=never_ready)
    try:
        with pytest.raises(GroupLost, match="could not start.*worker .* did not start"):
            machine.read(0, 0, 0, BASE, 256)
        assert starts  # it was tried, and the error says so
        assert machine.worker_pids == [None]
    finally:
        machine.close()


@pytest.mark.timeout(60)
def test_a_group_that_never_starts_is_given_up_not_restarted_for_ever(
    boards: list[VirtualBoard],
) -> None:
    """Each start may take a whole start timeout (30 s), so the restart
    intensity (here: far from reached) would restart a group that cannot
    start for ever; after ``start_attempts`` failed starts in a row it is
    given up instead: its jobs, and any sent later, end at once saying so,
    while the machine's other groups carry on."""
    starts: list[str] = []

    def first_never_ready(spec: GroupSpec) -> GroupLink:
        if spec.name == "group-0":
            starts.append(spec.name)
            raise GroupLost(f"worker {spec.name} did not start within 30 s")
        return ProcessLink(spec)

    machine = Machine(
        boards[:2],
        workers=2,
        start_link=first_never_ready,
        start_attempts=3,
        max_restarts=1000,
    )
    try:
        given_up = "could not start 3 times in a row, and was given up"
        errors: list[str] = []
        while not errors or given_up not in errors[-1]:
            with pytest.raises(GroupLost) as caught:
                machine.read(0, 0, 0, BASE, 256)
            errors.append(str(caught.value))
        assert len(starts) == 3  # and never again:
        for _ in range(3):
            with pytest.raises(GroupLost, match=given_up):
                machine.read(0, 0, 0, BASE, 256)
        assert len(starts) == 3
        assert given_up in str(machine.stats()[0])
        supervision = machine.supervision()
        assert supervision is not None and not supervision.gave_up
        assert machine.worker_pids[0] is None
        # The other group serves, and what it writes is there.
        machine.write(1, 0, 0, BASE, b"\x5a" * 300)
        assert machine.read(1, 0, 0, BASE, 300) == b"\x5a" * 300
        assert boards[1].monitor.memory.read(0, BASE, 300) == b"\x5a" * 300
    finally:
        machine.close()


@pytest.mark.timeout(60)
def test_wrong_arguments_are_refused_at_once(boards: list[VirtualBoard]) -> None:
    board = boards[0]
    for bad in ([], [("127.0.0.1",)], [("127.0.0.1", "port")], [42]):
        with pytest.raises(InvalidArgumentError):
            Machine(bad, workers=1)
    for workers in (-1, True, 1.5):
        with pytest.raises(InvalidArgumentError):
            Machine([board], workers=workers)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        Machine([board], workers=1, placement="moon")  # type: ignore[arg-type]
    # What cannot cross to a worker (an endpoint holds a socket) is refused;
    # a limiter stays here, and must be one.
    with pytest.raises(InvalidArgumentError, match="plain data"):
        Machine([board], workers=1, endpoint=object())
    with pytest.raises(InvalidArgumentError, match="RateLimiterActor"):
        Machine([board], workers=1, limiter=object())
    assert worker_processes() == {}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("workers", [2, 0])
def test_one_rate_limiter_paces_the_boards_of_every_worker(
    boards: list[VirtualBoard], workers: int
) -> None:
    """A RateLimiterActor here paces the connections in every worker: all
    boards together send no more datagrams than its bucket gives out (its
    capacity, plus its rate over the transfer), and every one of them was
    granted by it."""
    capacity, rate = 64, 2000.0
    limiter = RateLimiterActor.start(capacity, rate)
    data = bytes(range(256)) * 256  # 64 KiB: 256 datagrams a board
    try:
        with machine_of(boards[:2], workers=workers, limiter=limiter) as machine:
            started = time.monotonic()
            outcomes = machine.submit(
                [(board, WriteJob(board, 0, 1, 1, BASE, data)) for board in (0, 1)]
            )
            took = time.monotonic() - started
            assert [outcome.error for outcome in outcomes] == [None, None]
            for board in (0, 1):
                assert machine.read(board, 0, 1, BASE, len(data)) == data
            stats = machine.stats()
        sent = 0
        for board_stats in stats.values():
            assert isinstance(board_stats, ConnectionStats), board_stats
            sent += board_stats.sent
        counters = cast(LimiterCounters, limiter.ask(LimiterStats(), timeout=5))
        assert sent >= 2 * 2 * 256  # the writes and the read-backs
        assert counters.tokens_granted >= sent
        assert sent <= capacity + rate * (time.monotonic() - started)
        # Unlimited, this takes a few ms; the bucket makes it take long
        # enough for its refill to cover what its capacity did not.
        assert took >= (2 * 256 - capacity - 2 * 32) / rate
    finally:
        limiter.stop()


class GarbledOnce:
    """A ProcessLink whose first batch after the worker is ready is
    garbage, as if the pipe had been corrupted."""

    def __init__(self, spec: GroupSpec) -> None:
        self.link = ProcessLink(spec)
        self.where, self.pid = self.link.where, self.link.pid
        self.garbled = False

    def send(self, blob: bytes) -> None:
        self.link.send(blob)

    def receive(self, timeout: float) -> bytes | None:
        if not self.garbled:
            self.garbled = True
            return b"not a pickle"
        return self.link.receive(timeout)

    def abandon(self) -> None:
        self.link.abandon()

    def close(self, grace: float) -> None:
        self.link.close(grace)


@pytest.mark.timeout(60)
def test_an_unreadable_batch_from_a_worker_restarts_it(
    boards: list[VirtualBoard],
) -> None:
    made: list[GroupLink] = []

    def start_link(spec: GroupSpec) -> GroupLink:
        made.append(GarbledOnce(spec) if not made else ProcessLink(spec))
        return made[-1]

    with Machine(boards[:1], workers=1, start_link=start_link) as machine:
        assert machine.version(0).name == "SC&MP"
        supervision = machine.supervision()
        assert supervision is not None and supervision.restarts == 1
        assert len(made) == 2


@pytest.mark.timeout(60)
def test_a_dead_board_is_a_timeout_in_the_caller_and_the_rest_serve(
    boards: list[VirtualBoard],
) -> None:
    """A board that never answers: its request ends with RequestTimeout,
    which crosses back from the worker; the other board in the same group
    keeps serving."""
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        with Machine(
            {"dead": silent.getsockname(), "alive": boards[0]},
            workers=1,
            timeout=0.05,
            retries=2,
        ) as machine:
            with pytest.raises(RequestTimeout):
                machine.version("dead")
            assert machine.version("alive").name == "SC&MP"
    finally:
        silent.close()
