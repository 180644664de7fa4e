"""BMPConnection over real UDP on loopback, a plain socket standing in for
the BMP: it answers version and ADC requests for the boards it has and
RC_ROUTE for the others, as a BMP does."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from actors import SCPRequestPipeLine
from messages.bmp import (
    BMPBoardAbsentError,
    BMPGetVersion,
    BoardStat,
    PowerCommand,
    ReadADC,
    SetPower,
)
from messages.errors import InvalidArgumentError
from transport import BMPConnection, BMPConnectionData
from transport.capture.pcap import read_packets
from transport.capture.writer import PacketCapture
from transport.connections.call import call
from transport.connections.driven import is_plain

pytestmark = pytest.mark.timeout(30)
VERSION = struct.pack("<III", 0, 0xFFFF0100, 1_600_000_000) + (
    b"BC&MP/Spin5-BMP\0" + b"2.1.2\0"
)
STAT = BoardStat(
    adc=(0xFFFF, 1966, 1966, 1966, 2949, 0xFFFF, 3604, 3277),
    t_int=(40 * 256, 38 * 256, -0x8000, -0x8000),
    t_ext=(-0x8000,) * 4,
    fan=(-1,) * 4,
)


@dataclass
class FakeBMP:
    """A UDP socket that answers as a BMP with ``boards`` in its frame."""

    boards: set[int]
    sock: socket.socket = field(init=False)
    requests: list[bytes] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.thread = threading.Thread(target=self.serve, daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        return self.sock.getsockname()  # type: ignore[no-any-return]

    def serve(self) -> None:
        while not self.stop.is_set():
            try:
                datagram, sender = self.sock.recvfrom(2048)
            except TimeoutError:
                continue
            self.requests.append(datagram)
            self.sock.sendto(self.answer(datagram), sender)

    def answer(self, datagram: bytes) -> bytes:
        flags, tag, dest, source, dy, dx, sy, sx = datagram[2:10]
        command, sequence, arg1 = struct.unpack_from("<2HI", datagram, 10)
        board = dest & 0x1F
        header = bytes([0x07, tag, source, dest, sy, sx, dy, dx])
        if board not in self.boards:
            return b"\0\0" + header + struct.pack("<2H", 0x87, sequence)
        body = VERSION if command == 0 else STAT.to_bytes() if arg1 == 3 else b""
        return b"\0\0" + header + struct.pack("<2H", 0x80, sequence) + body


@pytest.fixture
def bmp() -> Iterator[FakeBMP]:
    fake = FakeBMP({0, 1, 3, 5})
    fake.thread.start()
    yield fake
    fake.stop.set()
    fake.thread.join(5)
    fake.sock.close()


@pytest.mark.parametrize("board", [0, 5])
def test_a_version_request_reaches_board_n_and_its_reply_is_read(
    bmp: FakeBMP, board: int
) -> None:
    host, port = bmp.address
    with BMPConnection(remote_host=host, remote_port=port, boards=[board]) as c:
        info = call(c, BMPGetVersion(board)).version_info
    assert (info.name, info.hardware, info.version_number) == (
        "BC&MP",
        "Spin5-BMP",
        (2, 1, 2),
    )
    (request,) = bmp.requests
    assert request[:2] == b"\0\0"  # SDP padding
    flags, _, dest, source, dy, dx, sy, sx = request[2:10]
    assert (flags, dest & 0x1F, dest >> 5, dx, dy) == (0x87, board, 0, 0, 0)
    assert (source, sx, sy) == (0xFF, 0, 0)  # from the host, chip (0, 0)
    assert struct.unpack_from("<H", request, 10)[0] == 0  # CMD_VER


def test_its_datagrams_are_spinnmans() -> None:
    from spinnman.connections.udp_packet_connections import (
        BMPConnection as TheirConnection,
    )
    from spinnman.messages.scp.impl import ReadFPGARegister as TheirRead
    from spinnman.model import BMPConnectionData as TheirData

    from messages.bmp import ReadFPGARegister

    theirs = TheirConnection(TheirData("127.0.0.1", [2], 9))
    try:
        with BMPConnection(TheirData("127.0.0.1", [2], 9)) as ours:
            assert (ours.remote_ip_address, ours.remote_port) == ("127.0.0.1", 9)
            assert ours.boards == (2,)
            mine, their = ReadFPGARegister(1, 0x44, 2), TheirRead(1, 0x44, 2)
            mine.scp_request_header.sequence = their.scp_request_header.sequence = 9
            assert ours.get_scp_data(mine) == theirs.get_scp_data(their)
            assert (ours.chip_x, ours.chip_y) == (theirs.chip_x, theirs.chip_y)
    finally:
        theirs.close()


def test_the_pipeline_works_over_it(bmp: FakeBMP) -> None:
    host, port = bmp.address
    got: dict[int, Any] = {}
    failed: dict[int, BaseException] = {}
    with BMPConnection(BMPConnectionData(host, range(4), port)) as connection:
        assert is_plain(connection)  # driven through its socket
        pipeline: SCPRequestPipeLine[Any] = SCPRequestPipeLine(
            connection, n_channels=4, packet_timeout=2
        )
        for board in connection.boards:

            def answered(response: Any, board: int = board) -> None:
                got[board] = response.adc_info

            def refused(request: Any, error: BaseException, *_: Any) -> None:
                failed[request.board] = error

            pipeline.send_request(ReadADC(board), answered, refused)
        pipeline.finish()
    assert sorted(got) == [0, 1, 3]
    assert all(info.board_stat == STAT for info in got.values())
    assert got[0].voltage_1_2a == pytest.approx(1.2, abs=0.001)
    assert list(failed) == [2]
    assert isinstance(failed[2], BMPBoardAbsentError)
    assert "no board 2" in str(failed[2])
    assert pipeline.n_resent == 0


def test_power_is_sent_once(bmp: FakeBMP) -> None:
    host, port = bmp.address
    with BMPConnection(remote_host=host, remote_port=port, boards=[0, 1]) as c:
        call(c, SetPower(PowerCommand.POWER_ON, c.boards), retries=3)
    (request,) = bmp.requests
    assert struct.unpack_from("<2H3I", request, 10)[2:4] == (1, 0b11)


def test_the_capture_sees_its_traffic(bmp: FakeBMP, tmp_path: Path) -> None:
    host, port = bmp.address
    capture = PacketCapture(tmp_path / "bmp.pcap")
    with BMPConnection(
        remote_host=host, remote_port=port, boards=[3], capture=capture
    ) as connection:
        call(connection, BMPGetVersion(3))
    capture.close()
    packets = list(read_packets((tmp_path / "bmp.pcap").read_bytes()))
    assert [packet.payload for packet in packets] == [
        bmp.requests[0],
        packets[1].payload,
    ]
    assert packets[1].source == (host, port)
    assert packets[1].payload.endswith(b"2.1.2\0")


def test_the_default_port_is_17893() -> None:
    with BMPConnection(BMPConnectionData("127.0.0.1", [0])) as connection:
        assert connection.remote_port == 17893
        assert connection.boards == (0,)


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: BMPConnection(), "connection_data"),
        (
            lambda: BMPConnection(
                BMPConnectionData("127.0.0.1", [0]), remote_host="127.0.0.1"
            ),
            "connection_data",
        ),
        (lambda: BMPConnection(remote_host="127.0.0.1", boards=[24]), "board"),
        (lambda: BMPConnection(remote_host="127.0.0.1", boards=[]), "boards"),
        (lambda: BMPConnectionData("127.0.0.1", [-1]), "board"),
    ],
)
def test_bad_arguments_are_refused(make: Any, name: str) -> None:
    with pytest.raises(InvalidArgumentError, match=f"^{name}="):
        make()


def test_its_chip_is_always_0_0() -> None:
    with BMPConnection(remote_host="127.0.0.1", boards=1) as connection:
        with pytest.raises(InvalidArgumentError, match="chip"):
            connection.update_chip_coordinates(1, 1)
        assert "boards=[1]" in repr(connection)
