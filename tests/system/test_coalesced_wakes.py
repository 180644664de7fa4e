"""Coalesced wake-ups through the connection actor, against a paced
VirtualBoard on real UDP: the actor sleeps as its Coalescer says and takes
several replies per wake, and what it reads and writes is unchanged."""

from __future__ import annotations

import random

import pytest

from actors import connect
from transport import VirtualBoard

ADDRESS = 0x6000_0000
#: Slower than a real board (70 us), so that a wake gathers several even
#: when a loaded machine's sleeps end late and vary.
PACE = 200e-6


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
    # the read.
    with VirtualBoard(2, 2) as board, connect(*board.address, window=8) as client:
        client.read(0, 0, ADDRESS, 1 << 20)
        stats = client.stats()
    assert stats.wakes <= stats.completed / 100, stats
