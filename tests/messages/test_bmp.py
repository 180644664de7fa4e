"""BMP requests and replies.

Where SpiNNMan has the request (version, power, LEDs, FPGA registers, ADC)
it is the oracle: the same arguments make the same datagram, and the same
reply bytes parse into the same fields (or both refuse them). Where it has
not (reset, serial vector, CAN status, IP addresses) the layouts are the
BMP's own (spinnaker_tools' bmp_cmd.c and bmp.h), written out here by hand.
"""

from __future__ import annotations

import pickle
import struct
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from spinnman.exceptions import SpinnmanUnexpectedResponseCodeException
from spinnman.extended.bmp_set_led import BMPSetLed as TheirSetLed
from spinnman.extended.read_adc import ReadADC as TheirReadADC
from spinnman.messages.scp import impl as theirs
from spinnman.messages.scp.enums import LEDAction as TheirLEDAction
from spinnman.messages.scp.enums import PowerCommand as TheirPowerCommand
from spinnman.model import ADCInfo as TheirADCInfo

from messages import InvalidArgumentError, MalformedDatagramError
from messages.bmp import (
    ADCInfo,
    BMPBoardAbsentError,
    BMPGetVersion,
    BMPIPAddresses,
    BMPSetLed,
    BoardStat,
    IPData,
    LEDAction,
    PowerCommand,
    ReadADC,
    ReadCANStatus,
    ReadFPGARegister,
    ReadIPAddress,
    ReadSerialVector,
    ResetAction,
    ResetBoards,
    SerialVector,
    SetPower,
    WriteFPGARegister,
)
from messages.errors import UnexpectedResponseCodeError
from messages.scp import SCPResult, VersionInfo

common = settings(max_examples=200, deadline=None)
boards = st.integers(0, 23)
board_sets = boards | st.lists(boards, min_size=1, max_size=24, unique=True)
fpgas = st.integers(0, 2)
words = st.integers(0, 2**32 - 1)
sequences = st.integers(0, 0xFFFF)
delays = st.floats(0, 65.5, allow_nan=False)
leds = st.integers(0, 7) | st.lists(st.integers(0, 7), min_size=1, unique=True)
ACTIONS = {action: TheirLEDAction[action.name] for action in LEDAction}
POWER = {command: TheirPowerCommand[command.name] for command in PowerCommand}


def wire(request: Any, sequence: int) -> bytes:
    request.sdp_header.update_for_send(0, 0)  # as a BMP connection stamps it
    request.scp_request_header.sequence = sequence
    return bytes(request.bytestring)


def same(ours: Any, reference: Any, sequence: int) -> None:
    assert wire(ours, sequence) == wire(reference, sequence)


# -- requests, against SpiNNMan ----------------------------------------------------


@common
@given(boards, sequences)
def test_version(board: int, sequence: int) -> None:
    same(BMPGetVersion(board), theirs.BMPGetVersion(board), sequence)


@common
@given(st.sampled_from(list(PowerCommand)), board_sets, delays, sequences)
def test_power(command: PowerCommand, named: Any, delay: float, sequence: int) -> None:
    same(
        SetPower(command, named, delay=delay),
        theirs.SetPower(POWER[command], named, delay=delay),
        sequence,
    )


@common
@given(fpgas, words, boards, sequences)
def test_read_fpga_register(
    fpga: int, register: int, board: int, sequence: int
) -> None:
    same(
        ReadFPGARegister(fpga, register, board),
        theirs.ReadFPGARegister(fpga, register, board),
        sequence,
    )


@common
@given(fpgas, words, words, boards, sequences)
def test_write_fpga_register(
    fpga: int, address: int, value: int, board: int, sequence: int
) -> None:
    same(
        WriteFPGARegister(fpga, address, value, board),
        theirs.WriteFPGARegister(fpga, address, value, board),
        sequence,
    )


@common
@given(leds, st.sampled_from(list(LEDAction)), board_sets, sequences)
def test_set_led(led: Any, action: LEDAction, named: Any, sequence: int) -> None:
    same(
        BMPSetLed(led, action, named),
        TheirSetLed(led, ACTIONS[action], named),
        sequence,
    )


@common
@given(boards, sequences)
def test_read_adc(board: int, sequence: int) -> None:
    same(ReadADC(board), TheirReadADC(board), sequence)


def test_requests_go_to_chip_0_0_with_the_board_as_cpu() -> None:
    request = ReadADC(17)
    datagram = wire(request, 1)
    flags, tag, destination, source, y, x = struct.unpack_from("<6B", datagram)
    assert (flags, tag, destination & 0x1F, destination >> 5) == (0x87, 0xFF, 17, 0)
    assert (x, y) == (0, 0)
    assert request.board == 17
    # Power goes to board 0's BMP, whichever boards it switches.
    assert SetPower(PowerCommand.POWER_ON, [5, 9]).board == 0


# -- replies, against SpiNNMan -----------------------------------------------------


def reply(result: SCPResult, body: bytes = b"", board: int = 0) -> bytes:
    """A BMP's reply datagram: padding, SDP header, result, sequence, body."""
    sdp = bytes([0x07, 0xFF, 0xFF, board, 0, 0, 0, 0])
    return b"\0\0" + sdp + struct.pack("<2H", result.value, 7) + body


ADC_FIELDS = (
    "voltage_1_2c",
    "voltage_1_2b",
    "voltage_1_2a",
    "voltage_1_8",
    "voltage_3_3",
    "voltage_supply",
    "temp_top",
    "temp_btm",
    "temp_ext_0",
    "temp_ext_1",
    "fan_0",
    "fan_1",
)
#: Readings as a BMP makes them, the missing markers included.
temperatures = st.sampled_from([-0x8000, 0, 25 * 256]) | st.integers(-0x8000, 0x7FFF)
fans = st.sampled_from([-1, 0]) | st.integers(-0x8000, 0x7FFF)


@st.composite
def board_stats(draw: Any) -> bytes:
    adc = draw(st.lists(st.integers(0, 0xFFFF), min_size=8, max_size=8))
    t_int = draw(st.lists(temperatures, min_size=4, max_size=4))
    t_ext = draw(st.lists(temperatures, min_size=4, max_size=4))
    fan = draw(st.lists(fans, min_size=4, max_size=4))
    flags = draw(st.lists(words, min_size=2, max_size=2))
    return struct.pack("<8H4h4h4hII", *adc, *t_int, *t_ext, *fan, *flags)


def fields(info: Any) -> dict[str, Any]:
    return {name: getattr(info, name) for name in ADC_FIELDS}


@common
@given(board_stats(), st.binary(max_size=6), st.binary(max_size=4))
def test_adc_info_is_spinnmans(block: bytes, prefix: bytes, suffix: bytes) -> None:
    data = prefix + block + suffix
    ours = ADCInfo(data, len(prefix))
    assert fields(ours) == fields(TheirADCInfo(data, len(prefix)))
    assert ADCInfo(ours.board_stat.to_bytes()) == ours


@common
@given(board_stats(), boards)
def test_adc_reply_parses_as_spinnmans(block: bytes, board: int) -> None:
    datagram = reply(SCPResult.RC_OK, block, board)
    ours = ReadADC(board).get_scp_response()
    ours.read_bytestring(datagram, 2)
    reference = TheirReadADC(board).get_scp_response()
    reference.read_bytestring(datagram, 2)
    assert fields(ours.adc_info) == fields(reference.adc_info)


def test_adc_info_reads_every_sensor() -> None:
    stat = BoardStat(
        adc=(0xFFFF, 1966, 1966, 1966, 2949, 0xFFFF, 3604, 3277),
        t_int=(40 * 256 + 128, 38 * 256, -0x8000, -0x8000),
        t_ext=(-0x8000, 30 * 256, -0x8000, -0x8000),
        fan=(-1, 1500, -1, -1),
        warning=0x4,
        shutdown=0,
    )
    info = ADCInfo(b"\xaa" + stat.to_bytes(), 1)
    assert info.board_stat == stat
    assert info.voltage_1_2a == pytest.approx(1.2, abs=0.001)
    assert info.voltage_3_3 == pytest.approx(3.3, abs=0.001)
    assert info.voltage_supply == pytest.approx(12.0, abs=0.01)
    assert info.temperatures_internal == (40.5, 38.0, None, None)
    assert info.temperatures_external == (None, 30.0, None, None)
    assert (info.temp_ext_0, info.temp_ext_1) == (None, 30.0)
    assert info.fans == (None, 1500.0, None, None)
    assert (info.warning, info.shutdown) == (4, 0)


@common
@given(
    st.sampled_from(["BC&MP/Spin5-BMP", "BC&MP/Spin4-BMP"]),
    st.from_regex(r"\d\.\d\.\d", fullmatch=True),
    st.integers(0, 255),
    boards,
    words,
)
def test_version_reply_parses_as_spinnmans(
    name: str, version: str, frame: int, board: int, built: int
) -> None:
    # cmd_ver: arg1 = cortex vector << 24 | frame << 16 | CAN id << 8 | board.
    body = struct.pack("<III", (frame << 16) | (board << 8) | board, 0xFFFF0100, built)
    body += f"{name}\0{version}\0".encode()
    datagram = reply(SCPResult.RC_OK, body, board)
    ours = BMPGetVersion(board).get_scp_response()
    ours.read_bytestring(datagram, 2)
    reference = theirs.BMPGetVersion(board).get_scp_response()
    reference.read_bytestring(datagram, 2)
    mine, their = ours.version_info, reference.version_info
    assert (mine.name, mine.hardware) == (their.name, their.hardware)
    assert mine.version_number == their.version_number
    assert (mine.x, mine.y, mine.p, mine.build_date) == (
        their.x,
        their.y,
        their.p,
        their.build_date,
    )
    assert mine.name == "BC&MP"
    assert isinstance(mine, VersionInfo)


@common
@given(fpgas, words, boards, words)
def test_fpga_register_reply_parses_as_spinnmans(
    fpga: int, register: int, board: int, value: int
) -> None:
    datagram = reply(SCPResult.RC_OK, struct.pack("<I", value), board)
    ours = ReadFPGARegister(fpga, register, board).get_scp_response()
    ours.read_bytestring(datagram, 2)
    reference = theirs.ReadFPGARegister(fpga, register, board).get_scp_response()
    reference.read_bytestring(datagram, 2)
    assert ours.fpga_register == reference.fpga_register == value


#: Replies that carry only a result. SpiNNMan 7.4 cannot read the first two
#: (their response, BMPOKResponse, is abstract: get_scp_response raises
#: TypeError), so only the LED's is compared with its.
OK_ONLY: list[Callable[[], Any]] = [
    lambda: SetPower(PowerCommand.POWER_OFF, 3),
    lambda: WriteFPGARegister(0, 0x40, 1, 3),
    lambda: BMPSetLed(1, LEDAction.ON, 3),
    lambda: ResetBoards(ResetAction.PULSE, 3),
]
ERRORS = [result for result in SCPResult if result is not SCPResult.RC_OK]


@pytest.mark.parametrize("make", OK_ONLY)
@pytest.mark.parametrize("result", [SCPResult.RC_OK, *ERRORS])
def test_ok_replies_are_accepted_and_errors_refused(
    make: Callable[[], Any], result: SCPResult
) -> None:
    response = make().get_scp_response()
    datagram = reply(result, board=3)
    if result is SCPResult.RC_OK:
        response.read_bytestring(datagram, 2)
        assert response.value is True
        return
    with pytest.raises(UnexpectedResponseCodeError, match=result.name):
        response.read_bytestring(datagram, 2)


@pytest.mark.parametrize("result", [SCPResult.RC_OK, *ERRORS])
def test_led_replies_are_read_as_spinnman_reads_them(result: SCPResult) -> None:
    datagram = reply(result, board=3)
    mine = BMPSetLed(1, LEDAction.ON, 3).get_scp_response()
    their = TheirSetLed(1, TheirLEDAction.ON, 3).get_scp_response()
    if result is SCPResult.RC_OK:
        mine.read_bytestring(datagram, 2)
        their.read_bytestring(datagram, 2)
        return
    with pytest.raises(UnexpectedResponseCodeError, match=result.name):
        mine.read_bytestring(datagram, 2)
    with pytest.raises(SpinnmanUnexpectedResponseCodeException):
        their.read_bytestring(datagram, 2)


def test_an_absent_board_is_named() -> None:
    response = ReadADC(7).get_scp_response()
    with pytest.raises(BMPBoardAbsentError) as caught:
        response.read_bytestring(reply(SCPResult.RC_ROUTE, board=7), 2)
    error = caught.value
    assert "no board 7" in str(error) and "RC_ROUTE" in str(error)
    assert (error.board, error.result) == (7, SCPResult.RC_ROUTE)
    assert isinstance(error, UnexpectedResponseCodeError)
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), str(copy), copy.board) == (type(error), str(error), 7)


SHORT: list[Callable[[], Any]] = [
    lambda: ReadADC(0),
    lambda: ReadFPGARegister(0, 0, 0),
    lambda: ReadSerialVector(0),
    lambda: ReadCANStatus(),
    lambda: ReadIPAddress(0),
    lambda: BMPGetVersion(0),
]


@pytest.mark.parametrize("make", SHORT)
def test_short_replies_are_malformed(make: Callable[[], Any]) -> None:
    response = make().get_scp_response()
    with pytest.raises(MalformedDatagramError):
        response.read_bytestring(reply(SCPResult.RC_OK, b"\1\2\3"), 2)


# -- what SpiNNMan has not: laid out as bmp_cmd.c does -------------------------------


def arguments(request: Any) -> tuple[int, int, int, int]:
    """(command, arg1, arg2, arg3) of a request's datagram."""
    command, _, *args = struct.unpack_from("<2H3I", wire(request, 0), 8)
    return command, *args


@common
@given(st.sampled_from(list(ResetAction)), board_sets, st.booleans(), delays)
def test_reset(action: ResetAction, named: Any, fpgas: bool, delay: float) -> None:
    request = ResetBoards(action, named, fpgas=fpgas, delay=delay)
    command, arg1, arg2, arg3 = arguments(request)
    listed = [named] if isinstance(named, int) else named
    assert command == 55
    assert arg1 == int(delay * 1000) << 16 | int(fpgas) << 2 | action.value
    assert arg2 == sum(1 << board for board in listed)
    assert arg3 == 0
    assert request.board == min(listed)
    assert (arg1 & 0xFB) <= 2  # what cmd_reset accepts


@given(st.sampled_from(list(PowerCommand)), delays)
def test_power_is_what_cmd_power_accepts(command: PowerCommand, delay: float) -> None:
    _, arg1, _, _ = arguments(SetPower(command, 0, delay=delay))
    assert (arg1 & 255) == command.value <= 1
    assert arg1 >> 16 == int(delay * 1000)


def test_info_requests_name_their_block() -> None:
    assert arguments(ReadSerialVector(4))[:2] == (48, 0)
    assert arguments(ReadCANStatus())[:2] == (48, 2)
    assert arguments(ReadADC(4))[:2] == (48, 3)
    assert arguments(ReadIPAddress(4))[:2] == (48, 4)
    assert ReadCANStatus().board == 0


def test_serial_vector() -> None:
    # hw_ver, LPC1768 serial (4 words), flash_buf, &board_stat, cortex_vec.
    body = struct.pack("<8I", 5, 1, 2, 3, 4, 0x10000000, 0x10000400, 0x10000)
    response = ReadSerialVector(2).get_scp_response()
    response.read_bytestring(reply(SCPResult.RC_OK, body, 2), 2)
    vector = response.serial_vector
    assert vector == SerialVector(5, (1, 2, 3, 4), 0x10000000, 0x10000400, 0x10000)
    assert vector.to_bytes() == body


def test_can_status() -> None:
    status = bytes([1, 1, 0, 1] + [0] * 20)
    response = ReadCANStatus().get_scp_response()
    response.read_bytestring(reply(SCPResult.RC_OK, status), 2)
    assert response.can_status == status
    assert response.boards == (0, 1, 3)


def test_ip_addresses() -> None:
    def ip_data_t(flags: int, mac: bytes, ip: bytes, port: int) -> bytes:
        # flags, mac_addr[6], ip_addr[4], gw_addr[4], net_mask[4], udp_port,
        # three words of padding.
        gateway, mask = bytes([10, 2, 0, 1]), bytes([255, 255, 0, 0])
        return (
            struct.pack("<H", flags)
            + mac
            + ip
            + gateway
            + mask
            + (struct.pack("<H", port) + bytes(10))
        )

    bmp = ip_data_t(0x4000, bytes([0, 0, 0xA4, 1, 0, 8]), bytes([10, 2, 1, 8]), 0)
    spin = ip_data_t(0, bytes([0, 0, 0xA4, 1, 0, 9]), bytes([10, 2, 1, 9]), 17893)
    assert len(bmp) == len(spin) == 32
    response = ReadIPAddress(1).get_scp_response()
    response.read_bytestring(reply(SCPResult.RC_OK, bmp + spin, 1), 2)
    addresses = response.addresses
    assert addresses.bmp == IPData(
        "10.2.1.8", "10.2.0.1", "255.255.0.0", bytes([0, 0, 0xA4, 1, 0, 8]), 0, 0x4000
    )
    assert addresses.spinnaker.ip_address == "10.2.1.9"
    assert addresses.spinnaker.udp_port == 17893
    assert addresses == BMPIPAddresses(addresses.bmp, addresses.spinnaker)
    assert addresses.to_bytes() == bmp + spin


# -- arguments and resending ---------------------------------------------------------

BAD: list[tuple[Callable[[], Any], str]] = [
    (lambda: BMPGetVersion(24), "board"),
    (lambda: BMPGetVersion(-1), "board"),
    (lambda: ReadADC(True), "board"),
    (lambda: SetPower(PowerCommand.POWER_ON, []), "boards"),
    (lambda: SetPower(PowerCommand.POWER_ON, [0, 24]), "board"),
    (lambda: SetPower(PowerCommand.POWER_ON, "0"), "board"),  # type: ignore[arg-type]
    (lambda: SetPower(1, 0), "power_command"),  # type: ignore[arg-type]
    (lambda: SetPower(PowerCommand.POWER_ON, 0, delay=65.536), "delay"),
    (lambda: SetPower(PowerCommand.POWER_ON, 0, delay=-0.001), "delay"),
    (lambda: SetPower(PowerCommand.POWER_ON, 0, delay=float("nan")), "delay"),
    (lambda: ReadFPGARegister(3, 0, 0), "fpga_num"),
    (lambda: ReadFPGARegister(0, 2**32, 0), "register"),
    (lambda: WriteFPGARegister(0, 0, 2**32, 0), "value"),
    (lambda: BMPSetLed(8, LEDAction.ON, 0), "led"),
    (lambda: BMPSetLed([], LEDAction.ON, 0), "led"),
    (lambda: BMPSetLed(0, 3, 0), "action"),  # type: ignore[arg-type]
    (lambda: ResetBoards(2, 0), "action"),  # type: ignore[arg-type]
    (lambda: BoardStat((0,) * 7, (0,) * 4, (0,) * 4, (0,) * 4), "adc"),
    (lambda: BoardStat((0,) * 8, (0,) * 4, (0,) * 4, (-1,) * 4, -1), "board_stat"),
]


@pytest.mark.parametrize(("make", "name"), BAD)
def test_bad_arguments_are_refused_by_name(make: Callable[[], Any], name: str) -> None:
    with pytest.raises(InvalidArgumentError, match=f"^{name}="):
        make()


def test_what_may_be_resent() -> None:
    """A second power-on or reset puts a board booted in between back in its
    ROM; a second toggle undoes the first; the rest may go twice."""
    assert not SetPower(PowerCommand.POWER_ON, 0).may_resend
    assert not SetPower(PowerCommand.POWER_OFF, 0).may_resend
    assert not ResetBoards(ResetAction.PULSE, 0).may_resend
    assert not BMPSetLed([0, 1], LEDAction.TOGGLE, 0).may_resend
    assert BMPSetLed([0, 1], LEDAction.ON, 0).may_resend
    assert BMPSetLed(7, LEDAction.OFF, 0).may_resend
    for request in (
        BMPGetVersion(0),
        ReadADC(0),
        ReadFPGARegister(0, 0, 0),
        WriteFPGARegister(0, 0, 0, 0),
        ReadSerialVector(0),
        ReadCANStatus(),
        ReadIPAddress(0),
    ):
        assert request.may_resend, request


def test_duplicate_boards_are_one_board() -> None:
    _, _, mask, _ = arguments(SetPower(PowerCommand.POWER_ON, [2, 2, 5]))
    assert mask == 0b100100
