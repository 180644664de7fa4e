"""actors.aio against real parts: a VirtualBoard on 127.0.0.1 (behind a
relay where a test must decide when requests reach it), real UDP
sockets, real actors, and plain ``asyncio.run`` (the pattern the README's
"From asyncio" section documents).

Tests synchronise on futures, the relay's counts and ``settled()``,
never on sleep; the leak checks are the actor_system fixture's.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Hashable, Iterator
from typing import Any, cast

import pytest

from actors import aio, connect
from actors.board.client import Client
from actors.errors import Cancelled, ShutDown
from actors.protocol.jobs import ReadJob, WriteJob
from messages.errors import UnexpectedResponseCodeError
from tests.system.aio_relay import Relay
from transport import VirtualBoard

BASE = 0x6000_0000
#: A reply wait long enough that nothing is resent while a test holds it.
SLOW: dict[str, Any] = dict(timeout=5.0, retries=0)


@pytest.fixture
def board() -> Iterator[VirtualBoard]:
    with VirtualBoard(2, 2) as board:
        yield board


@pytest.fixture
def relay(board: VirtualBoard) -> Iterator[Relay]:
    relay = Relay(board.address)
    try:
        yield relay
    finally:
        relay.close()


async def posted(board: aio.AsyncBoard, n: int) -> None:
    """Let the tasks started run until ``n`` jobs are posted (each posts
    when it first runs): yields to the loop, waits for no time."""
    while board.pending < n:
        await asyncio.sleep(0)


def pattern(n: int, seed: int = 0) -> bytes:
    return bytes((seed + i * 7 + (i >> 8)) & 0xFF for i in range(n))


def test_thousand_concurrent_small_reads_each_correct_once(
    board: VirtualBoard, actor_system: object
) -> None:
    data = pattern(4000)

    async def main() -> None:
        async with aio.connect(*board.address) as client:
            await client.write(1, 1, BASE, data)
            before = client.stats()
            results = await asyncio.gather(
                *(client.read(1, 1, BASE + 4 * i, 4) for i in range(1000))
            )
            assert results == [data[4 * i : 4 * i + 4] for i in range(1000)]
            after = client.stats()
            assert after.completed - before.completed == 1000
            assert after.open_jobs == 0 and after.failed == 0
            assert client.pending == 0 and client.discarded == 0

    asyncio.run(main())


def test_version_fill_stream_and_the_board_holds_the_writes(
    board: VirtualBoard, actor_system: object
) -> None:
    async def main() -> None:
        async with aio.connect(*board.address) as client:
            assert (await client.version()).name == "SC&MP"
            await client.fill(0, 1, BASE, 0x0403_0201, 64)
            jobs = [
                WriteJob("w", 1, 0, 0, BASE, pattern(1000, 3)),
                ReadJob("r", 0, 1, 0, BASE, 64),
            ]
            outcomes = {o.key: o async for o in client.stream(jobs)}
            assert set(outcomes) == {"w", "r"} and all(o.ok for o in outcomes.values())
            assert bytes(outcomes["r"].value) == bytes([1, 2, 3, 4]) * 16

    asyncio.run(main())
    # What the board holds, read back by the blocking client.
    with connect(*board.address) as check:
        assert check.read(1, 0, BASE, 1000) == pattern(1000, 3)
        assert check.read(0, 1, BASE, 64) == bytes([1, 2, 3, 4]) * 16


def test_errors_are_the_blocking_apis(
    board: VirtualBoard, actor_system: object
) -> None:
    with (
        connect(*board.address, **SLOW) as blocking,
        pytest.raises(UnexpectedResponseCodeError) as expected,
    ):
        blocking.read(9, 9, BASE, 4)  # outside the 2x2 grid

    async def main() -> None:
        async with aio.connect(*board.address, **SLOW) as client:
            with pytest.raises(UnexpectedResponseCodeError) as raised:
                await client.read(9, 9, BASE, 4)
            assert type(raised.value) is type(expected.value)
            assert str(raised.value) == str(expected.value)
            assert await client.read(0, 0, BASE, 4) == bytes(4)  # it carries on

    asyncio.run(main())


def test_cancel_before_send_and_after_send(relay: Relay, actor_system: object) -> None:
    async def main() -> None:
        async with aio.connect(*relay.address, window=1, **SLOW) as client:
            first = asyncio.ensure_future(client.read(0, 0, BASE, 4))
            await posted(client, 1)
            relay.wait_for(lambda r: r.received == 1)  # on the wire, held
            second = asyncio.ensure_future(client.read(0, 0, BASE, 8))
            await posted(client, 2)
            second.cancel()  # not sent: the window holds one
            with pytest.raises(asyncio.CancelledError):
                await second
            first.cancel()  # sent, its reply still held
            with pytest.raises(asyncio.CancelledError):
                await first
            await client.settled()
            stats = client.stats()
            assert stats.cancelled == 2 and stats.open_jobs == 0
            assert stats.sent == 1 and stats.retired == 1
            assert client.pending == 0 and client.discarded == 2
            # The first request's reply comes late: counted and dropped,
            # and the next read is answered with its own.
            relay.release()
            relay.wait_for(lambda r: r.replied == 1)
            assert await client.read(0, 0, BASE, 4) == bytes(4)
            stats = client.stats()
            assert stats.late == 1 and stats.open_jobs == 0
            assert relay.received == 2  # the cancelled second never went out

    asyncio.run(main())


def test_cancel_during_a_long_transfer_leaves_nothing_open(
    board: VirtualBoard, actor_system: object
) -> None:
    relay = Relay(board.address, held=False)
    try:

        async def main() -> None:
            async with aio.connect(*relay.address) as client:
                long = asyncio.ensure_future(client.read(0, 0, 0, 16 << 20))
                other = asyncio.ensure_future(client.read(1, 1, BASE, 256))
                await posted(client, 2)
                relay.wait_for(lambda r: r.replied >= 500)
                long.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await long
                assert await other == bytes(256)  # other calls carry on
                await client.settled()
                stats = client.stats()
                assert stats.cancelled == 1 and stats.open_jobs == 0
                assert stats.sent < (16 << 20) // 256  # it stopped sending
                assert await client.version()  # and the board still serves

        asyncio.run(main())
    finally:
        relay.close()


def test_leaving_a_stream_early_gives_its_other_jobs_up(
    board: VirtualBoard, actor_system: object
) -> None:
    async def main() -> None:
        async with aio.connect(*board.address) as client:
            jobs = [
                ReadJob("small", 0, 0, 0, BASE, 4),
                ReadJob("big", 0, 0, 0, 0, 64 << 20),
            ]
            async with contextlib.aclosing(client.stream(jobs)) as outcomes:
                async for outcome in outcomes:
                    assert outcome.key == "small" and outcome.ok
                    break
            await client.settled()
            stats = client.stats()
            assert stats.cancelled == 1 and stats.open_jobs == 0
            assert client.pending == 0

    asyncio.run(main())


def test_a_timeout_around_an_await_gives_the_job_up(
    relay: Relay, actor_system: object
) -> None:
    async def main() -> None:
        async with aio.connect(*relay.address, **SLOW) as client:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(client.read(0, 0, BASE, 4), 0.05)
            if sys.version_info >= (3, 11):
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(0.05):
                        await client.read(0, 0, BASE, 4)
            await client.settled()
            stats = client.stats()
            expected = 2 if sys.version_info >= (3, 11) else 1
            assert stats.cancelled == expected and stats.open_jobs == 0
            relay.release()
            assert await client.read(0, 0, BASE, 4) == bytes(4)

    asyncio.run(main())


def test_closing_ends_every_pending_await_with_shut_down(
    relay: Relay, actor_system: object
) -> None:
    async def main() -> None:
        client = await aio.connect(*relay.address, **SLOW)
        tasks = [
            asyncio.ensure_future(client.read(0, 0, BASE + 256 * i, 256))
            for i in range(5)
        ]
        await posted(client, 5)
        await client.aclose()
        for task in tasks:
            with pytest.raises(ShutDown):
                await task
        with pytest.raises(ShutDown):
            await client.read(0, 0, BASE, 4)

    asyncio.run(main())


def test_the_loop_ending_closes_the_board(relay: Relay, actor_system: object) -> None:
    """A board left open when asyncio.run returns: the loop's end closes
    it (no actor or thread left, checked by actor_system), and the task
    still awaiting ends."""
    ended: list[BaseException] = []

    async def waiting(client: aio.AsyncBoard) -> None:
        try:
            await client.read(0, 0, BASE, 4)
        except BaseException as error:
            ended.append(error)
            raise

    async def main() -> aio.AsyncBoard:
        client: aio.AsyncBoard = await aio.connect(*relay.address, **SLOW)
        asyncio.ensure_future(waiting(client))
        await posted(client, 1)
        return client

    client = asyncio.run(main())
    assert client.closed and cast(Client, client.board).closed
    assert len(ended) == 1
    assert isinstance(ended[0], (asyncio.CancelledError, ShutDown))


def test_machine_in_process_and_in_a_worker(
    board: VirtualBoard, relay: Relay, actor_system: object
) -> None:
    """A Machine's async face; a cancel crosses to a worker as data."""

    async def main(workers: int) -> None:
        boards: dict[Hashable, Any] = {"a": board, "held": relay.address}
        async with aio.connect(boards, workers=workers, **SLOW) as machine:
            assert isinstance(machine, aio.AsyncMachine)
            await machine.write("a", 1, 1, BASE, pattern(600, workers))
            assert await machine.read("a", 1, 1, BASE, 600) == pattern(600, workers)
            outcomes = [
                o
                async for o in machine.stream(
                    [("a", ReadJob(i, 0, 0, 0, BASE, 4)) for i in range(20)]
                )
            ]
            assert sorted(cast(int, o.key) for o in outcomes) == list(range(20))
            held = asyncio.ensure_future(machine.read("held", 0, 0, BASE, 4))
            await posted(machine.board("held"), 1)
            relay.wait_for(lambda r: r.received >= 1)
            held.cancel()
            with pytest.raises(asyncio.CancelledError):
                await held
            await machine.settled()
            stats = machine.stats()["held"]
            assert not isinstance(stats, str)
            assert stats.cancelled == 1 and stats.open_jobs == 0

    asyncio.run(main(0))
    relay.hold()
    relay.received = 0
    asyncio.run(main(1))


def test_cancelled_outcome_goes_to_a_blocking_sink_too(
    relay: Relay, actor_system: object
) -> None:
    """Client.cancel is the plain path the async face uses: the job's one
    outcome is Cancelled."""
    import queue

    sink: queue.SimpleQueue[list[object]] = queue.SimpleQueue()
    with connect(*relay.address, **SLOW) as client:
        client.post([ReadJob("k", 0, 0, 0, BASE, 4)], sink)
        relay.wait_for(lambda r: r.received == 1)
        client.cancel(sink, ["k"])
        (outcome,) = sink.get(timeout=10)
        assert isinstance(outcome.error, Cancelled)  # type: ignore[attr-defined]
        with pytest.raises(queue.Empty):
            sink.get_nowait()  # nothing else came
        assert client.stats().open_jobs == 0
