"""The board's monitor, driven with SpiNNMan's own requests and parsers."""

from __future__ import annotations

import random
import struct
from typing import Any

import pytest
from spinnman.constants import IPTAG_TIME_OUT_WAIT_TIMES
from spinnman.exceptions import SpinnmanUnexpectedResponseCodeException
from spinnman.messages.scp import impl as theirs
from spinnman.messages.scp.enums import Signal as TheirSignal
from spinnman.model.enums import CPUState as TheirCPUState

from messages.scp import (
    CPUState,
    FillRequest,
    GetVersion,
    ReadMemory,
    SCPResult,
    WriteMemory,
)
from transport.virtual.monitor import BoardMonitor

SENDER = ("127.0.0.1", 40000)


def datagram(request: Any, sequence: int = 7) -> bytes:
    request.sdp_header.update_for_send(0, 0)
    request.scp_request_header.sequence = sequence
    return b"\0\0" + bytes(request.bytestring)


def ask(monitor: BoardMonitor, request: Any, sequence: int = 7) -> Any:
    """Run a SpiNNMan request through the monitor, parse with SpiNNMan."""
    reply = monitor.handle(datagram(request, sequence), SENDER)
    assert reply is not None
    assert struct.unpack_from("<H", reply, 12)[0] == sequence
    response = request.get_scp_response()
    response.read_bytestring(reply, 2)
    return response


def result_of(monitor: BoardMonitor, data: bytes) -> SCPResult:
    reply = monitor.handle(data, SENDER)
    assert reply is not None
    return SCPResult(struct.unpack_from("<H", reply, 10)[0])


@pytest.fixture
def monitor() -> BoardMonitor:
    return BoardMonitor(4, 3)


def test_spinnman_reads_its_version(monitor: BoardMonitor) -> None:
    info = ask(monitor, theirs.GetVersion(2, 1, 0)).version_info
    assert (info.name, info.hardware) == ("SC&MP", "Virtual")
    assert info.version_number == (4, 0, 0)
    assert (info.x, info.y, info.p) == (2, 1, 0)
    core = ask(monitor, theirs.GetVersion(2, 1, 5)).version_info
    assert (core.name, core.p) == ("SARK", 5)


def test_spinnman_writes_and_reads_back(monitor: BoardMonitor) -> None:
    rng = random.Random(1)
    for _ in range(200):
        size = rng.randint(1, 256)
        address = 0x6000_0000 + rng.randrange(0, 1 << 16)
        data = rng.randbytes(size)
        chip = (rng.randrange(4), rng.randrange(3), 0)
        ask(monitor, theirs.WriteMemory(chip, address, data))
        response = ask(monitor, theirs.ReadMemory(chip, address, size))
        assert bytes(response.data[response.offset :]) == data


def test_unwritten_memory_reads_zero_and_chips_are_separate(
    monitor: BoardMonitor,
) -> None:
    ask(monitor, theirs.WriteMemory((1, 1, 0), 0x1000, b"\xff" * 8))
    response = ask(monitor, theirs.ReadMemory((1, 2, 0), 0x1000, 8))
    assert bytes(response.data[response.offset :]) == bytes(8)
    assert monitor.memory.bytes_stored == 4096


def test_fill(monitor: BoardMonitor) -> None:
    ask(monitor, theirs.FillRequest(0, 0, 0x6000_0FF8, 0x04030201, 16))
    response = ask(monitor, theirs.ReadMemory((0, 0, 0), 0x6000_0FF4, 24))
    assert bytes(response.data[response.offset :]) == (
        bytes(4) + bytes([1, 2, 3, 4]) * 4 + bytes(4)
    )


def test_ip_tags(monitor: BoardMonitor) -> None:
    ask(monitor, theirs.IPTagSet(0, 0, [10, 1, 2, 3], 5000, 3, strip=True))
    tag = ask(monitor, theirs.IPTagGet(0, 0, 3))
    assert (bytes(tag.ip_address), tag.port) == (bytes([10, 1, 2, 3]), 5000)
    assert tag.in_use and tag.strip_sdp
    ask(monitor, theirs.IPTagSet(0, 0, [0, 0, 0, 0], 0, 4, use_sender=True))
    assert monitor.ip_tags[4].port == SENDER[1]
    ask(monitor, theirs.IPTagClear(0, 0, 3))
    assert not ask(monitor, theirs.IPTagGet(0, 0, 3)).in_use


def test_signals_and_counts(monitor: BoardMonitor) -> None:
    monitor.load_app(17, [(0, 0, 1), (0, 0, 2), (1, 0, 3)])
    ready = theirs.CountState(0, 0, 17, TheirCPUState.READY)
    assert ask(monitor, ready).count == 3
    ask(monitor, theirs.SendSignal(17, TheirSignal.START))
    running = theirs.CountState(0, 0, 17, TheirCPUState.RUNNING)
    assert ask(monitor, running).count == 3
    assert monitor.app_cores[17][(1, 0, 3)] is CPUState.RUNNING


def test_sdram_heap(monitor: BoardMonitor) -> None:
    first = ask(monitor, theirs.SDRAMAlloc(1, 1, 9, 1000)).base_address
    second = ask(monitor, theirs.SDRAMAlloc(1, 1, 9, 1000)).base_address
    assert 0x6000_0000 <= first < second
    tagged = ask(monitor, theirs.SDRAMAlloc(1, 1, 9, 64, tag=5)).base_address
    again = ask(monitor, theirs.SDRAMAlloc(1, 1, 9, 64, tag=5)).base_address
    assert tagged == again  # a resent tagged allocation finds the first
    ask(monitor, theirs.SDRAMDeAlloc(1, 1, base_address=first))
    freed = ask(monitor, theirs.SDRAMDeAlloc(1, 1, app_id=9))
    assert freed.number_of_blocks_freed == 2
    with pytest.raises(SpinnmanUnexpectedResponseCodeException):
        ask(monitor, theirs.SDRAMDeAlloc(1, 1, base_address=first))
    with pytest.raises(Exception, match="Could not allocate"):
        ask(monitor, theirs.SDRAMAlloc(1, 1, 9, 0xFFFF_FFF0))


def test_chip_outside_grid_is_a_routing_error(monitor: BoardMonitor) -> None:
    assert result_of(monitor, datagram(GetVersion(4, 0, 0))) is SCPResult.RC_ROUTE
    assert result_of(monitor, datagram(ReadMemory((0, 3, 0), 0, 4))) is (
        SCPResult.RC_ROUTE
    )


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d[:4] + bytes([0x12]) + d[5:], SCPResult.RC_CPU),  # core 18
        (lambda d: d[:4] + bytes([0x20]) + d[5:], SCPResult.RC_PORT),  # port 1
        (lambda d: d[:10] + b"\x63\x00" + d[12:], SCPResult.RC_CMD),  # cmd 99
        (lambda d: d[:20], SCPResult.RC_LEN),  # no args
        (lambda d: d[:18] + struct.pack("<I", 0) + d[22:], SCPResult.RC_ARG),
        (lambda d: d[:18] + struct.pack("<I", 257) + d[22:], SCPResult.RC_ARG),
        (lambda d: d[:22] + struct.pack("<I", 7) + d[26:], SCPResult.RC_ARG),
        (lambda d: d[:22] + struct.pack("<I", 2) + d[26:], SCPResult.RC_ARG),
    ],
)
def test_bad_reads_get_board_error_codes(
    monitor: BoardMonitor, mutate: Any, expected: SCPResult
) -> None:
    good = datagram(ReadMemory((0, 0, 0), 0x6000_0001, 3))
    assert result_of(monitor, good) is SCPResult.RC_OK
    assert result_of(monitor, mutate(good)) is expected
    assert monitor.stats.errors[expected.name] == 1


def test_write_with_wrong_data_length(monitor: BoardMonitor) -> None:
    good = datagram(WriteMemory((0, 0, 0), 0x6000_0000, bytes(8)))
    assert result_of(monitor, good[:-1]) is SCPResult.RC_LEN
    assert result_of(monitor, good + b"x") is SCPResult.RC_LEN


def test_unaligned_fill_is_an_argument_error(monitor: BoardMonitor) -> None:
    good = datagram(FillRequest(0, 0, 0x6000_0000, 1, 8))
    bad = good[:14] + struct.pack("<I", 0x6000_0002) + good[18:]
    assert result_of(monitor, bad) is SCPResult.RC_ARG


def test_undecodable_datagrams_are_dropped_and_counted(monitor: BoardMonitor) -> None:
    assert monitor.handle(b"", SENDER) is None
    assert monitor.handle(b"\0\0\x87", SENDER) is None
    assert monitor.handle(b"\0\0\x55" + bytes(30), SENDER) is None
    assert monitor.stats.malformed == 3


def test_reply_not_expected_runs_silently(monitor: BoardMonitor) -> None:
    request = datagram(WriteMemory((0, 0, 0), 0x100, b"abcd"))
    silent = request[:2] + b"\x07" + request[3:]
    assert monitor.handle(silent, SENDER) is None
    assert monitor.stats.silent == 1
    assert monitor.memory.read(0, 0x100, 4) == b"abcd"


def test_memory_cap_answers_buffer_error() -> None:
    monitor = BoardMonitor(1, 1, memory_limit=8192)
    for page in range(2):
        request = datagram(WriteMemory((0, 0, 0), page << 12, b"x"))
        assert result_of(monitor, request) is SCPResult.RC_OK
    request = datagram(WriteMemory((0, 0, 0), 5 << 12, b"x"))
    assert result_of(monitor, request) is SCPResult.RC_BUF


def test_replies_swap_addresses(monitor: BoardMonitor) -> None:
    request = GetVersion(1, 2, 3)
    request.sdp_header.update_for_send(9, 8)
    request.scp_request_header.sequence = 1
    reply = monitor.handle(b"\0\0" + request.bytestring, SENDER)
    assert reply is not None
    assert reply[2] == 0x07  # no reply to a reply
    assert reply[3] == 0xFF  # the request's tag
    assert reply[4] == request.bytestring[3]  # back to the host's port
    assert (reply[6], reply[7]) == (8, 9)  # to the sender's chip
    assert (reply[8], reply[9]) == (2, 1)  # from the chip asked


def test_fuzzed_datagrams_are_all_accounted_for(monitor: BoardMonitor) -> None:
    rng = random.Random(2)
    seeds = [
        datagram(r)
        for r in (
            ReadMemory((0, 0, 0), 0x6000_0000, 256),
            GetVersion(1, 1, 1),
            WriteMemory((1, 0, 0), 0x6000_0000, bytes(64)),
            FillRequest(0, 0, 0x6000_0000, 5, 64),
        )
    ]
    for index in range(20_000):
        if index % 2:
            data = rng.randbytes(rng.randrange(0, 300))
        else:
            spoilt = bytearray(rng.choice(seeds))
            for _ in range(rng.randint(1, 4)):
                spoilt[rng.randrange(len(spoilt))] = rng.randrange(256)
            data = bytes(spoilt[: rng.randrange(len(spoilt) + 1)])
        monitor.handle(data, SENDER)
    stats = monitor.stats
    assert stats.requests == 20_000
    assert stats.replies + stats.silent + stats.malformed == stats.requests
    assert sum(stats.errors.values()) > 5_000
    assert result_of(monitor, seeds[1]) is SCPResult.RC_OK


def test_tag_timeout_answers_the_tag_table_as_sc_and_mp_does(
    monitor: BoardMonitor,
) -> None:
    """SpiNNMan's Transceiver sets the transient tags' timeout second thing
    on coming up and parses a 4-byte reply (an empty one raised)."""
    info = ask(
        monitor, theirs.IPTagSetTTO(0, 0, IPTAG_TIME_OUT_WAIT_TIMES.TIMEOUT_640_ms)
    )
    assert (info.transient_timeout, info.pool_size, info.fixed_size) == (9, 8, 8)
    info = ask(
        monitor, theirs.IPTagSetTTO(0, 0, IPTAG_TIME_OUT_WAIT_TIMES.TIMEOUT_2560_ms)
    )
    assert info.transient_timeout == 7  # the one set before: the reply says the old


def test_requests_to_this_chip_are_answered_by_the_root_chip(
    monitor: BoardMonitor,
) -> None:
    """SpiNNMan takes a reply's source as the chip that answered."""
    request = theirs.GetChipInfo(255, 255)
    reply = monitor.handle(datagram(theirs.GetVersion(255, 255, 0)), SENDER)
    assert reply is not None and (reply[8], reply[9]) == (0, 0)
    busy = monitor.error_reply(datagram(request), SCPResult.RC_P2P_BUSY)
    assert busy is not None and (busy[8], busy[9]) == (0, 0)


def test_every_tag_of_the_table_reads_and_each_entry_is_32_bytes(
    monitor: BoardMonitor,
) -> None:
    """SpiNNMan's get_tags reads the 8 fixed and 8 transient tags."""
    ask(monitor, theirs.IPTagSet(0, 0, [10, 0, 0, 9], 5000, 7))
    for tag in range(16):
        assert ask(monitor, theirs.IPTagGet(0, 0, tag)).in_use is (tag == 7)
    request = datagram(theirs.IPTagGet(0, 0, 6))
    many = bytearray(request)
    many[18:22] = (2).to_bytes(4, "little")  # arg2: two tags from 6
    reply = monitor.handle(bytes(many), SENDER)
    assert reply is not None and len(reply) == 14 + 2 * 32
    assert reply[14 + 32 : 14 + 36] == bytes([10, 0, 0, 9])
    assert result_of(monitor, datagram(theirs.IPTagGet(0, 0, 16))) is SCPResult.RC_ARG


def test_reverse_tags_and_tags_to_the_sender(monitor: BoardMonitor) -> None:
    ask(monitor, theirs.ReverseIPTagSet(0, 0, 1, 2, 3, 23456, 2, 5))
    tag = ask(monitor, theirs.IPTagGet(0, 0, 2))
    assert tag.in_use and tag.is_reverse and tag.strip_sdp
    assert (tag.rx_port, tag.spin_chip_x, tag.spin_chip_y) == (23456, 1, 2)
    assert (tag.spin_cpu, tag.spin_port) == (3, 5)
    assert 2 not in monitor.forward_tags  # traffic goes to hosts, not here
    ask(monitor, theirs.IPTagSet(0, 0, [0, 0, 0, 0], 5000, 3))
    assert (monitor.ip_tags[3].host, monitor.ip_tags[3].port) == (
        bytes([127, 0, 0, 1]),
        5000,
    )
