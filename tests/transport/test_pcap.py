"""The pcap format: synthesised frames that any pcap reader takes."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from messages.errors import MalformedDatagramError
from transport.capture.pcap import (
    FRAME_OVERHEAD,
    MAGIC_MICRO,
    MAGIC_NANO,
    MAX_RECORD,
    RECORD,
    RECORD_HEADER_SIZE,
    SNAPLEN,
    Link,
    Packet,
    file_header,
    frame_header,
    ipv4_checksum,
    read_packets,
    record,
)


def test_file_header_is_nanosecond_pcap_over_ethernet() -> None:
    magic, major, minor, _, _, snaplen, linktype = struct.unpack(
        "<IHHiIII", file_header()
    )
    assert (magic, major, minor, linktype) == (MAGIC_NANO, 2, 4, 1)
    assert snaplen >= 65535


def test_frame_header_has_real_addresses_lengths_and_a_correct_checksum() -> None:
    header = frame_header(("10.11.12.13", 40000), ("192.168.240.253", 17893), 100)
    assert len(header) == FRAME_OVERHEAD == 42
    assert struct.unpack_from("!H", header, 12)[0] == 0x0800  # IPv4
    ip = header[14:34]
    assert ip[0] == 0x45 and ip[9] == 17  # IPv4, 20 bytes, UDP
    assert struct.unpack_from("!H", ip, 2)[0] == 20 + 8 + 100
    assert ip[12:16] == bytes([10, 11, 12, 13])
    assert ip[16:20] == bytes([192, 168, 240, 253])
    assert ipv4_checksum(ip) == 0  # a header with its checksum sums to zero
    assert struct.unpack_from("!HHH", header, 34) == (40000, 17893, 108)


def test_a_link_without_ip_addresses_is_framed_as_0_0_0_0() -> None:
    header = frame_header(("memory", 5), ("memory", 6), 10)
    assert header[26:34] == bytes(8)


def test_records_read_back_with_their_times_addresses_and_payloads() -> None:
    a, b = ("127.0.0.1", 1000), ("127.0.0.1", 17893)
    parts = [file_header()]
    parts.append(record(1_700_000_000_123_456_789, Link(a, b), b"\0\0hello"))
    parts.append(record(1_700_000_001_000_000_000, Link(b, a), b"x" * 300))
    packets = list(read_packets(b"".join(parts)))
    assert [(p.source, p.destination, p.payload) for p in packets] == [
        (a, b, b"\0\0hello"),
        (b, a, b"x" * 300),
    ]
    assert packets[0].stamp == pytest.approx(1_700_000_000.123456789)


def test_a_microsecond_big_endian_file_is_read_too() -> None:
    frame = frame_header(("1.2.3.4", 5), ("5.6.7.8", 9), 3) + b"abc"
    data = struct.pack(">IHHiIII", MAGIC_MICRO, 2, 4, 0, 0, 65535, 1)
    data += struct.pack(">IIII", 10, 500_000, len(frame), len(frame)) + frame
    (packet,) = read_packets(data)
    assert packet.stamp == pytest.approx(10.5)
    assert packet.payload == b"abc"
    assert packet.source == ("1.2.3.4", 5)


def test_frames_that_are_not_udp_over_ipv4_are_skipped() -> None:
    arp = bytes(12) + b"\x08\x06" + bytes(28)
    udp = frame_header(("1.2.3.4", 5), ("5.6.7.8", 9), 1) + b"z"
    data = file_header()
    for frame in (arp, udp):
        data += struct.pack("<IIII", 0, 0, len(frame), len(frame)) + frame
    assert [p.payload for p in read_packets(data)] == [b"z"]


@pytest.mark.parametrize("data", [b"", b"\x0a\x0d\x0d\x0a" + bytes(40)])
def test_what_is_not_classic_pcap_is_an_error(data: bytes) -> None:
    with pytest.raises(MalformedDatagramError):
        list(read_packets(data))


def test_a_link_makes_each_length_s_header_once() -> None:
    link = Link(("1.2.3.4", 5), ("5.6.7.8", 9))
    first = link.header(10)
    assert link.header(10) is first
    assert first == frame_header(("1.2.3.4", 5), ("5.6.7.8", 9), 10)
    assert link.header(11) != first


def test_a_file_is_read_a_record_at_a_time(tmp_path: Path) -> None:
    a, b = ("127.0.0.1", 1000), ("127.0.0.1", 17893)
    path = tmp_path / "two.pcap"
    path.write_bytes(
        file_header() + record(1, Link(a, b), b"one") + record(2, Link(b, a), b"two")
    )
    with open(path, "rb") as file:
        packets = read_packets(file)
        assert next(packets).payload == b"one"
        assert file.tell() == len(file_header()) + len(record(1, Link(a, b), b"one"))
        assert [p.payload for p in packets] == [b"two"]


def test_a_record_longer_than_any_frame_is_a_damaged_file() -> None:
    udp = frame_header(("1.2.3.4", 5), ("5.6.7.8", 9), 1) + b"z"
    data = file_header() + struct.pack("<IIII", 0, 0, len(udp), len(udp)) + udp
    data += struct.pack("<IIII", 0, 0, MAX_RECORD + 1, 60) + bytes(60)
    packets = read_packets(data)
    assert next(packets).payload == b"z"
    with pytest.raises(MalformedDatagramError, match=r"record 2 \(at byte 83\)"):
        next(packets)


def _records(count: int) -> list[bytes]:
    link = Link(("127.0.0.1", 1000), ("127.0.0.1", 17893))
    return [record(1_700_000_000 + n, link, bytes([n]) * 300) for n in range(count)]


def test_a_partial_record_in_the_middle_is_an_error_not_a_silent_end() -> None:
    """What a full disk left in a capture before: a record cut short, then
    whole records after it. The records before it are read; the reader
    then runs into bytes that are no record and says so, never a silent
    end (the cut record's header is whole, so it takes the next record's
    first bytes as its own: the error names the record after it)."""
    whole = _records(6)
    data = file_header() + b"".join(whole[:3]) + whole[3][:100] + b"".join(whole[4:])
    seen: list[Packet] = []
    with pytest.raises(MalformedDatagramError, match=r"record 5 .* garbled"):
        seen.extend(read_packets(data))
    assert [p.payload for p in seen[:3]] == [bytes([n]) * 300 for n in range(3)]


@pytest.mark.parametrize("keep", [10, RECORD_HEADER_SIZE + 20])
def test_a_file_cut_short_in_its_last_record_is_an_error(keep: int) -> None:
    whole = _records(3)
    data = file_header() + whole[0] + whole[1] + whole[2][:keep]
    seen: list[Packet] = []
    with pytest.raises(MalformedDatagramError, match=r"record 3 \(at byte .*cut short"):
        seen.extend(read_packets(data))
    assert len(seen) == 2


def test_a_record_longer_than_the_snap_length_is_garbled() -> None:
    data = file_header() + RECORD.pack(0, 0, SNAPLEN + 1, SNAPLEN + 1) + bytes(100)
    with pytest.raises(MalformedDatagramError, match="record 1 .* garbled"):
        list(read_packets(data))
