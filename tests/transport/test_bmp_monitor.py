"""The virtual BMP as a state machine: datagrams and times in, replies,
their due times and power switches out; no sockets, no clock.

Requests are made by messages.bmp (byte-identical to SpiNNMan's) and
replies read by its responses, and by SpiNNMan's where SpiNNMan can read
them; arguments a BMP refuses are patched into real requests.
"""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from messages.bmp import (
    BMPBoardAbsentError,
    BMPGetVersion,
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
    SetPower,
    WriteFPGARegister,
)
from messages.errors import UnexpectedResponseCodeError
from messages.scp.base import AbstractSCPRequest
from messages.scp.enums import SCPResult
from transport.virtual.bmp_monitor import (
    SPINN5_SENSORS,
    BMPMonitor,
    BoardSlot,
    sensor_status,
)


class Chips:
    """A board's chips, as a BMP switches them: what was done, in order."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def halt(self) -> None:
        self.calls.append("halt")

    def run_rom(self) -> None:
        self.calls.append("rom")


def frame(*numbers: int, delay: float = 0.5) -> tuple[BMPMonitor, dict[int, Chips]]:
    chips = {number: Chips() for number in numbers}
    slots = {
        number: BoardSlot(
            chips[number],
            IPData(f"127.0.0.{20 + number}", "0.0.0.0", "255.0.0.0", udp_port=17893),
        )
        for number in numbers
    }
    bmp = BMPMonitor(
        slots, ip=IPData("127.0.0.19", "0.0.0.0", "255.0.0.0"), power_on_delay=delay
    )
    return bmp, chips


def datagram(request: AbstractSCPRequest[Any], sequence: int = 7) -> bytes:
    request.scp_request_header.sequence = sequence
    request.sdp_header.update_for_send(0, 0)
    return bytes(2) + request.bytestring


def answer(
    bmp: BMPMonitor, request: AbstractSCPRequest[Any], now: float = 0.0
) -> tuple[float, Any]:
    """When the reply is due, and the response that read it."""
    reply = bmp.handle(datagram(request), now)
    assert reply is not None
    due, data = reply
    response = request.get_scp_response()
    response.read_bytestring(data, 2)
    assert struct.unpack_from("<H", data, 12)[0] == 7  # the sequence, echoed
    return due, response


def patched(request: AbstractSCPRequest[Any], argument: int, value: int) -> bytes:
    """A real request's datagram with one argument (1..3) changed."""
    data = bytearray(datagram(request))
    struct.pack_into("<I", data, 14 + 4 * (argument - 1), value)
    return bytes(data)


def result_of(reply: tuple[float, bytes] | None) -> SCPResult:
    assert reply is not None
    return SCPResult(struct.unpack_from("<H", reply[1], 10)[0])


def test_version_is_bc_and_mp_2_1_2_with_frame_and_board() -> None:
    bmp, _ = frame(0, 3)
    bmp.frame = 2
    _, response = answer(bmp, BMPGetVersion(3))
    info = response.version_info
    assert (info.name, info.hardware, info.version_number) == (
        "BC&MP",
        "Spin5-BMP",
        (2, 1, 2),
    )
    assert (info.x, info.y, info.p, info.buffer_size) == (1, 2, 3, 256)


def test_an_absent_board_gets_rc_route() -> None:
    bmp, _ = frame(0, 1)
    with pytest.raises(BMPBoardAbsentError, match="no board 5"):
        answer(bmp, ReadADC(5))
    assert bmp.stats.errors == {"RC_ROUTE": 1}


def test_power_switches_each_board_after_its_delay() -> None:
    bmp, chips = frame(0, 1, 2, delay=2.0)
    due, _ = answer(bmp, SetPower(PowerCommand.POWER_OFF, [0, 2], delay=0.25), 10.0)
    assert due == 10.0  # board 0's own switch is at once
    assert bmp.advance(10.0) == 1 and chips[0].calls == ["halt"]
    assert bmp.next_due == 10.5 and chips[2].calls == []
    bmp.advance(10.5)
    assert chips[2].calls == ["halt"] and chips[1].calls == []
    assert [bmp.slots[n].powered for n in (0, 1, 2)] == [False, True, False]
    # On: held in reset while the FPGAs load, then in its ROM; the reply
    # waits for board 0's.
    due, _ = answer(bmp, SetPower(PowerCommand.POWER_ON, [0, 1, 2]), 20.0)
    assert due == 22.0
    bmp.advance(20.0)
    assert chips[1].calls == ["halt"]  # power again: a reset
    bmp.advance(22.0)
    assert chips[0].calls == ["halt", "halt", "rom"]
    assert chips[1].calls == ["halt", "rom"] and chips[2].calls == [
        "halt",
        "halt",
        "rom",
    ]
    assert bmp.stats.power_ons == 3 and bmp.stats.power_offs == 2


def test_nothing_is_answered_before_a_power_on_is() -> None:
    bmp, _ = frame(0, delay=3.0)
    power, _ = answer(bmp, SetPower(PowerCommand.POWER_ON, 0), 1.0)
    version, _ = answer(bmp, BMPGetVersion(0), 1.5)
    assert power == 4.0 and version == 4.0


def test_a_board_powered_off_reads_0_v_on_its_own_rails() -> None:
    bmp, _ = frame(0, 1)
    answer(bmp, SetPower(PowerCommand.POWER_OFF, 1), 0.0)
    bmp.advance(0.0)
    _, on = answer(bmp, ReadADC(0))
    _, off = answer(bmp, ReadADC(1))
    assert on.adc_info.voltage_1_2a == pytest.approx(1.2, abs=0.01)
    assert on.adc_info.voltage_supply == pytest.approx(12.0, abs=0.01)
    assert on.adc_info.voltage_3_3 == pytest.approx(3.3, abs=0.01)
    rails = (
        off.adc_info.voltage_1_2a,
        off.adc_info.voltage_1_2b,
        off.adc_info.voltage_1_8,
    )
    assert rails == (0.0, 0.0, 0.0)
    assert off.adc_info.voltage_supply == on.adc_info.voltage_supply  # the BMP's
    assert off.adc_info.board_stat.adc[0] == 0xFFFF  # unused stays unused


def test_heat_warns_then_shuts_the_board_down() -> None:
    bmp, chips = frame(0)
    warm = BoardStat(
        SPINN5_SENSORS.adc,
        (75 * 256, 38 * 256, -0x8000, -0x8000),
        SPINN5_SENSORS.t_ext,
        SPINN5_SENSORS.fan,
    )
    bmp.set_sensors(0, warm, 1.0)
    bmp.advance(1.0)
    _, response = answer(bmp, ReadADC(0))
    assert (response.adc_info.warning, response.adc_info.shutdown) == (1 << 8, 0)
    assert bmp.slots[0].powered and chips[0].calls == []
    hot = BoardStat(
        warm.adc, warm.t_int, (-0x8000, 95 * 256, -0x8000, -0x8000), warm.fan
    )
    bmp.set_sensors(0, hot, 2.0)
    bmp.advance(2.0)
    _, response = answer(bmp, ReadADC(0))
    info = response.adc_info
    assert info.temp_ext_1 == 95.0 and info.temp_top == 75.0
    assert (info.warning, info.shutdown) == (1 << 8 | 1 << 13, 1 << 13)
    assert not bmp.slots[0].powered and chips[0].calls == ["halt"]
    assert bmp.stats.shutdowns == 1
    # Powered on while still too hot: off again at once.
    answer(bmp, SetPower(PowerCommand.POWER_ON, 0), 3.0)
    bmp.advance(10.0)
    assert not bmp.slots[0].powered and bmp.stats.shutdowns == 2
    assert sensor_status(SPINN5_SENSORS) == (0, 0)


def test_fpga_registers_are_words_per_fpga_and_board() -> None:
    bmp, _ = frame(0, 1)
    answer(bmp, WriteFPGARegister(2, 0x42, 0xDEADBEEF, 1))
    assert answer(bmp, ReadFPGARegister(2, 0x40, 1))[1].fpga_register == 0xDEADBEEF
    assert answer(bmp, ReadFPGARegister(1, 0x40, 1))[1].fpga_register == 0
    assert answer(bmp, ReadFPGARegister(2, 0x40, 0))[1].fpga_register == 0
    bad = patched(ReadFPGARegister(0, 0, 0), 3, 3)  # FPGA 3
    assert result_of(bmp.handle(bad, 0.0)) is SCPResult.RC_ARG
    long = patched(ReadFPGARegister(0, 0, 0), 2, 260)
    assert result_of(bmp.handle(long, 0.0)) is SCPResult.RC_ARG
    # A power cycle reloads the FPGAs: what was written is gone.
    answer(bmp, SetPower(PowerCommand.POWER_OFF, 1))
    bmp.advance(0.0)
    answer(bmp, SetPower(PowerCommand.POWER_ON, 1, board_to_send_to=1))
    bmp.advance(5.0)
    assert answer(bmp, ReadFPGARegister(2, 0x40, 1))[1].fpga_register == 0


def test_leds_go_on_off_and_over() -> None:
    bmp, _ = frame(0, 1)
    answer(bmp, BMPSetLed([0, 3], LEDAction.ON, [0, 1]))
    answer(bmp, BMPSetLed(3, LEDAction.OFF, 1))
    answer(bmp, BMPSetLed([0, 7], LEDAction.TOGGLE, 0))
    assert bmp.slots[0].leds == [False, False, False, True] + [False] * 3 + [True]
    assert bmp.slots[1].leds == [True] + [False] * 7


def test_resets_hold_release_and_pulse() -> None:
    bmp, chips = frame(0, 1)
    answer(bmp, ResetBoards(ResetAction.HOLD, [0, 1], delay=1.0), 0.0)
    bmp.advance(1.0)
    assert chips[0].calls == chips[1].calls == ["halt"]
    answer(bmp, ResetBoards(ResetAction.RELEASE, 0), 2.0)
    answer(bmp, ResetBoards(ResetAction.PULSE, 1), 2.0)
    answer(bmp, ResetBoards(ResetAction.RELEASE, 1), 2.0)  # not held: nothing
    bmp.advance(2.0)
    assert chips[0].calls == ["halt", "rom"] and chips[1].calls == ["halt", "rom"]
    bad = patched(ResetBoards(ResetAction.PULSE, 0), 1, 3)
    assert result_of(bmp.handle(bad, 0.0)) is SCPResult.RC_ARG
    answer(bmp, SetPower(PowerCommand.POWER_OFF, 0), 3.0)
    answer(bmp, ResetBoards(ResetAction.PULSE, 0), 3.0)
    bmp.advance(3.0)
    assert chips[0].calls == ["halt", "rom", "halt"]  # no power: no reset
    assert bmp.stats.resets == 5


def test_what_it_says_of_the_frame_and_its_network() -> None:
    bmp, _ = frame(0, 1, 3)
    assert answer(bmp, ReadCANStatus())[1].boards == (0, 1, 3)
    vector = answer(bmp, ReadSerialVector(3))[1].serial_vector
    assert vector.serial_number == (0, 3, 0, 0)
    addresses = answer(bmp, ReadIPAddress(1))[1].addresses
    assert addresses.bmp.ip_address == "127.0.0.19"
    assert (addresses.spinnaker.ip_address, addresses.spinnaker.udp_port) == (
        "127.0.0.21",
        17893,
    )
    bad = patched(ReadADC(0), 1, 5)  # BMP_INFO 5: not modelled
    assert result_of(bmp.handle(bad, 0.0)) is SCPResult.RC_ARG
    reply = bmp.handle(bad, 0.0)
    assert reply is not None
    response = ReadADC(0).get_scp_response()
    with pytest.raises(UnexpectedResponseCodeError, match="RC_ARG"):
        response.read_bytestring(reply[1], 2)


def test_a_bad_power_command_and_broken_datagrams() -> None:
    bmp, chips = frame(0)
    bad = patched(SetPower(PowerCommand.POWER_ON, 0), 1, 2)
    assert result_of(bmp.handle(bad, 0.0)) is SCPResult.RC_ARG
    bmp.advance(100.0)
    assert chips[0].calls == []
    unknown = bytearray(datagram(BMPGetVersion(0)))
    unknown[10] = 99  # no such command
    assert result_of(bmp.handle(bytes(unknown), 0.0)) is SCPResult.RC_CMD
    short = datagram(BMPGetVersion(0))[:20]
    assert result_of(bmp.handle(short, 0.0)) is SCPResult.RC_LEN
    for broken in (b"", b"\0\0\x87", bytes(2) + b"\x55" * 12):
        assert bmp.handle(broken, 0.0) is None
    no_reply = bytearray(datagram(BMPGetVersion(0)))
    no_reply[2] = 0x07
    assert bmp.handle(bytes(no_reply), 0.0) is None
    stats = bmp.stats
    assert (stats.received, stats.malformed, stats.replies) == (7, 3, 3)


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=300),
        # A request to board 0, 1 or 2 (absent), a command a BMP knows (or
        # not), then any sequence, arguments and data.
        st.tuples(
            st.sampled_from([0, 1, 2]),
            st.sampled_from([0, 17, 18, 25, 48, 55, 57, 99]),
            st.binary(max_size=280),
        ).map(
            lambda request: (
                bytes([0, 0, 0x87, 0xFF, request[0], 0xFF, 0, 0, 0, 0])
                + struct.pack("<H", request[1])
                + request[2]
            )
        ),
    )
)
def test_no_datagram_stops_it(data: bytes) -> None:
    bmp, _ = frame(0, 1)
    reply = bmp.handle(data, 0.0)
    bmp.advance(1000.0)
    stats = bmp.stats
    assert stats.received == 1
    assert (reply is None) == (stats.replies == 0)
    if reply is not None:
        assert result_of(reply) in SCPResult
    # Still a BMP: a real request gets its answer.
    assert answer(bmp, BMPGetVersion(0), 2000.0)[1].version_info.name == "BC&MP"
