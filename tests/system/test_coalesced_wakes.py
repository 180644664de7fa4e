"""Coalesced wake-ups through the connection actor, against a paced
VirtualBoard on real UDP: the actor sleeps as its Coalescer says and takes
several replies per wake, and what it reads and writes is unchanged."""

from __future__ import annotations

import queue
import random
from typing import Any

import pykka
import pytest

from actors import connect
from actors.connection import ConnectionActor, Submit
from actors.protocol import Outcome, ReadJob, SCPJob, WindowSettings
from actors.testing import FakeClock
from messages.scp import GetVersion
from messages.scp.layout import REPLY_DATA_OFFSET
from transport import SCAMPConnection, VirtualBoard
from transport.links.endpoint import Address, Datagram

ADDRESS = 0x6000_0000
#: Slower than a real board (70 us), so that a wake gathers several even
#: when a loaded machine's sleeps end late and vary.
PACE = 200e-6
#: A 256-byte read's reply.
READ_REPLY = REPLY_DATA_OFFSET + 256


@pytest.mark.timeout(60)
def test_a_paced_board_is_read_and_written_several_replies_per_wake() -> None:
    data = random.Random(35).randbytes(256 << 10)
    # (A loaded machine can stall the board's thread for milliseconds: a
    # resend after such a stall takes replies one by one for a while.)
    with (
        VirtualBoard(2, 2, service_time=PACE) as board,
        connect(*board.address, window=8, rto_floor=0.05) as client,
    ):
        client.write(0, 0, ADDRESS, data)
        assert client.read(0, 0, ADDRESS, len(data)) == data
        stats = client.stats()
    assert stats.completed == 2 * len(data) // 256
    assert stats.wakes >= 20, stats
    assert stats.coalesced >= 3 * stats.wakes, stats


@pytest.mark.timeout(60)
def test_a_fast_boards_replies_are_not_slept_on() -> None:
    # The in-process board shares the interpreter with the client: its
    # replies come as fast as both can go, so sleeping could only slow
    # the read. A paced board's read sleeps once per 4 or 5 replies; a
    # loaded host can make even this board look paced for a while (up to
    # 46 sleeps in 4,096 replies with two CPU hogs running, before and
    # after the batched receives alike), so the bound is 1 in 20.
    with VirtualBoard(2, 2) as board, connect(*board.address, window=8) as client:
        client.read(0, 0, ADDRESS, 1 << 20)
        stats = client.stats()
    assert stats.wakes <= stats.completed / 20, stats


@pytest.mark.timeout(60)
def test_a_version_asked_during_a_long_read_is_not_held_back_for_company() -> None:
    # The actor holds outcomes back to hand them over in batches; a sink
    # that has no other job open gets its outcome at once. Under a clock
    # that never moves, "at once" is the only way the version can come
    # back before the read ends (nothing held back would be due).
    frozen = FakeClock()
    with VirtualBoard(2, 2, service_time=PACE) as board:
        actor = ConnectionActor.start(
            lambda: SCAMPConnection(
                remote_host=board.address[0], remote_port=board.address[1]
            ),
            WindowSettings(),
            clock=frozen,
        )
        try:
            read_while_asking(actor, queue.SimpleQueue(), 1)
        finally:
            actor.stop()


@pytest.mark.timeout(60)
def test_a_version_asked_during_a_long_read_is_handed_over_before_the_refill() -> None:
    # Its caller waits for this one reply: the outcome goes as soon as the
    # reply is in, and the read's next requests after it, not the other
    # way round (every event below happens on the actor's thread, in order).
    events: list[tuple[str, int]] = []
    versions: list[int] = []

    def recorded() -> SCAMPConnection:
        connection = SCAMPConnection(
            remote_host=board.address[0], remote_port=board.address[1]
        )
        endpoint = connection.endpoint
        send_to, receive_from = endpoint.send_to, endpoint.receive_from
        receive_waiting = endpoint.receive_waiting

        def sending(data: Datagram, address: Address) -> None:
            events.append(("send", len(data)))
            send_to(data, address)

        def received(datagram: bytes) -> None:
            if len(datagram) != READ_REPLY:
                events.append(("version reply", len(datagram)))

        def receiving(timeout: float | None) -> tuple[bytes, Address]:
            data, sender = receive_from(timeout)
            received(data)
            return data, sender

        def taking(limit: int) -> list[tuple[bytes, Address]]:
            taken = receive_waiting(limit)
            for data, _ in taken:
                received(data)
            return taken

        endpoint.send_to = sending  # type: ignore[method-assign]
        endpoint.receive_from = receiving  # type: ignore[method-assign]
        endpoint.receive_waiting = taking  # type: ignore[method-assign]
        return connection

    class Asking(queue.SimpleQueue[list[Outcome]]):
        def put(self, item: list[Outcome], *args: Any, **kwargs: Any) -> None:
            events.append(("version outcome", len(versions)))
            versions.append(len(events))
            super().put(item, *args, **kwargs)

    with VirtualBoard(2, 2, service_time=PACE) as board:
        actor = ConnectionActor.start(recorded, WindowSettings())
        try:
            read_while_asking(actor, Asking(), 5)
        finally:
            actor.stop()
    for handed_over in versions:
        # Back from the outcome to the version's reply: no send between.
        before = events[: handed_over - 1]
        replied = max(
            i for i, (kind, _) in enumerate(before) if kind == "version reply"
        )
        assert all(kind != "send" for kind, _ in before[replied:]), before[replied:]


def read_while_asking(
    actor: pykka.ActorRef[Any],
    asking: queue.SimpleQueue[list[Outcome]],
    versions: int,
) -> None:
    """A 512 KiB read from a board paced at PACE (about 0.4 s), and
    ``versions`` versions asked one after another while it goes on."""
    reading: queue.SimpleQueue[list[Outcome]] = queue.SimpleQueue()
    actor.tell(Submit([ReadJob("read", 0, 0, 0, ADDRESS, 512 << 10)], reading))
    for n in range(versions):
        actor.tell(Submit([SCPJob(n, GetVersion(0, 0, 0))], asking))
        (version,) = asking.get(timeout=30)
        assert version.ok, version
    assert reading.empty()  # the read goes on
    (read,) = reading.get(timeout=30)
    assert read.ok and len(read.value) == 512 << 10
