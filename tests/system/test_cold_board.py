"""A virtual board that starts cold, over real UDP on 127.0.0.x.

It is silent on its SCP port until booted over port 54321 (by spinnactors'
BootConnection and by SpiNNMan's own, with SpiNNMan's real image), then
answers version as SC&MP 4.0.0, first as chip (255, 255); its stats show
what it was booted with. Boot frames can be lost, duplicated and
reordered, and too close together; garbage never stops the ROM; hellos
reach an IPAddressesConnection; several cold boards run side by side.
"""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from messages.boot import (
    BOOT_HEADER,
    BootImage,
    BootPlan,
    SpinnakerBootMessage,
    SpinnakerBootOpCode,
    SystemVariableBootValues,
    SystemVariableDefinition,
    boot_values,
)
from tests.system.cold import (
    boot,
    booted,
    cold_board,
    located_version,
    rom_of,
    version,
)
from tests.transport.loopback import BOOT_PORT, first_free
from transport import BootConnection, FaultPlan, IPAddressesConnection, VirtualBoard
from transport.errors import ReceiveTimeout
from transport.virtual.rom import ROMState

pytestmark = pytest.mark.timeout(30)
Variable = SystemVariableDefinition


@pytest.mark.timeout(20)
def test_our_boot_brings_sc_and_mp_up_and_the_stats_show_what_it_sent() -> None:
    values = boot_values(
        1_700_000_321, extra_boot_values={Variable.led_half_period_10_ms: 7}
    )
    with cold_board(20, netinit=0.5) as board:
        with pytest.raises(ReceiveTimeout):
            version(board, timeout=0.1, retries=1)  # in its ROM: silent
        assert board.stats.silent_drops == 2
        plan = boot(board, values=values)
        assert rom_of(board).wait_until(booted, 10)
        early = version(board)
        assert (early.name, early.version_number, early.x, early.y) == (
            "SC&MP",
            (4, 0, 0),
            255,
            255,
        )
        assert (located_version(board).x, located_version(board).y) == (0, 0)
        record = board.stats.rom.booted  # type: ignore[union-attr]
    assert record is not None
    assert (record.hardware_version, record.unix_time) == (5, 1_700_000_321)
    assert record.values == values  # the whole block, decoded
    block = SystemVariableBootValues.from_bytestring(record.image[384:512])
    assert block[Variable.led_half_period_10_ms] == 7
    assert block[Variable.boot_signature] == 1_700_000_321
    assert (record.length, record.n_blocks) == (29868, 30)
    assert len(plan.messages) == 32


@pytest.fixture(scope="module")
def spinnman_spinn5() -> Iterator[None]:
    """SpiNNMan configured for a SpiNN-5 (its unit-test set-up)."""
    from tests.system.spinnman_kit import spinnman_configured

    with spinnman_configured():
        yield


def their_version(connection: Any, sequence: int) -> Any:
    """SpiNNMan's GetVersion over SpiNNMan's SCAMPConnection, parsed by
    SpiNNMan's response."""
    from spinnman.messages.scp.impl import GetVersion as TheirGetVersion

    request = TheirGetVersion(0, 0, 0)
    request.scp_request_header.sequence = sequence
    connection.send(connection.get_scp_data(request))
    result, seen, data, offset = connection.receive_scp_response(2.0)
    assert seen == sequence
    response = request.get_scp_response()
    response.read_bytestring(data, offset)
    return response.version_info


@pytest.mark.timeout(30)
@pytest.mark.usefixtures("spinnman_spinn5")
def test_spinnmans_boot_brings_up_an_sc_and_mp_spinnman_accepts() -> None:
    from spinnman.connections.udp_packet_connections import (
        BootConnection as TheirBootConnection,
    )
    from spinnman.connections.udp_packet_connections import (
        SCAMPConnection as TheirSCAMPConnection,
    )
    from spinnman.messages.spinnaker_boot import SpinnakerBootMessages
    from spinnman.messages.spinnaker_boot import SystemVariableDefinition as Theirs
    from spinnman.transceiver import base_transceiver

    with cold_board(24, netinit=2.0) as board:
        host, port = board.address
        before = int(time.time())
        messages = SpinnakerBootMessages(extra_boot_values={Theirs.led_0: 1})
        after = int(time.time())
        sender = TheirBootConnection(remote_host=host)  # 0.1 s per frame
        try:
            for message in messages.messages:
                sender.send_boot_message(message)
        finally:
            sender.close()
        assert rom_of(board).wait_until(booted, 10)
        scamp = TheirSCAMPConnection(remote_host=host, remote_port=port)
        try:
            first = their_version(scamp, 1)
            assert (first.x, first.y) == (255, 255)  # network not set up yet
            deadline, sequence = time.monotonic() + 10, 2
            info = first
            while (info.x, info.y) == (255, 255) and time.monotonic() < deadline:
                time.sleep(0.1)  # SpiNNMan's own pace while it waits
                info = their_version(scamp, sequence)
                sequence += 1
        finally:
            scamp.close()
        record = board.stats.rom.booted  # type: ignore[union-attr]
    assert (info.name, info.x, info.y, info.p) == ("SC&MP", 0, 0, 0)
    assert info.version_number == (4, 0, 0)
    assert info.name == base_transceiver._SCAMP_NAME
    assert base_transceiver.BaseTransceiver._is_scamp_version_compabible(
        info.version_number
    )
    assert record is not None and record.hardware_version == 5
    assert record.unix_time is not None and before <= record.unix_time <= after
    assert record.values is not None and record.values[Variable.led_0] == 1
    assert record.values[Variable.is_root_chip] == 1


def all_seen(board: Any, plan: FaultPlan, sent: int) -> bool:
    """Whether the ROM has taken every datagram the faults let through."""
    counts = plan.counts
    delivered = counts.passed + counts.duplicated
    return (
        counts.dropped + counts.passed == sent
        and rom_of(board).stats.datagrams == delivered
    )


@pytest.mark.timeout(30)
def test_a_lossy_boot_takes_a_second_pass_and_the_rom_keeps_what_it_had() -> None:
    # Seeded: 10% of the frames are dropped, duplicated and reordered, and
    # the first pass loses a block (the ninth frame of 32 with seed 0).
    plan = FaultPlan(drop=0.1, duplicate=0.1, reorder=0.1, seed=0)
    with cold_board(28, faults=plan) as board:
        rom = rom_of(board)
        with BootConnection(board.address[0], gap=0.002) as connection:
            sent = connection.boot()
            assert rom.wait_until(lambda _: all_seen(board, plan, 32), 10)
            first = rom.stats
            assert first.state is ROMState.LOADING  # one pass did not boot it
            assert first.blocks_held < 30 and first.early_controls >= 1
            assert (plan.counts.dropped, plan.counts.duplicated) >= (1, 1)
            assert plan.counts.reordered >= 1
            # Again, every frame: the ROM fills the gap and keeps the rest
            # (a pass lossy in its turn may need another, as on a real
            # network).
            passes = 1
            while not booted(rom.stats) and passes < 5:
                connection.send_boot_plan(sent)
                passes += 1
                sent_so_far = 32 * passes
                rom.wait_until(lambda _, n=sent_so_far: all_seen(board, plan, n), 10)
        last = rom.stats
    assert last.state is ROMState.BOOTED and 2 <= passes <= 5
    assert last.blocks_held == 30 and last.boots == 1
    assert last.repeated_blocks >= first.blocks_held  # held: not replaced
    assert last.ignored_starts >= 1  # the second START changed nothing
    assert last.booted is not None and last.booted.length == 29868
    assert last.booted.image == BootImage.load().with_values(last.booted.values)


@pytest.mark.timeout(30)
def test_garbage_on_port_54321_never_stops_the_rom() -> None:
    chance = random.Random(4)
    header = SpinnakerBootMessage(
        SpinnakerBootOpCode.FLOOD_FILL_START, 0, 0, 29
    ).bytestring
    garbage = [
        b"",
        b"\x00",
        header[: BOOT_HEADER.size - 1],
        b"\x00\x02" + header[2:],  # protocol version 2
        b"\x00\x01\x00\x00\x00\x99" + header[6:],  # no such opcode
        header + b"\x01\x02",  # half a word
        bytes(60_000),
        *(chance.randbytes(chance.randrange(1, 1100)) for _ in range(50)),
    ]
    with cold_board(32) as board, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        rom = rom_of(board)
        for datagram in garbage:
            s.sendto(datagram, (board.address[0], BOOT_PORT))
        assert rom.wait_until(lambda stats: stats.datagrams == len(garbage), 10)
        stats = rom.stats
        assert stats.garbage + stats.ignored + stats.frames == len(garbage)
        assert stats.garbage >= 7
        boot(board)
        assert rom.wait_until(booted, 10)
        assert version(board).name == "SC&MP"


@pytest.mark.timeout(30)
def test_frames_closer_than_the_minimum_gap_are_lost() -> None:
    with cold_board(36, min_gap=0.02) as board:
        rom = rom_of(board)
        with BootConnection(board.address[0], gap=0) as connection:
            plan = connection.boot()
            assert rom.wait_until(lambda s: s.datagrams == 32, 10)
            assert rom.stats.gap_drops > 0 and rom.stats.state is not ROMState.BOOTED
            # Paced well apart, a pass or two (the machine may be busy) fills
            # what was lost.
            for _ in range(4):
                connection.send_boot_plan(BootPlan(plan.messages, gap=0.05))
                if rom.wait_until(booted, 2):
                    break
        assert rom.stats.state is ROMState.BOOTED


@pytest.mark.timeout(20)
def test_a_cold_boards_hellos_reach_an_ip_addresses_connection() -> None:
    with first_free(40, lambda host: IPAddressesConnection(host)) as listener:
        here = listener.local_ip_address
        with cold_board(41, hello_to=here) as board:
            assert listener.receive_ip_address(5) == board.address[0]
            assert listener.receive_ip_address(5) == board.address[0]
            boot(board)
            assert rom_of(board).wait_until(booted, 10)
            hellos = rom_of(board).stats.hellos
            while listener.receive_ip_address(0) is not None:
                pass  # those said before the boot
            assert listener.receive_ip_address(0.3) is None  # booted: no more
            assert rom_of(board).stats.hellos == hellos


@pytest.mark.timeout(30)
def test_cold_boards_side_by_side_on_their_own_addresses() -> None:
    boards: list[VirtualBoard] = []
    try:
        for _ in range(3):
            start = 44 if not boards else int(boards[-1].address[0].split(".")[-1]) + 1
            boards.append(cold_board(start))
        hosts = {board.address[0] for board in boards}
        assert len(hosts) == 3
        assert {rom_of(board).address[1] for board in boards} == {BOOT_PORT}
        for board in (boards[0], boards[2]):
            boot(board)
        for board in (boards[0], boards[2]):
            assert rom_of(board).wait_until(booted, 10)
            assert version(board).name == "SC&MP"
        # Booting its neighbours did nothing to the middle one.
        middle = rom_of(boards[1]).stats
        assert middle.state is ROMState.LISTENING and middle.datagrams == 0
        with pytest.raises(ReceiveTimeout):
            version(boards[1], timeout=0.1, retries=0)
    finally:
        for board in boards:
            board.stop()


def test_a_taken_port_54321_is_a_clear_error() -> None:
    from transport import ROMSettings
    from transport.errors import TransportError

    with cold_board(48) as board:
        host = board.address[0]
        with pytest.raises(TransportError, match="an address of its own"):
            VirtualBoard(host=host, booted=False, rom=ROMSettings(hello_to=None))
