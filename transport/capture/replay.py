"""Replay a capture's SCP requests to a board and compare the answers.

A regression tool for board behaviour: what a board answered once (in a
pcap file, see transport/capture/writer.py) is asked again, one request at a
time and in the captured order, and every answer that differs is told.
Finding the exchanges and comparing answers is sans-IO; ``replay`` does
the sending. A request the capture shows resent (same sequence number and
bytes while unanswered) is replayed once: the board runs every copy.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from messages.errors import InvalidArgumentError
from messages.scp.enums import SCPCommand, SCPResult
from messages.scp.layout import (
    HEAD,
    PADDING,
    REPLY_DATA_OFFSET,
    RESULT_OFFSET,
    SEQUENCE_OFFSET,
)
from transport.capture.pcap import Packet
from transport.errors import PortClosed, ReceiveTimeout, refused_text
from transport.links.endpoint import Address, UDPEndpoint

_HOST_PORT_CPU = 0xFF
_REPLY_EXPECTED = 0x80


@dataclass
class Exchange:
    """One request of a capture and what the board answered then."""

    frame: int
    request: bytes
    source: Address
    destination: Address
    #: The first answer in the capture, or None if none came.
    answer: bytes | None = None
    #: Copies of the request the capture holds beyond the first.
    resends: int = 0
    _open: bool = field(default=True, repr=False)

    @property
    def sequence(self) -> int:
        return _sequence(self.request)

    @property
    def command(self) -> str:
        return command_name(HEAD.unpack_from(self.request)[-2])


def command_name(code: int) -> str:
    try:
        return SCPCommand(code).name
    except ValueError:
        return f"UNKNOWN_{code}"


def result_name(code: int) -> str:
    try:
        return SCPResult(code).name
    except ValueError:
        return f"UNKNOWN_{code}"


def _kind(payload: bytes) -> str | None:
    """ "request", "response" or None (not SCP) by the SDP header."""
    if len(payload) < HEAD.size or not payload.startswith(PADDING):
        return None
    flags, _, dest, source = HEAD.unpack_from(payload)[:4]
    if source == _HOST_PORT_CPU and dest >> 5 == 0 and flags & _REPLY_EXPECTED:
        return "request"
    if dest == _HOST_PORT_CPU and source >> 5 == 0 and not flags & _REPLY_EXPECTED:
        return "response"
    return None


def exchanges(packets: Iterable[Packet]) -> list[Exchange]:
    """The reply-expected SCP requests of a capture, in order, each with
    its first answer; resent copies are counted, not listed again."""
    found: list[Exchange] = []
    open_: dict[tuple[Address, Address, int], Exchange] = {}
    for frame, packet in enumerate(packets, 1):
        kind = _kind(packet.payload)
        if kind == "request":
            key = (packet.source, packet.destination, _sequence(packet.payload))
            earlier = open_.get(key)
            if (
                earlier is not None
                and earlier._open
                and earlier.request == packet.payload
            ):
                earlier.resends += 1
                continue
            exchange = Exchange(
                frame, packet.payload, packet.source, packet.destination
            )
            open_[key] = exchange
            found.append(exchange)
        elif kind == "response":
            key = (packet.destination, packet.source, _sequence(packet.payload))
            earlier = open_.get(key)
            if earlier is not None and earlier._open:
                earlier.answer = packet.payload
                earlier._open = False
    return found


def _sequence(payload: bytes) -> int:
    return int(HEAD.unpack_from(payload)[-1])


def describe(answer: bytes | None) -> str:
    """An answer in a few words: its result and how much data it had."""
    if answer is None:
        return "no answer"
    code = HEAD.unpack_from(answer)[-2]
    return f"{result_name(code)} with {len(answer) - REPLY_DATA_OFFSET} bytes"


def difference(before: bytes | None, after: bytes | None) -> str | None:
    """How two answers to one request differ (their SCP part), or None."""
    if before is None and after is None:
        return None
    if before is None or after is None:
        return f"{describe(before)} -> {describe(after)}"
    code = slice(RESULT_OFFSET, SEQUENCE_OFFSET)
    if before[code] != after[code] or len(before) != len(after):
        return f"{describe(before)} -> {describe(after)}"
    old, new = before[REPLY_DATA_OFFSET:], after[REPLY_DATA_OFFSET:]
    if old != new:
        pairs = zip(old, new, strict=True)
        at = next(i for i, (a, b) in enumerate(pairs) if a != b)
        return f"{describe(before)}, data differs from byte {at}"
    return None


@dataclass(frozen=True)
class Replayed:
    """A replayed request, its answer then and now, and how they differ."""

    exchange: Exchange
    answer: bytes | None
    difference: str | None


def replay(
    found: Iterable[Exchange],
    host: str,
    port: int,
    *,
    timeout: float = 1.0,
    retries: int = 3,
) -> Iterator[Replayed]:
    """Send each request to ``host:port`` and wait for its answer (the
    same sequence number), resending up to ``retries`` times. PortClosed
    as soon as the host says nothing listens there."""
    if not (math.isfinite(timeout) and timeout > 0):
        raise InvalidArgumentError("timeout", timeout, "must be finite and > 0")
    if retries < 0:
        raise InvalidArgumentError("retries", retries, "must be >= 0")
    peer = (UDPEndpoint.resolve_host(host), port)
    with contextlib.closing(UDPEndpoint("0.0.0.0", 0)) as link:
        link.connect(peer)  # so an ICMP refusal shows (link.refused)
        for exchange in found:
            sequence = exchange.sequence
            answer = None
            for _ in range(retries + 1):
                link.send_to(exchange.request, peer)
                answer = _answer(link, peer, sequence, timeout)
                if answer is not None:
                    break
            yield Replayed(exchange, answer, difference(exchange.answer, answer))


def _answer(
    link: UDPEndpoint, peer: Address, sequence: int, timeout: float
) -> bytes | None:
    """The response with ``sequence`` within ``timeout``; others (late
    copies of earlier answers) are skipped."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        refused = link.refused
        try:
            data, _ = link.receive_from(left)
        except ReceiveTimeout:
            if link.refused > refused:
                raise PortClosed(refused_text(*peer)) from None
            return None
        if _kind(data) == "response" and _sequence(data) == sequence:
            return data
