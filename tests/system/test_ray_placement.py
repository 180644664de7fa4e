"""Board groups placed as Ray actors (``Machine(placement="ray")``).

A local Ray instance (2 CPUs, no dashboard) is started once for the
module; the boards are VirtualBoards on 127.0.0.1. Each group's actor is
named ``spinnactors-<group>-<suffix>`` in the driver's namespace, which is
how the chaos test finds the one to kill.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any, cast

import pytest

from actors.placement.machine import Machine
from actors.placement.ray_link import RayLink
from actors.protocol.jobs import Outcome, ReadJob, WriteJob
from messages.errors import InvalidArgumentError
from transport import VirtualBoard

ray = pytest.importorskip("ray")

BASE = 0x6000_0000
MIB = 1 << 20


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    assert not ray.is_initialized(), "another test left Ray running"
    ray.init(
        num_cpus=2,
        num_gpus=0,
        include_dashboard=False,
        log_to_driver=False,
        logging_level="ERROR",
        object_store_memory=100 * MIB,
    )
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture
def boards() -> Iterator[list[VirtualBoard]]:
    started = [VirtualBoard(2, 2).start() for _ in range(2)]
    try:
        yield started
    finally:
        for board in started:
            board.stop()


def group_actors(local_ray: Any) -> dict[str, str]:
    """Live group actors: name -> state (the GCS's table, which needs no
    dashboard), and the named-actor listing must agree."""
    from ray._private import state

    alive = {
        info["Name"]: info["State"]
        for info in state.actors().values()
        if info["Name"].startswith("spinnactors-") and info["State"] != "DEAD"
    }
    named = {
        name
        for name in local_ray.util.list_named_actors()
        if name.startswith("spinnactors-")
    }
    assert named == set(alive), (named, alive)
    return alive


class CountingSink:
    """Counts every outcome by key, with when each batch came."""

    def __init__(self, expected: int, at: int) -> None:
        self.expected = expected
        self.delivered: Counter[object] = Counter()
        self.outcomes: dict[object, Outcome] = {}
        self.arrivals: list[tuple[float, int]] = []
        self.reached = threading.Event()  # ``at`` outcomes in
        self.done = threading.Event()  # all of them
        self._at = at
        self._lock = threading.Lock()

    def put(self, outcomes: list[Outcome], /) -> None:
        with self._lock:
            self.arrivals.append((time.monotonic(), len(outcomes)))
            for outcome in outcomes:
                self.delivered[outcome.key] += 1
                self.outcomes[outcome.key] = outcome
            if len(self.outcomes) >= self._at:
                self.reached.set()
            if len(self.outcomes) >= self.expected:
                self.done.set()


@pytest.mark.timeout(60)
def test_one_mib_each_way_on_two_boards_version_and_stats(
    local_ray: Any, boards: list[VirtualBoard]
) -> None:
    data = [os.urandom(MIB), os.urandom(MIB)]
    with Machine(boards, workers=2, placement="ray") as machine:
        assert machine.placement == "ray"
        pids = machine.worker_pids
        assert len(set(pids)) == 2 and os.getpid() not in pids
        assert len(group_actors(local_ray)) == 2
        for board in (0, 1):
            machine.write(board, 1, 1, BASE, data[board])
        for board in (0, 1):
            assert machine.read(board, 1, 1, BASE, MIB) == data[board]
        version = machine.version(1, 1, 0)
        assert version.version_string and (version.x, version.y) == (1, 0)
        stats = machine.stats()
        assert set(stats) == {0, 1}
        for board in (0, 1):
            board_stats = stats[board]
            assert not isinstance(board_stats, str), board_stats
            assert board_stats.completed >= 2 * MIB // 256
            assert board_stats.failed == 0
            assert board_stats.remote == "{}:{}".format(*boards[board].address)


@pytest.mark.timeout(60)
def test_killed_group_actor_is_restarted_and_the_transfer_completes(
    local_ray: Any,
) -> None:
    # A board with a service time (about 1 ms a request here), so the
    # transfer lasts ~2 s and the kill lands in the middle of it.
    slow = VirtualBoard(2, 2, service_time=0.0004).start()
    other = VirtualBoard(2, 2).start()
    size, chunk = MIB // 2, 1024
    data = os.urandom(size)
    jobs = [
        WriteJob(("w", offset), 0, 0, 0, BASE + offset, data[offset : offset + chunk])
        for offset in range(0, size, chunk)
    ]
    sink = CountingSink(len(jobs), at=len(jobs) // 4)
    try:
        with Machine([slow, other], workers=2, placement="ray") as machine:
            before = machine.worker_pids
            machine.post([(0, job) for job in jobs], sink)
            assert sink.reached.wait(20), "the transfer did not start"
            [name] = [
                name
                for name in group_actors(local_ray)
                if name.startswith("spinnactors-group-0-")
            ]
            killed_at = time.monotonic()
            local_ray.kill(local_ray.get_actor(name), no_restart=True)
            assert sink.done.wait(30), f"{len(sink.outcomes)} of {len(jobs)} outcomes"
            # Outcomes that came after the kill came from the new actor
            # (the old one's last batch is in within a few ms).
            after = [when for when, _ in sink.arrivals if when > killed_at + 0.05]
            assert after, "the kill came after the transfer had ended"
            resumed = after[0] - killed_at
            print(
                f"\nserving again {resumed:.2f} s after the kill; "
                f"transfer done {sink.arrivals[-1][0] - killed_at:.2f} s "
                f"after it"
            )
            assert resumed < 10
            assert all(count == 1 for count in sink.delivered.values())
            assert set(sink.delivered) == {job.key for job in jobs}
            failed = [o for o in sink.outcomes.values() if not o.ok]
            assert not failed, failed[:3]
            assert machine.read(0, 0, 0, BASE, size) == data
            after_pids = machine.worker_pids
            assert after_pids[0] != before[0] and after_pids[1] == before[1]
            supervision = machine.supervision()
            assert supervision is not None
            assert name not in group_actors(local_ray)
        # Nothing more came once the machine closed.
        assert sum(sink.delivered.values()) == len(jobs)
    finally:
        slow.stop()
        other.stop()


@pytest.mark.timeout(60)
def test_unknown_board_is_a_clear_error_and_the_group_keeps_serving(
    local_ray: Any, boards: list[VirtualBoard]
) -> None:
    with Machine(
        {"a": boards[0], "b": boards[1]}, workers=2, placement="ray"
    ) as machine:
        pids = machine.worker_pids
        with pytest.raises(InvalidArgumentError, match="'nope'"):
            machine.read("nope", 0, 0, BASE, 16)
        # Past the parent's check: the group itself refuses a board it
        # does not serve, with one outcome, and carries on.
        group = machine._group_of["a"]
        sink = CountingSink(1, at=1)
        job = ReadJob("stray", 0, 0, 0, BASE, 16)
        group.book.put([("b", job)], sink)
        from actors.placement.parent import Forward

        assert group.tell(Forward())
        assert sink.done.wait(10)
        [outcome] = sink.outcomes.values()
        assert isinstance(outcome.error, InvalidArgumentError)
        assert "is not in group 'group-0'" in str(outcome.error)
        machine.write("a", 0, 0, BASE, b"still serving")
        assert machine.read("a", 0, 0, BASE, 13) == b"still serving"
        assert machine.worker_pids == pids


@pytest.mark.timeout(60)
def test_closing_leaves_no_ray_actors_and_no_threads(
    local_ray: Any, boards: list[VirtualBoard]
) -> None:
    threads = set(threading.enumerate())
    machine = Machine(boards, workers=2, placement="ray")
    machine.write(0, 0, 0, BASE, b"x" * 1000)
    assert len(group_actors(local_ray)) == 2
    machine.close()
    assert machine.closed
    assert group_actors(local_ray) == {}
    left = [
        thread
        for thread in threading.enumerate()
        if thread not in threads and thread.is_alive()
    ]
    assert not left, left


@pytest.mark.timeout(60)
def test_a_group_that_cannot_start_is_a_clear_error(local_ray: Any) -> None:
    from actors.placement.links import GroupLost
    from actors.placement.wire import BoardSpec, GroupSpec

    spec = GroupSpec("bad", (BoardSpec(0, "no-such-host.invalid", 1),))
    with pytest.raises(GroupLost, match="crashed"):
        RayLink(spec, start_timeout=20)
    assert group_actors(local_ray) == {}


@pytest.mark.timeout(60)
def test_a_rate_limiter_here_paces_groups_on_ray(
    local_ray: Any, boards: list[VirtualBoard]
) -> None:
    """Leases cross to Ray actors as they do to worker processes."""
    from actors.ratelimit.limiter import LimiterCounters, LimiterStats, RateLimiterActor

    limiter = RateLimiterActor.start(64, 2000.0)
    data = os.urandom(64 * 1024)
    try:
        with Machine(boards, workers=2, placement="ray", limiter=limiter) as machine:
            started = time.monotonic()
            for board in (0, 1):
                machine.write(board, 1, 1, BASE, data)
            took = time.monotonic() - started
            assert machine.read(1, 1, 1, BASE, len(data)) == data
        counters = cast(LimiterCounters, limiter.ask(LimiterStats(), timeout=5))
        assert counters.tokens_granted >= 3 * 256
        assert took >= (2 * 256 - 64 - 2 * 32) / 2000.0
    finally:
        limiter.stop()


@pytest.mark.timeout(60)
def test_an_abandoned_group_is_ended_and_its_link_says_so(
    local_ray: Any, boards: list[VirtualBoard]
) -> None:
    """What the heartbeat deadline does to a hung group: abandon() ends
    its actor at once, from the reader's thread; the link then reports it
    lost, and close() still frees it."""
    from actors.placement.links import GroupLost
    from actors.placement.wire import BoardSpec, GroupSpec

    spec = GroupSpec("hung", (BoardSpec(0, *boards[0].address),))
    link = RayLink(spec, start_timeout=20)
    try:
        assert len(group_actors(local_ray)) == 1
        link.abandon()
        with pytest.raises(GroupLost):  # noqa: PT012 - receive until it is lost
            while True:
                link.receive(1.0)
    finally:
        link.close(0)
    assert group_actors(local_ray) == {}


@pytest.mark.timeout(60)
def test_a_group_that_finds_no_room_times_out_and_is_removed(local_ray: Any) -> None:
    from actors.placement.links import GroupLost
    from actors.placement.wire import BoardSpec, GroupSpec

    spec = GroupSpec("big", (BoardSpec(0, "127.0.0.1", 1),))
    with pytest.raises(GroupLost, match="did not start within"):
        RayLink(spec, actor_options={"num_cpus": 3}, start_timeout=0.5)
    assert group_actors(local_ray) == {}


@pytest.mark.timeout(30)
def test_the_actor_hands_batches_to_the_group_in_the_order_sent(
    boards: list[VirtualBoard],
) -> None:
    """RayGroup itself, in this process (Ray may run pushes out of order)."""
    from actors.placement.ray_link import RayGroup
    from actors.placement.wire import (
        BoardSpec,
        GetGroupStats,
        GroupSpec,
        GroupStats,
        Ready,
        Stop,
        decode,
        encode,
    )

    spec = GroupSpec("here", (BoardSpec(0, *boards[0].address),))
    group = RayGroup(spec)
    for seq in (2, 1, 0):
        group.push(seq, encode([GetGroupStats(seq)]))
    received: list[Any] = []
    tickets: list[int] = []
    while True:  # until the group has ended, and all it sent is taken
        batches = group.take(5.0)
        if batches is None:
            break
        received += [message for batch in batches for message in decode(batch)]
        if len(tickets) < 3:
            tickets = [m.ticket for m in received if isinstance(m, GroupStats)]
            if len(tickets) == 3:
                group.push(3, encode([Stop()]))
    assert isinstance(received[0], Ready)
    assert tickets == [0, 1, 2]
    assert group.ended(5.0)
