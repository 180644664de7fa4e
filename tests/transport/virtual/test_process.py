"""A VirtualBoard in a process of its own, pinned to CPUs or not."""

from __future__ import annotations

import multiprocessing
import os
import socket
from pathlib import Path

import pytest

from messages.scp.bulk import ChunkBuilder
from messages.scp.layout import REPLY_DATA_OFFSET, SEQUENCE, SEQUENCE_OFFSET
from transport.links.endpoint import Address
from transport.virtual.process import BoardProcess

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(
        not hasattr(os, "sched_setaffinity"), reason="pins with sched_setaffinity"
    ),
]


def _read_256(address: Address) -> bytes:
    """One 256-byte SCP read over real UDP: the reply's data."""
    datagram = ChunkBuilder(0, 0, 0).read(0x6000_0000, 256)
    SEQUENCE.pack_into(datagram, SEQUENCE_OFFSET, 7)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(10)
        sock.connect(address)
        sock.send(datagram)
        reply = sock.recv(1024)
    assert SEQUENCE.unpack_from(reply, SEQUENCE_OFFSET)[0] == 7
    assert len(reply) == REPLY_DATA_OFFSET + 256
    return reply[REPLY_DATA_OFFSET:]


def test_a_pinned_board_serves_with_every_thread_on_its_cpus() -> None:
    cpu = min(os.sched_getaffinity(0))
    with BoardProcess(cpus={cpu}) as board:
        assert board.pid is not None
        assert len(_read_256(board.address)) == 256
        # (Its serving thread answered: it exists, and it was started
        # after the pinning, so it is pinned too.)
        threads = list(Path(f"/proc/{board.pid}/task").iterdir())
        assert len(threads) >= 2
        for thread in threads:
            assert os.sched_getaffinity(int(thread.name)) == {cpu}


def test_an_unpinned_board_may_run_anywhere_this_process_may() -> None:
    with BoardProcess() as board:
        assert board.pid is not None
        assert len(_read_256(board.address)) == 256
        assert os.sched_getaffinity(board.pid) == os.sched_getaffinity(0)


@pytest.mark.parametrize("cpus", [set(), {-1}, {10_000}])
def test_cpus_it_may_not_have_are_refused_before_a_process_starts(
    cpus: set[int],
) -> None:
    before = multiprocessing.active_children()
    with pytest.raises(ValueError, match=r"cpus=\[.*\]: must be some of"):
        BoardProcess(cpus=cpus)
    assert multiprocessing.active_children() == before
