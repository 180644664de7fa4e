"""A virtual BMP over real UDP, powering cold virtual boards on 127.0.0.x.

SpiNNMan's BMPConnection and requests get correct answers (version, ADC,
FPGA register, LEDs, RC_ROUTE for an absent board). SpiNNMan 7.4's
SetPower and WriteFPGARegister cannot read their own replies (their
response, BMPOKResponse, is abstract), so the project's are sent for
those. Power off silences a board everywhere; power on puts it back in
its ROM with its memory gone; too hot, it shuts down.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from messages.bmp import (
    BMPBoardAbsentError,
    PowerCommand,
    ReadADC,
    ResetAction,
    ResetBoards,
    SetPower,
    WriteFPGARegister,
)
from messages.errors import InvalidArgumentError
from messages.scp import ReadMemory, WriteMemory
from tests.system.cold import boot, booted, cold_board, rom_of, version
from tests.transport.loopback import BOOT_PORT, first_free
from transport import (
    BMPConnection,
    IPAddressesConnection,
    SCAMPConnection,
    VirtualBMP,
    VirtualBoard,
)
from transport.connections.call import call
from transport.errors import ReceiveTimeout
from transport.virtual.rom import HELLO, ROMState

pytestmark = pytest.mark.timeout(30)
BASE = 0x6000_0000


@pytest.fixture
def frame() -> Iterator[tuple[VirtualBMP, list[VirtualBoard], IPAddressesConnection]]:
    """Two cold boards saying hello to a listener, and their BMP."""
    listener = first_free(60, lambda host: IPAddressesConnection(host))
    boards = [cold_board(61, hello_to=listener.local_ip_address)]
    start = int(boards[0].address[0].rsplit(".", 1)[1]) + 1
    boards.append(cold_board(start, hello_to=listener.local_ip_address))
    bmp = VirtualBMP(boards, power_on_delay=0.2).start()
    try:
        yield bmp, boards, listener
    finally:
        bmp.stop()
        for board in boards:
            board.stop()
        listener.close()


def ours(bmp: VirtualBMP, board: int = 0) -> BMPConnection:
    host, port = bmp.address
    return BMPConnection(remote_host=host, remote_port=port, boards=[board])


def their_call(connection: Any, request: Any, sequence: int) -> Any:
    """A SpiNNMan request over SpiNNMan's connection, read by SpiNNMan."""
    request.scp_request_header.sequence = sequence
    connection.send(connection.get_scp_data(request))
    _, seen, data, offset = connection.receive_scp_response(2.0)
    assert seen == sequence
    response = request.get_scp_response()
    response.read_bytestring(data, offset)
    return response


def test_spinnmans_bmp_requests_get_a_bmps_answers(frame: Any) -> None:
    from spinnman.connections.udp_packet_connections import (
        BMPConnection as TheirBMPConnection,
    )
    from spinnman.exceptions import SpinnmanUnexpectedResponseCodeException
    from spinnman.extended.bmp_set_led import BMPSetLed
    from spinnman.extended.read_adc import ReadADC as TheirReadADC
    from spinnman.messages.scp.enums import LEDAction
    from spinnman.messages.scp.impl import BMPGetVersion, ReadFPGARegister
    from spinnman.model import BMPConnectionData

    bmp, boards, _ = frame
    host, port = bmp.address
    with ours(bmp, 1) as connection:  # SpiNNMan's cannot read this reply
        call(connection, WriteFPGARegister(2, 0x5C, 0x00C0FFEE, 1))
    theirs = TheirBMPConnection(BMPConnectionData(host, [0, 1], port))
    try:
        info = their_call(theirs, BMPGetVersion(1), 1).version_info
        assert (info.name, info.hardware, info.version_number) == (
            "BC&MP",
            "Spin5-BMP",
            (2, 1, 2),
        )
        assert info.p == 1  # the board it answered for
        adc = their_call(theirs, TheirReadADC(0), 2).adc_info
        assert adc.voltage_1_2a == pytest.approx(1.2, abs=0.01)
        assert adc.voltage_1_8 == pytest.approx(1.8, abs=0.01)
        assert adc.voltage_3_3 == pytest.approx(3.3, abs=0.01)
        assert adc.voltage_supply == pytest.approx(12.0, abs=0.01)
        assert (adc.temp_top, adc.temp_btm) == (40.0, 38.0)
        assert adc.temp_ext_0 is None and adc.fan_0 is None
        register = their_call(theirs, ReadFPGARegister(2, 0x5C, 1), 3)
        assert register.fpga_register == 0x00C0FFEE
        their_call(theirs, BMPSetLed([1, 2], LEDAction.ON, [0, 1]), 4)
        assert bmp.leds(0)[1:3] == bmp.leds(1)[1:3] == (True, True)
        with pytest.raises(SpinnmanUnexpectedResponseCodeException, match="RC_ROUTE"):
            their_call(theirs, TheirReadADC(7), 5)
    finally:
        theirs.close()


def test_an_absent_board_answers_rc_route(frame: Any) -> None:
    bmp, _, _ = frame
    with ours(bmp, 9) as connection, pytest.raises(BMPBoardAbsentError, match="9"):
        call(connection, ReadADC(9))
    assert bmp.stats.errors == {"RC_ROUTE": 1}


def read(board: VirtualBoard, size: int) -> bytes:
    host, port = board.address
    with SCAMPConnection(remote_host=host, remote_port=port) as connection:
        return call(connection, ReadMemory((0, 0, 0), BASE, size)).payload


@pytest.mark.timeout(30)
def test_off_is_silent_everywhere_and_on_is_back_in_the_rom(frame: Any) -> None:
    bmp, boards, listener = frame
    board = boards[1]
    rom = rom_of(board)
    boot(board)
    assert rom.wait_until(booted, 10)
    host, port = board.address
    with SCAMPConnection(remote_host=host, remote_port=port) as connection:
        call(connection, WriteMemory((0, 0, 0), BASE, b"kept until power-off"))
    with ours(bmp) as connection:
        call(connection, SetPower(PowerCommand.POWER_OFF, [1]))
        assert not bmp.powered(1) and rom.stats.state is ROMState.OFF
        # Silent on its SCP port ...
        with pytest.raises(ReceiveTimeout):
            version(board, timeout=0.1, retries=1)
        # ... deaf on 54321 ...
        boot(board)
        assert rom.wait_until(lambda s: s.off_drops == 32, 5)
        # ... and mute: once the hellos said before are read, none comes
        # from it (its neighbour, on, goes on saying hello).
        hellos = rom.stats.hellos
        while listener.receive_ip_address(0) is not None:
            pass
        senders = set()
        deadline = time.monotonic() + 0.3
        while (left := deadline - time.monotonic()) > 0:
            senders.add(listener.receive_ip_address(left))
        assert senders <= {boards[0].address[0], None}
        assert boards[0].address[0] in senders  # the listener does hear
        assert rom.stats.hellos == hellos
        rails = call(connection, ReadADC(1)).adc_info
        assert (rails.voltage_1_2a, rails.voltage_1_8) == (0.0, 0.0)
        started = time.monotonic()
        # Sent to board 1's BMP, it answers once board 1's FPGAs are loaded
        # (board 0's would answer at once: its own board is not switched).
        on = SetPower(PowerCommand.POWER_ON, [1], board_to_send_to=1)
        call(connection, on, timeout=2.0)
        assert time.monotonic() - started >= 0.2
    assert bmp.powered(1)
    stats = rom.stats
    assert stats.state is ROMState.LISTENING and stats.blocks_held == 0
    assert stats.power_ons == 2  # made cold, then powered on again
    with pytest.raises(ReceiveTimeout):
        version(board, timeout=0.1, retries=0)  # in its ROM: silent
    assert rom.wait_until(lambda s: s.hellos > hellos, 5)  # saying hello again
    boot(board)
    assert rom.wait_until(booted, 10)
    assert read(board, 20) == bytes(20)  # its memory is gone
    assert rom.stats.boots == 2


def test_too_hot_it_warns_then_shuts_down(frame: Any) -> None:
    bmp, boards, _ = frame
    board = boards[0]
    boot(board)
    assert rom_of(board).wait_until(booted, 10)
    with ours(bmp) as connection:
        bmp.set_temperature(0, 75.0)
        warm = call(connection, ReadADC(0)).adc_info
        assert (warm.temp_top, warm.warning, warm.shutdown) == (75.0, 1 << 8, 0)
        assert version(board).name == "SC&MP"  # still running
        bmp.set_temperature(0, 95.0)  # the over-temperature fault
        hot = call(connection, ReadADC(0)).adc_info
    assert (hot.temp_top, hot.warning, hot.shutdown) == (95.0, 1 << 8, 1 << 8)
    assert hot.voltage_1_2a == 0.0 and not bmp.powered(0)
    assert bmp.stats.shutdowns == 1
    with pytest.raises(ReceiveTimeout):
        version(board, timeout=0.1, retries=0)
    assert bmp.sensors(0) == hot


def test_a_reset_puts_a_booted_board_back_in_its_rom(frame: Any) -> None:
    bmp, boards, _ = frame
    board = boards[0]
    boot(board)
    assert rom_of(board).wait_until(booted, 10)
    with ours(bmp) as connection:
        call(connection, ResetBoards(ResetAction.HOLD, 0))
        assert rom_of(board).stats.state is ROMState.OFF
        call(connection, ResetBoards(ResetAction.RELEASE, 0))
    assert rom_of(board).stats.state is ROMState.LISTENING
    with pytest.raises(ReceiveTimeout):
        version(board, timeout=0.1, retries=0)


def test_a_booted_board_with_a_rom_is_power_cycled_into_it() -> None:
    with cold_board(70, booted=True) as board:
        assert version(board).name == "SC&MP"
        assert rom_of(board).stats.state is ROMState.BOOTED
        with VirtualBMP([board], power_on_delay=0) as bmp, ours(bmp) as connection:
            call(connection, SetPower(PowerCommand.POWER_OFF, 0))
            call(connection, SetPower(PowerCommand.POWER_ON, 0))
        assert rom_of(board).stats.state is ROMState.LISTENING
        assert board.stats.rom is not None and board.stats.rom.booted is None


def test_a_bmp_needs_boards_with_a_boot_rom() -> None:
    plain = VirtualBoard(2, 2)
    try:
        with pytest.raises(InvalidArgumentError, match="no boot ROM"):
            VirtualBMP([plain])
    finally:
        plain.stop()
    with pytest.raises(InvalidArgumentError, match="board"):
        VirtualBMP({24: plain})
    assert HELLO[:2] == b"\x00\x01" and BOOT_PORT == 54321
