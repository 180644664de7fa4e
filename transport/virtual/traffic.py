"""Live output: SDP datagrams a board sends to IP-tagged hosts, at a rate.

A real application's cores send results to the host through IP tags; the
virtual board does the same so that listeners have a real source. Sans-IO:
given the tag table and the time, it says which datagrams are due.
"""

from __future__ import annotations

import math
import socket
import struct
from collections.abc import Mapping
from typing import Protocol

from messages.errors import InvalidArgumentError
from messages.scp.layout import PADDING
from messages.sdp import HOST_CPU, HOST_PORT, SDPFlag, SDPHeader
from transport.links.endpoint import Address

#: The SDP port a core's output leaves from.
_SOURCE_PORT = 1
_COUNTER = struct.Struct("<I")
#: An EIEIO data header: count, then flags (type KEY_32_BIT, tag 0).
_EIEIO_HEADER = struct.Struct("<BB")
_EIEIO_KEY_32 = 2 << 2


def sdp_to_host(
    tag: int, source: tuple[int, int, int], port: int, payload: bytes, *, strip: bool
) -> bytes:
    """A datagram a core sends through IP tag ``tag`` from SDP port ``port``:
    the bare payload if the tag strips SDP headers, else header and all."""
    if strip:
        return payload
    x, y, p = source
    header = SDPHeader(
        SDPFlag.REPLY_NOT_EXPECTED,
        tag,
        destination_port=HOST_PORT,
        destination_cpu=HOST_CPU,
        source_port=port,
        source_cpu=p,
        source_chip_x=x,
        source_chip_y=y,
    )
    return PADDING + header.bytestring + payload


class Tag(Protocol):
    host: bytes
    port: int
    strip: bool


class TagTraffic:
    """``rate`` datagrams a second to each IP tag, from core ``source``.

    Each payload starts with a 32-bit count (per tag, from 0) so that a
    listener can tell loss and order; ``payload_size`` pads it out. At most
    ``burst`` datagrams a tag go out at once after a stall (default: 20 ms
    worth). ``eieio`` True sends EIEIO data messages instead, as a live
    output core does: 32-bit keys counting up from ``count * keys``, as
    many keys as ``payload_size`` holds after the 2-byte header.
    """

    def __init__(
        self,
        rate: float,
        payload_size: int = 16,
        *,
        burst: int | None = None,
        source: tuple[int, int, int] = (0, 0, 1),
        eieio: bool = False,
    ) -> None:
        if not isinstance(rate, (int, float)) or not 0 < rate < math.inf:
            raise InvalidArgumentError("rate", rate, "must be a positive finite number")
        if (
            isinstance(payload_size, bool)
            or not isinstance(payload_size, int)
            or not 4 <= payload_size <= 256
        ):
            raise InvalidArgumentError(
                "payload_size", payload_size, "must be 4..256 bytes"
            )
        if burst is not None and (
            isinstance(burst, bool) or not isinstance(burst, int) or burst < 1
        ):
            raise InvalidArgumentError("burst", burst, "must be a positive integer")
        self.rate = rate
        self.payload_size = payload_size
        #: Enough for 20 ms, so a coarse timer does not cap the rate.
        self.burst = burst if burst is not None else max(64, int(rate / 50))
        self.sent: dict[int, int] = {}
        self._source = source
        #: Keys per EIEIO message (0: plain counted payloads).
        self._keys = max(1, (payload_size - 2) // 4) if eieio else 0
        self._credit = 0.0
        self._last: float | None = None

    def next_due(self, now: float) -> float:
        """When the next datagram falls due."""
        if self._last is None:
            return now
        return now + max(0.0, (1.0 - self._credit) / self.rate)

    def due(self, tags: Mapping[int, Tag], now: float) -> list[tuple[bytes, Address]]:
        """The datagrams to send now, with where each goes."""
        if self._last is None:
            self._last = now
        self._credit = min(
            self._credit + (now - self._last) * self.rate, float(self.burst)
        )
        self._last = now
        count = int(self._credit)
        if not count or not tags:
            return []
        self._credit -= count
        out: list[tuple[bytes, Address]] = []
        for tag, entry in tags.items():
            host = socket.inet_ntoa(entry.host)
            head = b"" if entry.strip else self._head(tag)
            first = self.sent.get(tag, 0)
            out.extend(
                (head + self._payload(number), (host, entry.port))
                for number in range(first, first + count)
            )
            self.sent[tag] = first + count
        return out

    def _head(self, tag: int) -> bytes:
        """Padding and the SDP header of a datagram to ``tag``'s host."""
        return sdp_to_host(tag, self._source, _SOURCE_PORT, b"", strip=False)

    def _payload(self, number: int) -> bytes:
        keys = self._keys
        if not keys:
            return _COUNTER.pack(number & 0xFFFF_FFFF) + bytes(self.payload_size - 4)
        first = number * keys
        return _EIEIO_HEADER.pack(keys, _EIEIO_KEY_32) + struct.pack(
            f"<{keys}I", *((first + i) & 0xFFFF_FFFF for i in range(keys))
        )
