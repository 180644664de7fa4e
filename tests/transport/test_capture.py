"""Capture: every datagram an endpoint sees, in a pcap file, off the
sender's thread, bounded, and nothing left running after close."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from actors import SCPRequestPipeLine, connect
from actors.placement.machine import Machine
from messages.errors import InvalidArgumentError
from messages.scp import WriteMemory
from transport import SCAMPConnection, UDPEndpoint, VirtualBoard
from transport.capture.pcap import Link, read_packets
from transport.capture.tap import CapturingEndpoint
from transport.capture.writer import (
    RECORD_COST,
    LinkBook,
    PacketCapture,
    capture_path,
    names_each_board,
)

ONE_WAY = Link(("1.1.1.1", 1), ("2.2.2.2", 2))

pytestmark = pytest.mark.timeout(30)


def capture_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("capture-")]


def packets(path: Path) -> list[tuple[tuple[str, int], tuple[str, int], bytes]]:
    return [
        (p.source, p.destination, p.payload) for p in read_packets(path.read_bytes())
    ]


def test_an_endpoint_s_sends_and_receives_are_written_in_order(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    left, right = UDPEndpoint(), UDPEndpoint()
    try:
        with PacketCapture(path) as capture:
            wrapped = CapturingEndpoint(left, capture)
            wrapped.send_to(bytearray(b"one"), right.address)
            data, sender = right.receive_from(5)
            right.send_to(b"two", sender)
            right.send_to(b"three", sender)
            assert wrapped.receive_from(5) == (b"two", right.address)
            assert wrapped.wait_readable(5)
            assert [d for d, _ in wrapped.receive_waiting(5)] == [b"three"]
        assert packets(path) == [
            (left.address, right.address, b"one"),
            (right.address, left.address, b"two"),
            (right.address, left.address, b"three"),
        ]
        assert capture.written == 3 and capture.dropped == 0
    finally:
        left.close()
        right.close()
    assert capture_threads() == []


def test_a_send_that_fails_is_not_captured(tmp_path: Path) -> None:
    endpoint = UDPEndpoint()
    endpoint.close()
    with PacketCapture(tmp_path / "x.pcap") as capture:
        wrapped = CapturingEndpoint(endpoint, capture)
        with pytest.raises(Exception):  # noqa: B017, PT011 - ConnectionClosed or OSError
            wrapped.send_to(b"x", ("127.0.0.1", 9))
    assert capture.written == 0


def test_files_rotate_and_only_the_newest_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "r.pcap"
    with PacketCapture(path, max_packets=10, files=3) as capture:
        for number in range(45):
            capture.add(ONE_WAY, number.to_bytes(2, "little"))
    newest = [int.from_bytes(p, "little") for *_, p in packets(path)]
    assert newest == list(range(40, 45))
    assert [
        int.from_bytes(p, "little") for *_, p in packets(Path(f"{path}.1"))
    ] == list(range(30, 40))
    assert [
        int.from_bytes(p, "little") for *_, p in packets(Path(f"{path}.2"))
    ] == list(range(20, 30))
    assert not Path(f"{path}.3").exists()
    assert capture.opened == 5


def test_files_rotate_by_size(tmp_path: Path) -> None:
    path = tmp_path / "s.pcap"
    with PacketCapture(path, max_bytes=4096, files=2) as capture:
        for _ in range(40):
            capture.add(ONE_WAY, bytes(200))
    assert 0 < path.stat().st_size <= 4096
    assert 0 < Path(f"{path}.1").stat().st_size <= 4096


def test_what_the_writer_cannot_keep_up_with_is_counted_not_blocked(
    tmp_path: Path,
) -> None:
    # The writer waits a minute between writes: only close() wakes it.
    capture = PacketCapture(
        tmp_path / "b.pcap", max_pending_bytes=5 * (1 + RECORD_COST), flush_interval=60
    )
    for _ in range(8):
        capture.add(ONE_WAY, b"x")
    capture.add_burst(LinkBook(("2.2.2.2", 2)), [(b"y", ("1.1.1.1", 1))])
    capture.close()
    assert capture.written == 5 and capture.dropped == 4


def test_the_bound_on_what_waits_counts_bytes_not_datagrams(tmp_path: Path) -> None:
    """64 KB datagrams and a writer that does not run: what waits stays
    within max_pending_bytes (200,000 such datagrams would be 13 GB)."""
    bound = 1 << 20
    capture = PacketCapture(
        tmp_path / "big.pcap", max_pending_bytes=bound, flush_interval=60
    )
    big = bytes(60_000)
    for _ in range(100):
        capture.add(ONE_WAY, big)
    capture.add_burst(LinkBook(("2.2.2.2", 2)), [(big, ("1.1.1.1", 1))] * 4)
    waiting = 104 - capture.dropped
    assert capture.pending_bytes == waiting * (len(big) + RECORD_COST)
    assert bound <= capture.pending_bytes < bound + len(big) + RECORD_COST
    assert capture.flush(timeout=20)
    assert capture.pending_bytes == 0
    capture.close()
    assert capture.written == 104 - capture.dropped
    assert len(packets(tmp_path / "big.pcap")) == capture.written


def test_bad_bounds_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError):
        PacketCapture(tmp_path / "x.pcap", files=0)
    with pytest.raises(InvalidArgumentError):
        PacketCapture(tmp_path / "x.pcap", max_bytes=10)
    assert capture_threads() == []


def test_capture_paths_for_each_board(tmp_path: Path) -> None:
    assert capture_path(str(tmp_path), "1.2.3.4", 5) == tmp_path / "1.2.3.4_5.pcap"
    assert capture_path("a-{host}-{port}.pcap", "h", 7) == Path("a-h-7.pcap")
    assert capture_path("one.pcap", "h", 7) == Path("one.pcap")
    assert names_each_board("{host}:{port}.pcap") and names_each_board(tmp_path)
    assert not names_each_board("one.pcap")
    with pytest.raises(InvalidArgumentError):
        capture_path("x-{board}.pcap", "h", 7)


def test_a_client_and_a_board_capture_the_same_exchange(tmp_path: Path) -> None:
    with VirtualBoard(2, 2, capture=tmp_path / "board.pcap") as board:
        host, port = board.address
        with connect(
            host, port, capture=str(tmp_path / "c-{host}-{port}.pcap")
        ) as client:
            client.write(1, 1, 0x6000_0000, bytes(range(256)) * 3)
            assert client.read(1, 1, 0x6000_0000, 768) == bytes(range(256)) * 3
            stats = client.stats()
            local = client.capture
            assert local is not None and not local.closed
        assert local.closed
    seen = packets(tmp_path / f"c-{host}-{port}.pcap")
    # The same datagrams (each side sees its own interleaving of them).
    assert sorted(packets(tmp_path / "board.pcap")) == sorted(seen)
    to_board = [p for p in seen if p[1] == (host, port)]
    assert len(to_board) == stats.sent == 6
    assert len(seen) - len(to_board) == stats.completed == 6
    assert capture_threads() == []


def test_a_machine_gives_each_board_its_own_file(tmp_path: Path) -> None:
    with VirtualBoard(2, 2) as first, VirtualBoard(2, 2) as second:
        with Machine([first, second], workers=0, capture=tmp_path) as machine:
            machine.version(0)
            machine.version(1)
        for board in (first, second):
            host, port = board.address
            assert len(packets(tmp_path / f"{host}_{port}.pcap")) == 2
    assert capture_threads() == []


def test_a_machine_refuses_one_file_for_many_boards(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="several boards"):
        Machine(["127.0.0.1", "127.0.0.2"], workers=0, capture=tmp_path / "one.pcap")
    with (
        PacketCapture(tmp_path / "shared.pcap") as shared,
        pytest.raises(InvalidArgumentError, match="cannot cross"),
    ):
        Machine(["127.0.0.1"], workers=1, capture=shared)


def test_a_pipeline_over_a_capturing_scamp_connection_is_captured(
    tmp_path: Path,
) -> None:
    """SpiNNMan-style code: an SCPRequestPipeLine over a SCAMPConnection
    given a capture. Every datagram it sends and receives is in the file,
    as it went on the wire, and the board holds what was written."""
    data = bytes(range(256)) * 8
    path = tmp_path / "pipeline.pcap"
    errors: list[Exception] = []
    with VirtualBoard(2, 2) as board, PacketCapture(path) as capture:
        host, port = board.address
        with SCAMPConnection(
            remote_host=host, remote_port=port, capture=capture
        ) as connection:
            pipeline: SCPRequestPipeLine[Any] = SCPRequestPipeLine(
                connection, n_channels=4
            )
            for index in range(8):
                pipeline.send_request(
                    WriteMemory(
                        (1, 1, 0), 0x6000_0000 + 256 * index, data[256 * index :][:256]
                    ),
                    None,
                    lambda _request, error, *_: errors.append(error),
                )
            pipeline.finish()
            local = (connection.local_ip_address, connection.local_port)
        held = board.monitor.memory.read(1 << 8 | 1, 0x6000_0000, len(data))
        on_the_wire = board.stats
    assert not errors and held == data
    seen = packets(path)
    sent = [p for p in seen if p[:2] == (local, (host, port))]
    answers = [p for p in seen if p[:2] == ((host, port), local)]
    # What the board got and gave, resends included (a loaded machine can
    # stall a thread past the timeout), is what the file holds.
    assert len(sent) == on_the_wire.received >= 8
    assert len(answers) == on_the_wire.replies >= 8
    assert len(seen) == len(sent) + len(answers)
    # Each request carries its address and 256 bytes (after the 2 padding
    # bytes, the 8 of the SDP header, 4 of SCP's command and sequence; the
    # address is the first argument, the data follows the three).
    assert {(p[2][14:18], p[2][26:]) for p in sent} == {
        ((0x6000_0000 + 256 * i).to_bytes(4, "little"), data[256 * i :][:256])
        for i in range(8)
    }
