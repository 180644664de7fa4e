"""The classic pcap format, sans-IO: frames around datagrams, and back.

A capture holds what a socket saw: UDP payloads and the addresses they
went between. Wireshark and tshark want link-layer frames, so each payload
is wrapped in a synthesised Ethernet/IPv4/UDP header (real addresses and
ports, a correct IPv4 checksum, UDP checksum 0 = none, as IPv4 allows).
Files use the nanosecond variant of classic pcap (magic 0xa1b23c4d),
link type 1 (Ethernet). ``read_packets`` reads such files back, and any
classic pcap of UDP over Ethernet or raw IPv4 (what ``replay`` needs).
"""

from __future__ import annotations

import io
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from messages.errors import MalformedDatagramError
from transport.links.endpoint import Address

#: Nanosecond-resolution classic pcap, and the microsecond original.
MAGIC_NANO = 0xA1B23C4D
MAGIC_MICRO = 0xA1B2C3D4
LINKTYPE_ETHERNET = 1
#: Raw IPv4 (LINKTYPE_RAW and LINKTYPE_IPV4).
_RAW_LINKTYPES = (101, 228)
SNAPLEN = 262144
#: The longest record a reader takes: tcpdump's and Wireshark's largest
#: snapshot length, so a longer one is a damaged file, not a frame.
MAX_RECORD = SNAPLEN
#: pcap's global header and each record's header (little endian on write).
_FILE_HEADER = struct.Struct("<IHHiIII")
_RECORD = struct.Struct("<IIII")
_ETHERNET = struct.Struct("!6s6sH")
_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_UDP = struct.Struct("!HHHH")
#: Ethernet, IPv4 and UDP headers: what a frame adds to a payload.
FRAME_OVERHEAD = _ETHERNET.size + _IPV4.size + _UDP.size
FILE_HEADER_SIZE = _FILE_HEADER.size
RECORD_HEADER_SIZE = _RECORD.size
_ETHERTYPE_IPV4 = 0x0800
_ETHERTYPE_VLAN = 0x8100
_UDP_PROTOCOL = 17
#: The most a UDP payload can be inside one IPv4 datagram.
_MAX_PAYLOAD = 0xFFFF - _IPV4.size - _UDP.size
_NO_ADDRESS = bytes(4)
#: Frame headers a Link keeps (one per payload length).
_HEADERS_KEPT = 512
#: A record's header (for writers that pack it themselves), and its
#: two halves: the timestamp, and the captured and original lengths.
RECORD = _RECORD
STAMP = struct.Struct("<II")
_LENGTHS = struct.Struct("<II")


def file_header(snaplen: int = SNAPLEN) -> bytes:
    """The 24 bytes a pcap file starts with."""
    return _FILE_HEADER.pack(MAGIC_NANO, 2, 4, 0, 0, snaplen, LINKTYPE_ETHERNET)


def ipv4_checksum(header: bytes) -> int:
    """The ones' complement sum of the header's 16-bit words (RFC 791)."""
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return int(~total & 0xFFFF)


def _ipv4(host: str) -> bytes:
    """The 4 address bytes of ``host`` (0.0.0.0 for a link that has no IP
    addresses, such as the in-memory network)."""
    try:
        return socket.inet_aton(host)
    except (OSError, TypeError):
        return _NO_ADDRESS


def _mac(ip: bytes) -> bytes:
    """A locally administered MAC made of the IP address: stable, and
    tells the ends apart in Wireshark's Ethernet column."""
    return b"\x02\x00" + ip


def frame_header(source: Address, destination: Address, length: int) -> bytes:
    """Ethernet, IPv4 and UDP headers for a ``length``-byte UDP payload."""
    src, dst = _ipv4(source[0]), _ipv4(destination[0])
    length = min(length, _MAX_PAYLOAD)
    ip = _IPV4.pack(
        0x45, 0, _IPV4.size + _UDP.size + length, 0, 0x4000, 64, _UDP_PROTOCOL, 0,
        src, dst,
    )  # fmt: skip
    ip = ip[:10] + struct.pack("!H", ipv4_checksum(ip)) + ip[12:]
    ethernet = _ETHERNET.pack(_mac(dst), _mac(src), _ETHERTYPE_IPV4)
    udp = _UDP.pack(source[1], destination[1], _UDP.size + length, 0)
    return ethernet + ip + udp


class Link:
    """The frames of one way between two addresses: their headers by
    payload length, made once (a board's traffic has few lengths)."""

    __slots__ = ("source", "destination", "headers", "heads")

    def __init__(self, source: Address, destination: Address) -> None:
        self.source, self.destination = source, destination
        self.headers: dict[int, bytes] = {}
        #: What follows a record's timestamp up to the payload, by length.
        self.heads: dict[int, bytes] = {}

    def head(self, length: int) -> bytes:
        """A record's lengths and frame header for a ``length``-byte
        payload: a record is then timestamp + head + payload."""
        head = self.heads.get(length)
        if head is None:
            if len(self.heads) >= _HEADERS_KEPT:
                self.heads.clear()
            size = FRAME_OVERHEAD + length
            head = _LENGTHS.pack(size, size) + self.header(length)
            self.heads[length] = head
        return head

    def header(self, length: int) -> bytes:
        """The frame header for a ``length``-byte payload."""
        header = self.headers.get(length)
        if header is None:
            if len(self.headers) >= _HEADERS_KEPT:
                self.headers.clear()
            header = frame_header(self.source, self.destination, length)
            self.headers[length] = header
        return header


def record(stamp_ns: int, link: Link, payload: bytes) -> bytes:
    """One datagram's pcap record (its header, frame and payload)."""
    header = link.header(len(payload))
    seconds, nanos = divmod(stamp_ns, 1_000_000_000)
    size = len(header) + len(payload)
    return _RECORD.pack(seconds, nanos, size, size) + header + payload


@dataclass(frozen=True)
class Packet:
    """One UDP datagram of a capture."""

    stamp: float
    source: Address
    destination: Address
    payload: bytes


def read_packets(data: bytes | BinaryIO) -> Iterator[Packet]:
    """The UDP datagrams of a classic pcap file (its bytes, or the file
    itself, read a record at a time), in order; other frames are skipped.
    MalformedDatagramError if it is not pcap, and (once the whole records
    before it are yielded) at a record that is garbled (longer than the
    snap length or MAX_RECORD allows, or than the frame it says it
    captured) or cut short by the end of the file: what follows such a
    record cannot be read, so it is never skipped in silence."""
    stream = io.BytesIO(data) if isinstance(data, bytes | bytearray) else data
    head = stream.read(_FILE_HEADER.size)
    if len(head) < _FILE_HEADER.size:
        raise MalformedDatagramError(f"{len(head)} bytes: too short for pcap")
    for order in "<>":
        magic = struct.unpack_from(f"{order}I", head)[0]
        if magic in (MAGIC_NANO, MAGIC_MICRO):
            break
    else:
        raise MalformedDatagramError(
            f"not a classic pcap file (magic 0x{head[:4].hex()}; pcapng is "
            f"not read: save it as pcap with editcap -F pcap)"
        )
    scale = 1e-9 if magic == MAGIC_NANO else 1e-6
    linktype = struct.unpack_from(f"{order}I", head, 20)[0]
    if linktype != LINKTYPE_ETHERNET and linktype not in _RAW_LINKTYPES:
        raise MalformedDatagramError(
            f"link type {linktype}: only Ethernet (1) and raw IPv4 are read"
        )
    record = struct.Struct(f"{order}IIII")
    most = MAX_RECORD
    at, number = _FILE_HEADER.size, 1
    while header := stream.read(record.size):
        where = f"record {number} (at byte {at})"
        if len(header) < record.size:
            raise MalformedDatagramError(
                f"{where} is cut short: {len(header)} of its {record.size}-byte "
                f"header are there"
            )
        seconds, fraction, captured, original = record.unpack(header)
        if captured > most or captured > original:
            raise MalformedDatagramError(
                f"{where} is garbled: it says it holds {captured} bytes of a "
                f"{original}-byte frame (at most {most}): the file is damaged, "
                f"nothing after it can be read"
            )
        frame = stream.read(captured)
        if len(frame) < captured:
            raise MalformedDatagramError(
                f"{where} is cut short: {len(frame)} of its {captured} bytes are there"
            )
        at += record.size + captured
        number += 1
        packet = _udp_of(frame, linktype, seconds + fraction * scale)
        if packet is not None:
            yield packet


def _udp_of(frame: bytes, linktype: int, stamp: float) -> Packet | None:
    at = 0
    if linktype == LINKTYPE_ETHERNET:
        if len(frame) < _ETHERNET.size:
            return None
        kind = _ETHERNET.unpack_from(frame)[2]
        at = _ETHERNET.size
        if kind == _ETHERTYPE_VLAN and len(frame) >= at + 4:
            kind = struct.unpack_from("!H", frame, at + 2)[0]
            at += 4
        if kind != _ETHERTYPE_IPV4:
            return None
    if len(frame) < at + _IPV4.size:
        return None
    version_ihl, _, total, _, fragment, _, protocol, _, src, dst = _IPV4.unpack_from(
        frame, at
    )
    if version_ihl >> 4 != 4 or protocol != _UDP_PROTOCOL or fragment & 0x3FFF:
        return None
    end = min(len(frame), at + total)
    at += (version_ihl & 0xF) * 4
    if end < at + _UDP.size:
        return None
    sport, dport, length, _ = _UDP.unpack_from(frame, at)
    payload = frame[at + _UDP.size : min(end, at + max(length, _UDP.size))]
    return Packet(
        stamp,
        (socket.inet_ntoa(src), sport),
        (socket.inet_ntoa(dst), dport),
        bytes(payload),
    )
