"""Replay: a capture's requests found, resends counted once, answers
compared, and a board asked again."""

from __future__ import annotations

import math
import re
import socket
import time
from pathlib import Path

import pytest

from actors import connect
from messages.errors import InvalidArgumentError
from messages.scp import ReadMemory
from messages.scp.layout import PADDING
from transport import FaultPlan, VirtualBoard
from transport.capture.pcap import Packet, read_packets
from transport.capture.replay import difference, exchanges, replay
from transport.errors import PortClosed

pytestmark = pytest.mark.timeout(30)

HOST, BOARD = ("10.0.0.1", 4000), ("10.0.0.2", 17893)


def request(seq: int, address: int = 0x6000_0000) -> bytes:
    message = ReadMemory((0, 0, 0), address, 4)
    message.sdp_header.update_for_send(0, 0)
    datagram = bytearray(PADDING + message.bytestring)
    datagram[12:14] = seq.to_bytes(2, "little")
    return bytes(datagram)


def response(seq: int, data: bytes = b"abcd", code: int = 0x80) -> bytes:
    head = bytes([0, 0, 0x07, 0xFF, 0xFF, 0x00, 0, 0, 0, 0])
    return head + code.to_bytes(2, "little") + seq.to_bytes(2, "little") + data


def test_resent_copies_are_one_exchange_with_the_first_answer() -> None:
    found = exchanges(
        [
            Packet(0.0, HOST, BOARD, request(1)),
            Packet(0.1, HOST, BOARD, request(1)),  # resent: no answer yet
            Packet(0.2, BOARD, HOST, response(1, b"1111")),
            Packet(0.3, BOARD, HOST, response(1, b"late")),  # a duplicate
            Packet(0.4, HOST, BOARD, request(1, 0x6000_0004)),  # seq reused
            Packet(0.5, HOST, BOARD, request(2)),  # never answered
        ]
    )
    assert [(e.frame, e.resends, e.answer) for e in found] == [
        (1, 1, response(1, b"1111")),
        (5, 0, None),
        (6, 0, None),
    ]
    assert found[0].command == "CMD_READ" and found[0].sequence == 1


def test_differences_say_what_changed() -> None:
    assert difference(response(1), response(1)) is None
    assert difference(response(1), response(1, b"abXd")) == (
        "RC_OK with 4 bytes, data differs from byte 2"
    )
    assert difference(response(1), response(1, b"", 0x87)) == (
        "RC_OK with 4 bytes -> RC_ROUTE with 0 bytes"
    )
    assert difference(None, response(1)) == "no answer -> RC_OK with 4 bytes"
    assert difference(None, None) is None


def test_a_captured_lossy_session_replays_the_same_on_a_clean_board(
    tmp_path: Path,
) -> None:
    path = tmp_path / "lossy.pcap"
    lossy = FaultPlan(drop=0.2, seed=5)
    data = bytes(range(256)) * 8
    with VirtualBoard(2, 2, faults=lossy) as board:
        host, port = board.address
        with connect(host, port, timeout=0.05, capture=path) as client:
            client.write(0, 0, 0x6000_0000, data)
            assert client.read(0, 0, 0x6000_0000, len(data)) == data
            resent = client.stats().resent
    found = exchanges(read_packets(path.read_bytes()))
    assert len(found) == 16  # 8 writes, 8 reads
    assert sum(e.resends for e in found) <= resent
    with VirtualBoard(2, 2) as clean:
        results = list(replay(found, *clean.address, timeout=1.0))
        assert [r.difference for r in results] == [None] * 16
        assert clean.monitor.memory.read((0 << 8) | 0, 0x6000_0000, len(data)) == data
    with VirtualBoard(2, 2) as blank:
        # The reads alone, on a board that was never written: every
        # answer's data differs from the capture's.
        reads = [e for e in found if e.command == "CMD_READ"]
        results = list(replay(reads, *blank.address, timeout=1.0))
        assert all(
            r.difference is not None and "data differs" in r.difference for r in results
        )


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"retries": -1}, "retries=-1"),
        ({"timeout": math.nan}, "timeout=nan"),
        ({"timeout": math.inf}, "timeout=inf"),
        ({"timeout": 0.0}, "timeout=0.0"),
    ],
)
def test_replay_refuses_what_would_send_nothing_or_wait_forever(
    options: dict[str, float], named: str
) -> None:
    found = exchanges([Packet(0.0, HOST, BOARD, request(1))])
    with pytest.raises(InvalidArgumentError, match=re.escape(named)):
        list(replay(found, "127.0.0.1", 9, **options))  # type: ignore[arg-type]


def test_replay_to_a_closed_port_ends_at_once_as_refused() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as gone:
        gone.bind(("127.0.0.1", 0))
        port = gone.getsockname()[1]
    found = exchanges([Packet(0.0, HOST, BOARD, request(n)) for n in range(3)])
    started = time.monotonic()
    with pytest.raises(PortClosed, match=f"127.0.0.1:{port} refused: nothing listens"):
        list(replay(found, "127.0.0.1", port, timeout=10.0, retries=5))
    assert time.monotonic() - started < 5.0  # not a timeout per try
