"""A supervised connection killed again and again loses nothing.

The board (UDP on 127.0.0.1) drops, duplicates and reorders; a killer
thread crashes the ConnectionActor at seeded random moments while a large
write, a batch of mixed SCP jobs and the read-back run. Every job is
counted as its outcome is delivered (the client's sinks are wrapped), so a
job answered twice or never is seen, not just a wrong byte.
"""

from __future__ import annotations

import os
import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, cast

import pykka
import pytest

import actors
from actors.board.client import Client
from actors.errors import RequestError, ShutDown
from actors.protocol.jobs import Job, Outcome, OutcomeSink, SCPJob
from actors.supervision.child import Crash
from messages.scp import GetVersion, ReadMemory, SDRAMAlloc, WriteMemory
from transport import FaultPlan, VirtualBoard

BASE = 0x6000_0000
MIB = 1 << 20
Ref = pykka.ActorRef[Any]


class CountedSinks:
    """Wraps every sink a Client hands its connection, counting each
    outcome delivered by job key. (Client.submit keeps one outcome per key
    and _one the first, so a duplicate would otherwise go unseen.)"""

    def __init__(
        self,
        client: Client,
        on_submit: Callable[[Sequence[Job]], None] | None = None,
    ) -> None:
        self.submitted: Counter[object] = Counter()
        self.delivered: Counter[object] = Counter()
        self.outcomes: dict[object, Outcome] = {}
        self._lock = threading.Lock()
        original = client.post
        counted = self

        class Counting:
            def __init__(self, sink: Any) -> None:
                self.sink = sink

            def put(self, outcomes: list[Outcome]) -> None:
                with counted._lock:
                    for outcome in outcomes:
                        counted.delivered[outcome.key] += 1
                        counted.outcomes[outcome.key] = outcome
                self.sink.put(outcomes)

        def submit(jobs: Sequence[Job], sink: OutcomeSink) -> None:
            with self._lock:
                for job in jobs:
                    self.submitted[job.key] += 1
            original(jobs, cast(Any, Counting(sink)))
            if on_submit is not None:
                on_submit(jobs)

        client.post = submit  # type: ignore[method-assign]

    def check_exactly_once(self) -> None:
        with self._lock:
            assert all(n == 1 for n in self.submitted.values())
            twice = {k: n for k, n in self.delivered.items() if n != 1}
            assert twice == {}, f"answered more than once: {twice}"
            never = set(self.submitted) - set(self.delivered)
            assert never == set(), f"never answered: {never}"
            assert set(self.delivered) == set(self.submitted)


def new_incarnation(client: Client, last: Ref | None, limit: float = 10.0) -> Ref:
    """The running connection actor, once it is not ``last``: a restart
    sends no event, so this polls (each call asks the supervisor)."""
    deadline = time.monotonic() + limit
    while True:
        ref = client.connection_actor
        if (
            ref is not None
            and ref.is_alive()
            and (last is None or ref.actor_urn != last.actor_urn)
        ):
            return ref
        if time.monotonic() > deadline:
            raise AssertionError("the connection actor did not come back")
        time.sleep(0.001)


def wait_closed(client: Client, limit: float = 10.0) -> None:
    """Until the supervisor that gave up has ended: its children end the
    open jobs (ShutDown) before it does, and it sends no event."""
    deadline = time.monotonic() + limit
    while not client.closed:
        assert time.monotonic() < deadline, "the client never closed"
        time.sleep(0.001)


def kill(client: Client, last: Ref | None) -> Ref:
    """Crash the next incarnation; the one killed."""
    while True:
        ref = new_incarnation(client, last)
        try:
            ref.tell(Crash())
        except pykka.ActorDeadError:
            continue  # died between the look and the tell: look again
        return ref


def actor_threads() -> list[threading.Thread]:
    return [
        t
        for t in threading.enumerate()
        if t.name.startswith(("ConnectionActor", "Supervisor", "client-", "Timer"))
    ]


def assert_nothing_left() -> None:
    for thread in actor_threads():
        thread.join(timeout=10)
    assert [t.name for t in actor_threads()] == []
    assert pykka.ActorRegistry.get_all() == []


@pytest.fixture(autouse=True)
def stop_actors() -> Iterator[None]:
    try:
        yield
    finally:
        pykka.ActorRegistry.stop_all(timeout=10)


@pytest.fixture
def lossy_board() -> Iterator[VirtualBoard]:
    faults = FaultPlan(drop=0.05, duplicate=0.05, reorder=0.05, seed=20260)
    with VirtualBoard(4, 4, faults=faults) as board:
        yield board


def mixed_jobs(
    n: int, data: bytes, rng: random.Random
) -> tuple[list[SCPJob], dict[int, bytes]]:
    """Versions of random cores, reads from the region ``data`` was written
    to on chip (0, 0), and writes to chip (2, 3) (what each write put at
    which offset is returned)."""
    jobs: list[SCPJob] = []
    written: dict[int, bytes] = {}
    for index in range(n):
        key = ("mix", index)
        kind = index % 3
        if kind == 0:
            request: Any = GetVersion(
                rng.randrange(4), rng.randrange(4), rng.randrange(18)
            )
        elif kind == 1:
            size = rng.randint(1, 256)
            offset = rng.randrange(len(data) - size)
            request = ReadMemory((0, 0, 0), BASE + offset, size)
        else:
            offset = 256 * len(written)
            payload = os.urandom(rng.randint(1, 256))
            written[offset] = payload
            request = WriteMemory((2, 3, 0), BASE + offset, payload)
        jobs.append(SCPJob(key, request))
    return jobs, written


def check_mixed(
    jobs: Sequence[SCPJob], outcomes: Sequence[Outcome], data: bytes
) -> None:
    assert [o.key for o in outcomes] == [job.key for job in jobs]
    for job, outcome in zip(jobs, outcomes, strict=True):
        assert outcome.ok, (job, outcome.error)
        request = job.request
        response = request.get_scp_response()
        response.read_bytestring(outcome.value, 2)  # raises if not RC_OK
        if isinstance(request, GetVersion):
            info = response.version_info
            coordinates = (
                request.sdp_header.destination_chip_x,
                request.sdp_header.destination_chip_y,
                request.sdp_header.destination_cpu,
            )
            assert (info.x, info.y, info.p) == coordinates
        elif isinstance(request, ReadMemory):
            assert request.argument_1 is not None
            offset = request.argument_1 - BASE
            payload = response.payload
            assert payload == data[offset : offset + len(payload)]
            assert len(payload) == request.argument_2


# -- twenty kills during a transfer and a batch -------------------------------


@pytest.mark.timeout(60)
def test_twenty_kills_lose_nothing_and_answer_nothing_twice(
    lossy_board: VirtualBoard,
) -> None:
    client = actors.connect(*lossy_board.address, max_restarts=1000, period=1)
    data = os.urandom(8 * MIB)
    jobs, written = mixed_jobs(500, data, random.Random(7))

    # The killer works through a plan, phase by phase: random pauses
    # during the write and the read-back, quick kills as soon as the batch
    # is in. Kills a phase has no time for carry over to the next.
    plan = [
        ("write", 8, (0.01, 0.15)),
        ("batch", 3, (0.0, 0.004)),
        ("read", 9, (0.01, 0.15)),
    ]
    started = {name: threading.Event() for name, _, _ in plan}
    phase = ["before"]

    def enter(name: str) -> None:
        phase[0] = name
        if name in started:
            started[name].set()

    counted = CountedSinks(
        client,
        on_submit=lambda batch: enter("batch") if len(batch) == len(jobs) else None,
    )
    killed: list[tuple[str, Ref]] = []
    killer_errors: list[BaseException] = []

    def killer() -> None:
        pauses = random.Random(11)
        last: Ref | None = None
        carry = 0
        try:
            for name, count, (shortest, longest) in plan:
                assert started[name].wait(30), f"no {name} phase"
                count, carry = count + carry, 0
                for done in range(count):
                    # Sleeping decides when to kill; it waits for nothing.
                    time.sleep(pauses.uniform(shortest, longest))
                    if phase[0] != name:
                        assert name != "read", "a kill after the traffic"
                        carry = count - done
                        break
                    last = kill(client, last)
                    killed.append((name, last))
        except BaseException as error:  # noqa: BLE001
            killer_errors.append(error)

    thread = threading.Thread(target=killer, name="killer")
    thread.start()
    begun = time.monotonic()
    extra = 0
    try:
        enter("write")
        client.write(0, 0, BASE, data)
        enter("between")
        outcomes = client.submit(jobs)
        enter("between")
        enter("read")
        back = client.read(0, 0, BASE, len(data))
        # Keep traffic going until the last kill has landed.
        while thread.is_alive():
            offset = (extra * 65536) % len(data)
            assert (
                client.read(0, 0, BASE + offset, 65536)
                == (data[offset : offset + 65536])
            )
            extra += 1
        thread.join()
        enter("after")
        assert killer_errors == []
        assert len(killed) == 20
        assert len({ref.actor_urn for _, ref in killed}) == 20
        by_phase = Counter(name for name, _ in killed)
        assert all(by_phase[name] >= 1 for name, _, _ in plan), by_phase

        assert back == data
        check_mixed(jobs, outcomes, data)
        region = client.read(2, 3, BASE, 256 * len(written))
        for offset, payload in written.items():
            assert region[offset : offset + len(payload)] == payload

        supervision = client.supervision()
        assert supervision.restarts == len(killed)
        assert not supervision.gave_up
        assert client.version().x == 0  # still serving
    finally:
        enter("after")
        thread.join(timeout=30)
        client.close()
    elapsed = time.monotonic() - begun

    counted.check_exactly_once()
    # write, read-back, 500 jobs, extra reads, region read, version
    assert sum(counted.delivered.values()) == 1 + 1 + 500 + extra + 1 + 1
    assert_nothing_left()
    assert elapsed < 45


# -- what may not be resent is not --------------------------------------------


def kill_with_allocation_in_flight(
    client: Client, pool: ThreadPoolExecutor
) -> tuple[Future[Any], Ref]:
    """Call an untagged SDRAMAlloc and crash the connection actor once it
    has been sent (the board takes 0.5 s to answer: time enough, however
    busy the machine, for the crash to come first)."""
    # No tag: the board could not recognise a second try.
    request = SDRAMAlloc(0, 0, app_id=17, size=4096)
    assert not request.may_resend
    call: Future[Any] = pool.submit(client.call, request)
    first = new_incarnation(client, None)
    deadline = time.monotonic() + 10
    while client.stats().sent < 1:  # no event for "on the wire"
        assert time.monotonic() < deadline, "never sent"
    first.tell(Crash())
    return call, first


@pytest.mark.timeout(60)
def test_allocation_in_flight_when_killed_is_not_sent_again() -> None:
    with VirtualBoard(4, 4, service_time=0.5) as board:
        client = actors.connect(*board.address, max_restarts=5, period=5)
        counted = CountedSinks(client)
        try:
            with ThreadPoolExecutor(1) as pool:
                call, first = kill_with_allocation_in_flight(client, pool)
                new_incarnation(client, first)
                # Another request: see the next test for why it is needed.
                assert client.version().x == 0
                with pytest.raises(RequestError, match="not sent again"):
                    call.result(timeout=10)
            assert client.supervision().restarts == 1
            # A tagged allocation may be resent, and is answered.
            tagged = client.call(SDRAMAlloc(0, 0, app_id=17, size=4096, tag=3))
            assert tagged.base_address != 0
        finally:
            client.close()
        counted.check_exactly_once()
        # Sent once (the crashed incarnation's), answered once, not again.
        alloc = [
            k for k, o in counted.outcomes.items() if isinstance(o.error, RequestError)
        ]
        assert len(alloc) == 1
    assert_nothing_left()


@pytest.mark.timeout(60)
def test_allocation_in_flight_alone_when_killed_is_answered_promptly() -> None:
    with VirtualBoard(4, 4, service_time=0.5) as board:
        client = actors.connect(*board.address, max_restarts=5, period=5)
        try:
            with ThreadPoolExecutor(1) as pool:
                call, first = kill_with_allocation_in_flight(client, pool)
                new_incarnation(client, first)
                try:
                    error = call.exception(timeout=5)  # buggy: TimeoutError
                finally:
                    client.close()  # flushes it, in the buggy case
            assert isinstance(error, RequestError)
            assert "not sent again" in str(error)
        finally:
            client.close()
    assert_nothing_left()


# -- giving up ----------------------------------------------------------------


@pytest.mark.timeout(60)
def test_restart_intensity_exceeded_ends_everything_with_shutdown() -> None:
    with VirtualBoard(4, 4, service_time=0.001) as board:
        # A period far longer than three kills take on a busy machine.
        client = actors.connect(*board.address, max_restarts=2, period=60)
        try:
            with ThreadPoolExecutor(1) as pool:
                # A read that takes seconds, and jobs handed over after it
                # (post() returns once they are in the book).
                read = pool.submit(client.read, 0, 0, BASE, 4 * MIB)
                first = new_incarnation(client, None)
                deadline = time.monotonic() + 10
                while client.stats().open_jobs < 1:  # no event for this
                    assert time.monotonic() < deadline, "the read never opened"
                sink: queue.SimpleQueue[list[Outcome]] = queue.SimpleQueue()
                small = [SCPJob(("v", i), GetVersion(0, 0, 0)) for i in range(20)]
                client.post([*small, SCPJob("one", GetVersion(1, 1, 0))], sink)

                last = kill(client, None)
                last = kill(client, last)
                kill(client, last)  # the third within the period: too many

                # The read cannot have ended (it takes seconds); the small
                # jobs go ahead of its pieces, so they may have been answered
                # before the kills: each ends once, answered or ShutDown.
                with pytest.raises(ShutDown):
                    read.result(timeout=20)
                outcomes: list[Outcome] = []
                while len(outcomes) < 21:
                    outcomes += sink.get(timeout=20)
                assert sorted(map(str, (o.key for o in outcomes))) == sorted(
                    map(str, [*(("v", i) for i in range(20)), "one"])
                )
                assert all(o.ok or isinstance(o.error, ShutDown) for o in outcomes)
                assert sink.empty()
            assert first is not None
            wait_closed(client)
            with pytest.raises(ShutDown):
                client.version()
            with pytest.raises(ShutDown):
                client.read(0, 0, BASE, 1024)
            with pytest.raises(ShutDown):
                client.submit([SCPJob("late", GetVersion(0, 0, 0))])
            with pytest.raises(ShutDown):
                client.supervision()
        finally:
            client.close()
    assert_nothing_left()


@pytest.mark.timeout(60)
def test_after_giving_up_every_open_job_gets_a_shutdown_outcome() -> None:
    with VirtualBoard(4, 4, service_time=0.001) as board:
        client = actors.connect(*board.address, max_restarts=0, period=5)
        sink: queue.SimpleQueue[list[Outcome]] = queue.SimpleQueue()
        try:
            jobs: list[Job] = [SCPJob(("v", i), GetVersion(0, 0, 0)) for i in range(50)]
            client.post(jobs, sink)
            first = new_incarnation(client, None)
            first.tell(Crash())  # max_restarts=0: gives up at once
            wait_closed(client)
            outcomes: list[Outcome] = []
            while len(outcomes) < len(jobs):
                outcomes += sink.get(timeout=10)  # buggy: queue.Empty
            assert Counter(o.key for o in outcomes) == Counter(job.key for job in jobs)
            assert all(o.ok or isinstance(o.error, ShutDown) for o in outcomes)
        finally:
            client.close()
