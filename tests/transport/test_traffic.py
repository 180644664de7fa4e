"""TagTraffic: sans-IO with explicit times and fake tags, plus one run of a
real VirtualBoard streaming to an IP-tagged UDP socket on 127.0.0.1."""

from __future__ import annotations

import math
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from messages import SDPFlag, SDPMessage
from messages.errors import InvalidArgumentError
from messages.scp import IPTagSet
from transport import SCAMPConnection, VirtualBoard
from transport.connections.call import call
from transport.virtual.traffic import TagTraffic

COUNTER = struct.Struct("<I")
LOCALHOST = b"\x7f\x00\x00\x01"


@dataclass
class FakeTag:
    host: bytes
    port: int
    strip: bool


def stripped(port: int = 5000, host: bytes = LOCALHOST) -> FakeTag:
    return FakeTag(host, port, True)


def framed(port: int = 5000, host: bytes = LOCALHOST) -> FakeTag:
    return FakeTag(host, port, False)


def counter_of(datagram: bytes, strip: bool) -> int:
    (counter,) = COUNTER.unpack_from(datagram, 0 if strip else 10)
    return int(counter)


def run(
    traffic: TagTraffic, tags: dict[int, FakeTag], times: list[float]
) -> list[tuple[bytes, tuple[str, int]]]:
    out: list[tuple[bytes, tuple[str, int]]] = []
    for now in times:
        out.extend(traffic.due(tags, now))
    return out


# -- rate --------------------------------------------------------------------


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    ("rate", "step"),
    [
        (1000.0, 0.001),
        (1000.0, 0.0037),
        (2000.0, 0.0005),
        (333.0, 0.01),
        (50.0, 0.003),
        (10_000.0, 0.0011),
    ],
)
def test_count_over_time_is_rate_times_elapsed(rate: float, step: float) -> None:
    traffic = TagTraffic(rate, burst=10**9)
    tags = {1: stripped()}
    start = 1234.5
    times = [start + i * step for i in range(int(2.0 / step) + 1)]
    out = run(traffic, tags, times)
    elapsed = times[-1] - start
    assert abs(len(out) - rate * elapsed) <= 1


@pytest.mark.timeout(20)
def test_rate_holds_at_every_instant_with_irregular_steps() -> None:
    rate = 700.0
    traffic = TagTraffic(rate, burst=10**9)
    tags = {3: stripped()}
    steps = [0.0003, 0.0071, 0.0, 0.0125, 0.0009, 0.0333, 0.0001, 0.002]
    now, start, total = 10.0, 10.0, 0
    total += len(traffic.due(tags, now))
    for i in range(600):
        now += steps[i % len(steps)]
        total += len(traffic.due(tags, now))
        # Never ahead of the rate, never more than one behind.
        assert rate * (now - start) - 1 <= total <= rate * (now - start) + 1e-6


@pytest.mark.timeout(20)
def test_first_call_sends_nothing_and_second_sends_what_fell_due() -> None:
    # Times are multiples of 1/128 s, so the arithmetic is exact.
    traffic = TagTraffic(128.0)
    tags = {1: stripped()}
    assert traffic.due(tags, 50.0) == []
    assert traffic.next_due(50.0) == 50.0 + 1 / 128
    assert len(traffic.due(tags, 50.0 + 1 / 128)) == 1
    assert len(traffic.due(tags, 50.0 + 5 / 128)) == 4


@pytest.mark.timeout(20)
def test_next_due_says_when_the_next_datagram_falls_due() -> None:
    traffic = TagTraffic(200.0)
    tags = {1: stripped()}
    assert traffic.next_due(7.0) == 7.0  # never called: due now
    traffic.due(tags, 7.0)
    traffic.due(tags, 7.0025)  # half a datagram of credit
    due_at = traffic.next_due(7.0025)
    assert due_at == pytest.approx(7.005)
    assert traffic.due(tags, due_at - 1e-6) == []
    assert len(traffic.due(tags, due_at + 1e-9)) == 1


@pytest.mark.timeout(20)
def test_every_tag_gets_the_full_rate() -> None:
    rate = 500.0
    traffic = TagTraffic(rate, burst=10**9)
    tags = {1: stripped(6001), 4: framed(6004), 7: stripped(6007)}
    times = [i * 0.002 for i in range(501)]
    out = run(traffic, tags, times)
    by_port: dict[int, int] = {}
    for _, (_, port) in out:
        by_port[port] = by_port.get(port, 0) + 1
    assert set(by_port) == {6001, 6004, 6007}
    for count in by_port.values():
        assert abs(count - rate * 1.0) <= 1


# -- counters and framing --------------------------------------------------


@pytest.mark.timeout(20)
def test_per_tag_counters_start_at_zero_and_increase_by_one() -> None:
    traffic = TagTraffic(1000.0)
    tags = {2: stripped(7002), 5: framed(7005)}
    seen: dict[int, list[int]] = {7002: [], 7005: []}
    for i in range(300):
        for datagram, (_, port) in traffic.due(tags, i * 0.0013):
            seen[port].append(
                counter_of(datagram, tags[2 if port == 7002 else 5].strip)
            )
    for numbers in seen.values():
        assert numbers == list(range(len(numbers)))
        assert len(numbers) > 300
    assert traffic.sent == {2: len(seen[7002]), 5: len(seen[7005])}


@pytest.mark.timeout(20)
def test_a_tag_added_later_counts_from_zero() -> None:
    traffic = TagTraffic(1000.0)
    tags = {1: stripped(8001)}
    run(traffic, tags, [i * 0.01 for i in range(10)])
    assert traffic.sent[1] > 0
    before = traffic.sent[1]
    tags[6] = stripped(8006)
    out = run(traffic, tags, [0.1 + i * 0.01 for i in range(10)])
    new = [counter_of(d, True) for d, (_, port) in out if port == 8006]
    old = [counter_of(d, True) for d, (_, port) in out if port == 8001]
    assert new == list(range(len(new))) and new
    assert old == list(range(before, before + len(old)))


@pytest.mark.timeout(20)
@pytest.mark.parametrize("payload_size", [4, 16, 100, 256])
def test_strip_true_sends_the_payload_only(payload_size: int) -> None:
    traffic = TagTraffic(1000.0, payload_size)
    tags = {3: FakeTag(bytes([10, 1, 2, 3]), 4321, True)}
    traffic.due(tags, 0.0)
    out = traffic.due(tags, 0.005)
    assert len(out) == 5
    for number, (datagram, address) in enumerate(out):
        assert address == ("10.1.2.3", 4321)
        assert len(datagram) == payload_size
        assert counter_of(datagram, True) == number
        assert datagram[4:] == bytes(payload_size - 4)


@pytest.mark.timeout(20)
def test_strip_false_sends_padding_and_an_sdp_header() -> None:
    traffic = TagTraffic(1000.0, 24, source=(2, 3, 4))
    tags = {6: FakeTag(bytes([192, 168, 240, 9]), 17894, False)}
    traffic.due(tags, 0.0)
    out = traffic.due(tags, 0.003)
    assert len(out) == 3
    for number, (datagram, address) in enumerate(out):
        assert address == ("192.168.240.9", 17894)
        assert len(datagram) == 2 + 8 + 24
        assert datagram[:2] == b"\0\0"
        assert datagram[2] == 0x07
        assert datagram[3] == 6
        message = SDPMessage.from_bytestring(datagram, 2)
        header = message.sdp_header
        assert header.flags is SDPFlag.REPLY_NOT_EXPECTED
        assert header.tag == 6
        assert (header.source_chip_x, header.source_chip_y, header.source_cpu) == (
            2,
            3,
            4,
        )
        assert COUNTER.unpack_from(message.payload)[0] == number
        assert message.payload[4:] == bytes(20)


@pytest.mark.timeout(20)
def test_counter_wraps_at_32_bits() -> None:
    traffic = TagTraffic(1000.0)
    tags = {1: stripped()}
    traffic.sent[1] = 0xFFFF_FFFE
    traffic.due(tags, 0.0)
    out = traffic.due(tags, 0.004)
    assert [counter_of(d, True) for d, _ in out] == [0xFFFF_FFFE, 0xFFFF_FFFF, 0, 1]


# -- bursts and idling ---------------------------------------------------


@pytest.mark.timeout(20)
def test_default_burst_caps_what_goes_out_after_a_long_stall() -> None:
    traffic = TagTraffic(1024.0)
    assert traffic.burst == 64  # max(64, 20 ms worth)
    tags = {1: stripped()}
    traffic.due(tags, 0.0)
    assert len(traffic.due(tags, 60.0)) == 64
    # No credit left over: the rate goes on from there, not faster.
    assert traffic.due(tags, 60.0) == []
    assert len(traffic.due(tags, 60.0 + 10 / 1024)) == 10


@pytest.mark.timeout(20)
def test_default_burst_is_20_ms_worth_at_high_rates() -> None:
    traffic = TagTraffic(100_000.0)
    assert traffic.burst == 2000
    tags = {1: stripped()}
    traffic.due(tags, 0.0)
    assert len(traffic.due(tags, 3.0)) == 2000


@pytest.mark.timeout(20)
def test_explicit_burst_caps_each_tag_after_a_stall() -> None:
    traffic = TagTraffic(500.0, burst=7)
    tags = {1: stripped(9001), 2: framed(9002)}
    traffic.due(tags, 0.0)
    out = traffic.due(tags, 100.0)
    assert sorted(port for _, (_, port) in out) == [9001] * 7 + [9002] * 7
    assert traffic.sent == {1: 7, 2: 7}


@pytest.mark.timeout(20)
def test_no_tags_means_nothing_and_at_most_a_burst_once_a_tag_appears() -> None:
    traffic = TagTraffic(1000.0, burst=5)
    assert traffic.due({}, 0.0) == []
    assert traffic.due({}, 0.5) == []
    assert traffic.due({}, 30.0) == []
    assert traffic.sent == {}
    tags = {1: stripped()}
    out = traffic.due(tags, 30.0)
    assert [counter_of(d, True) for d, _ in out] == [0, 1, 2, 3, 4]


@pytest.mark.timeout(20)
def test_a_tag_removed_gets_nothing_more() -> None:
    traffic = TagTraffic(1000.0)
    tags = {1: stripped(9101), 2: stripped(9102)}
    run(traffic, tags, [0.0, 0.01])
    del tags[2]
    out = traffic.due(tags, 0.02)
    assert {port for _, (_, port) in out} == {9101}


# -- arguments ---------------------------------------------------------------


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "kwargs",
    [
        {"rate": 0},
        {"rate": -1.0},
        {"rate": math.nan},
        {"rate": -math.inf},
        {"rate": 10, "payload_size": 3},
        {"rate": 10, "payload_size": 0},
        {"rate": 10, "payload_size": 257},
        {"rate": 10, "payload_size": -4},
    ],
)
def test_bad_arguments_raise_invalid_argument_error(kwargs: dict[str, float]) -> None:
    with pytest.raises(InvalidArgumentError) as raised:
        TagTraffic(**kwargs)  # type: ignore[arg-type]
    assert raised.value.name in kwargs


@pytest.mark.timeout(20)
def test_infinite_rate_is_an_invalid_argument() -> None:
    with pytest.raises(InvalidArgumentError):
        TagTraffic(math.inf)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("burst", [0, -1])
def test_burst_below_one_is_an_invalid_argument(burst: int) -> None:
    with pytest.raises(InvalidArgumentError):
        TagTraffic(100.0, burst=burst)


@pytest.mark.timeout(20)
def test_non_integer_payload_size_is_an_invalid_argument() -> None:
    with pytest.raises(InvalidArgumentError):
        TagTraffic(10.0, payload_size=16.5)  # type: ignore[arg-type]


# -- a real board on loopback ------------------------------------------------


@pytest.fixture
def tagged_socket() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5.0)
    try:
        yield sock
    finally:
        sock.close()


@pytest.mark.timeout(20)
def test_virtual_board_streams_to_an_ip_tagged_udp_socket(
    tagged_socket: socket.socket,
) -> None:
    port = tagged_socket.getsockname()[1]
    board = VirtualBoard(2, 2, traffic=TagTraffic(2000)).start()
    try:
        host, board_port = board.address
        with SCAMPConnection(remote_host=host, remote_port=board_port) as connection:
            call(connection, IPTagSet(0, 0, "127.0.0.1", port, 1))
        counters = []
        for _ in range(300):
            data, sender = tagged_socket.recvfrom(65535)
            assert sender == board.address
            message = SDPMessage.from_bytestring(data, 2)
            assert data[:2] == b"\0\0"
            assert message.sdp_header.tag == 1
            assert message.sdp_header.flags is SDPFlag.REPLY_NOT_EXPECTED
            assert len(message.payload) == 16
            counters.append(COUNTER.unpack_from(message.payload)[0])
        assert counters == list(range(300))
        assert board.stats.send_failures == 0
    finally:
        board.stop()


@pytest.mark.timeout(20)
def test_virtual_board_stream_keeps_its_rate(tagged_socket: socket.socket) -> None:
    """Over a loopback run the board sends about ``rate`` a second: never
    far ahead of it (the burst allows 64 at once), and not starved."""
    port = tagged_socket.getsockname()[1]
    board = VirtualBoard(2, 2, traffic=TagTraffic(2000)).start()
    try:
        host, board_port = board.address
        with SCAMPConnection(remote_host=host, remote_port=board_port) as connection:
            call(connection, IPTagSet(0, 0, "127.0.0.1", port, 1))
        tagged_socket.recvfrom(65535)
        first = time.monotonic()
        received = 1
        while received < 1000:
            tagged_socket.recvfrom(65535)
            received += 1
        elapsed = time.monotonic() - first
        # 999 more at 2000/s is ~0.5 s; allow a burst ahead and a slow CI.
        assert elapsed >= (999 - 64) / 2000
        assert elapsed < 5.0
    finally:
        board.stop()
