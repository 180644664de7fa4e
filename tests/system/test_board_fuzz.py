"""100,000 random and mutated datagrams over UDP: the board keeps answering
and accounts for every one (an error code, a reply, or a counted drop)."""

from __future__ import annotations

import random
import socket
import struct
from typing import Any

import pytest

from messages.scp import (
    FillRequest,
    GetVersion,
    IPTagSet,
    ReadMemory,
    SCPResult,
    WriteMemory,
)
from transport import VirtualBoard

TOTAL = 100_000
BATCH = 50


def datagram(request: Any, sequence: int = 1) -> bytes:
    request.sdp_header.update_for_send(0, 0)
    request.scp_request_header.sequence = sequence
    return b"\0\0" + bytes(request.bytestring)


def garbage(rng: random.Random, seeds: list[bytes]) -> bytes:
    if rng.random() < 0.3:
        return rng.randbytes(rng.randrange(0, 300))
    data = bytearray(rng.choice(seeds))
    for _ in range(rng.randint(1, 3)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    cut = rng.random()
    if cut < 0.3:
        del data[rng.randrange(len(data) + 1) :]
    elif cut < 0.4:
        data += rng.randbytes(rng.randrange(1, 40))
    return bytes(data)


@pytest.mark.timeout(120)
def test_board_survives_and_counts_100k_bad_datagrams() -> None:
    rng = random.Random(2026)
    seeds = [
        datagram(r)
        for r in (
            ReadMemory((0, 0, 0), 0x6000_0000, 256),
            GetVersion(1, 1, 1),
            WriteMemory((1, 0, 0), 0x6000_0000, bytes(64)),
            FillRequest(0, 0, 0x6000_0000, 5, 64),
            IPTagSet(0, 0, "127.0.0.1", 9, 1),
        )
    ]
    probe_sequence = 0xBEEF
    probe = datagram(GetVersion(0, 0, 0), probe_sequence)
    with (
        VirtualBoard(4, 4, memory_limit=64 << 20) as board,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client,
    ):
        client.settimeout(5.0)
        client.bind(("127.0.0.1", 0))
        replies = probes = 0
        codes: dict[int, int] = {}
        for _batch in range(0, TOTAL, BATCH):
            for _ in range(BATCH):
                client.sendto(garbage(rng, seeds), board.address)
            client.sendto(probe, board.address)
            probes += 1
            while True:  # the board is FIFO: its probe reply ends the batch
                reply = client.recv(512)
                assert len(reply) >= 14
                result, sequence = struct.unpack_from("<2H", reply, 10)
                if (
                    sequence == probe_sequence
                    and reply[8:10] == b"\0\0"
                    and result == SCPResult.RC_OK.value
                    and len(reply) > 40
                ):
                    break  # a version reply from 0,0,0: the probe's
                replies += 1
                codes[result] = codes.get(result, 0) + 1
        stats = board.stats
    assert stats.received == TOTAL + probes
    assert stats.replies == replies + probes
    monitor = board.monitor.stats
    assert monitor.replies + monitor.silent + monitor.malformed == stats.received
    assert stats.malformed > 0 and sum(stats.errors.values()) > 0
    assert all(code in {r.value for r in SCPResult} for code in codes)
