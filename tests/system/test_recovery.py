"""Recovery for long runs (opt-in), over real UDP on 127.0.0.x: a board
that hangs (held in reset by its BMP: silent everywhere) or whose
supervisor gives up is power-cycled through the virtual BMP and booted
again; the requests open meanwhile end with PowerCycled; a listener
receives again on the IP tag set before; a cycle that cannot be done gives
the board up, saying why; a client's capture holds its boots and power
cycles."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from actors.board.client import Client
from actors.boot import COUNTS, BoardBMP, BootOptions
from actors.boot.recovery import Recovery
from actors.compat.connection_listener import ConnectionListener
from actors.errors import PowerCycled, ShutDown
from messages.bmp import ResetAction, ResetBoards
from messages.boot.frames import BOOT_PORT
from messages.scp import IPTagSet
from tests.system.test_restart_without_loss import kill
from tests.transport.loopback import first_free, udp_socket
from transport import (
    BMPConnection,
    ROMSettings,
    UDPConnection,
    VirtualBMP,
    VirtualBoard,
)
from transport.capture.pcap import Packet, read_packets
from transport.connections.call import call
from transport.virtual.traffic import TagTraffic

pytestmark = pytest.mark.timeout(60)
BASE = 0x6000_0000
BOOT = BootOptions(probe_timeout=0.3, pass_timeout=0.5, power_settle=0.2, deadline=20)


class Heard:
    """A listener on 127.0.0.1: counts the datagrams an IP tag sends it."""

    def __init__(self) -> None:
        self.connection = UDPConnection(local_host="127.0.0.1")
        self.listener: ConnectionListener[bytes] = ConnectionListener(
            self.connection, 1, timeout=0.1
        )
        self._changed = threading.Condition()
        self.count = 0
        self.listener.add_callback(self._heard)
        self.listener.start()

    def _heard(self, datagram: bytes) -> None:
        with self._changed:
            self.count += 1
            self._changed.notify_all()

    def more_than(self, count: int, timeout: float = 20.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self.count > count, timeout)

    @property
    def port(self) -> int:
        return int(self.connection.local_port)

    def close(self) -> None:
        self.listener.close()
        self.connection.close()


@pytest.fixture
def frame() -> Iterator[tuple[VirtualBoard, VirtualBMP, Heard]]:
    """A cold board sending 200 datagrams a second to its IP tags, its BMP,
    and a listener."""
    settings = ROMSettings(hello_to=None, netinit=0.0)
    board = first_free(
        70,
        lambda host: VirtualBoard(
            2, 2, host=host, booted=False, rom=settings, traffic=TagTraffic(200.0)
        ),
    ).start()
    bmp = VirtualBMP([board], power_on_delay=0.05).start()
    heard = Heard()
    try:
        yield board, bmp, heard
    finally:
        heard.close()
        bmp.stop()
        board.stop()


def hang(bmp: VirtualBMP) -> None:
    """Hold the board's chips in reset: silent on every port, as a hung one."""
    host, port = bmp.address
    with BMPConnection(remote_host=host, remote_port=port) as connection:
        call(connection, ResetBoards(ResetAction.HOLD, [0]))


def recovering_client(board: VirtualBoard, bmp: VirtualBMP, **given: Any) -> Client:
    host, port = bmp.address
    recovery = Recovery(bmp=BoardBMP(host, 0, port), boot=BOOT, off_time=0.1, **given)
    return Client(*board.address, retries=1000, recovery=recovery)


def reads(client: Client, pool: ThreadPoolExecutor, count: int) -> list[Future[bytes]]:
    return [pool.submit(client.read, 0, 0, BASE + 64 * n, 64) for n in range(count)]


@pytest.mark.timeout(60)
def test_a_hung_board_is_power_cycled_booted_and_served_again(
    frame: tuple[VirtualBoard, VirtualBMP, Heard],
) -> None:
    board, bmp, heard = frame
    before = COUNTS.snapshot()
    client = recovering_client(board, bmp, hung_after=1.0)
    with client, ThreadPoolExecutor(4) as pool:
        client.boot(BOOT)
        client.write(0, 0, BASE, b"held until the power goes")
        client.call(IPTagSet(0, 0, "127.0.0.1", heard.port, 1, strip=True))
        assert heard.more_than(10)
        hang(bmp)
        open_reads = reads(client, pool, 3)
        for future in open_reads:
            with pytest.raises(PowerCycled) as raised:
                future.result(30)
        at_cycle = heard.count
        # Served again, with its tag set again: the listener hears more.
        assert heard.more_than(at_cycle + 10)
        assert client.read(0, 0, BASE, 8) == bytes(8)  # its memory is gone
        assert client.health().state == "serving"
    host, port = board.address
    assert str(raised.value).startswith(
        f"board {host}:{port} was power-cycled through its BMP "
        f"{bmp.address[0]}:{bmp.address[1]} board 0 (silent for "
    )
    assert str(raised.value).endswith(
        "what it held is gone, and this request was not done; send it again "
        "once the board is back"
    )
    stats = bmp.stats
    assert (stats.power_offs, stats.power_ons) == (1, 1)
    assert board.stats.rom.boots == 2  # type: ignore[union-attr]
    after = COUNTS.snapshot()
    assert after.get("power_cycles", 0) - before.get("power_cycles", 0) == 1
    assert after.get("recovered", 0) - before.get("recovered", 0) == 1


@pytest.mark.timeout(60)
def test_a_board_whose_supervisor_gives_up_is_recovered(
    frame: tuple[VirtualBoard, VirtualBMP, Heard],
) -> None:
    board, bmp, heard = frame
    host, port = bmp.address
    recovery = Recovery(bmp=BoardBMP(host, 0, port), boot=BOOT, off_time=0.1)
    client = Client(*board.address, retries=1000, max_restarts=0, recovery=recovery)
    with client, ThreadPoolExecutor(2) as pool:
        client.boot(BOOT)
        client.call(IPTagSet(0, 0, "127.0.0.1", heard.port, 2, strip=True))
        assert heard.more_than(5)
        hang(bmp)  # so that a request stays open ...
        (open_read,) = reads(client, pool, 1)
        kill(client, None)  # ... when the supervisor gives up
        with pytest.raises(PowerCycled, match="its supervisor gave up"):
            open_read.result(30)
        at_cycle = heard.count
        assert heard.more_than(at_cycle + 10)
        assert client.version().name == "SC&MP"
        assert not client.gave_up.is_set() and not client.closed


@pytest.mark.timeout(60)
def test_a_recovery_that_cannot_be_done_gives_the_board_up(
    frame: tuple[VirtualBoard, VirtualBMP, Heard],
) -> None:
    board, bmp, _ = frame
    silent = first_free(80, udp_socket(0))
    try:
        host, port = silent.getsockname()
        recovery = Recovery(bmp=BoardBMP(host, 0, port), boot=BOOT, hung_after=0.5)
        with Client(*board.address, retries=1000, recovery=recovery) as client:
            client.boot(BOOT)
            hang(bmp)
            with pytest.raises(ShutDown) as raised:
                client.read(0, 0, BASE, 64)
            assert client.gave_up.wait(10)
            assert client.health().state == "given_up"
    finally:
        silent.close()
    assert str(raised.value).startswith(
        f"board {board.address[0]}:{board.address[1]} was lost (silent for "
    )
    assert f"and not recovered: BMP {host}:{port} not answering" in str(raised.value)


def test_recovery_is_for_a_client_with_its_own_supervisor() -> None:
    from actors.supervision.supervisor import Supervisor
    from messages.errors import InvalidArgumentError

    shared = Supervisor.start([], per_child=True)
    try:
        with pytest.raises(InvalidArgumentError, match="supervisor of its own"):
            Client("127.0.0.1", supervisor=shared, recovery=Recovery(bmp="127.0.0.9"))
    finally:
        shared.stop()


@pytest.mark.timeout(60)
def test_a_clients_capture_holds_its_boots_and_power_cycles(
    frame: tuple[VirtualBoard, VirtualBMP, Heard], tmp_path: Path
) -> None:
    """The boot frames (UDP 54321) and the BMP's requests and replies of
    the client's boot and of its recovery are in its capture, besides SCP."""
    board, bmp, _ = frame
    path = tmp_path / "board.pcap"
    host, port = bmp.address
    recovery = Recovery(bmp=BoardBMP(host, 0, port), boot=BOOT, off_time=0.1)
    client = Client(
        *board.address, retries=1000, max_restarts=0, recovery=recovery, capture=path
    )
    with client, ThreadPoolExecutor(1) as pool:
        client.boot(BOOT)
        boots_before = len(boot_frames(client, path, board))
        hang(bmp)
        (open_read,) = reads(client, pool, 1)
        kill(client, None)  # the supervisor gives up: recovered
        with pytest.raises(PowerCycled):
            open_read.result(30)
        assert client.version().name == "SC&MP"  # served again
    packets = list(read_packets(path.read_bytes()))
    booted = [p for p in packets if p.destination == (board.address[0], BOOT_PORT)]
    to_bmp = [p for p in packets if p.destination == bmp.address]
    from_bmp = [p for p in packets if p.source == bmp.address]
    assert boots_before > 0 and len(booted) > boots_before  # booted twice
    # Recovery: CAN status and power off, CAN status and power on.
    assert len(to_bmp) >= 4 and len(from_bmp) >= 4
    assert bmp.stats.power_offs == 1 and bmp.stats.power_ons == 1


def boot_frames(client: Client, path: Path, board: VirtualBoard) -> list[Packet]:
    """The boot frames in the client's capture so far (written out first)."""
    assert client.capture is not None
    assert client.capture.flush(10)
    destination = (board.address[0], BOOT_PORT)
    return [p for p in read_packets(path.read_bytes()) if p.destination == destination]
