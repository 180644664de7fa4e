"""`spinnactors demo`: a supervised transfer through a lossy board.

With no board given it starts a virtual one in-process that drops and
duplicates packets; it writes a pattern over several chips, kills the
connection actor once half-way, reads everything back, verifies every
byte, and ends with a summary. Progress shows on a terminal only.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from typing import TextIO

from actors.app.progress import PIECE, Progress, read_pieces, run_pieces, write_pieces
from actors.board.client import Client
from actors.connecting import connect
from actors.supervision.child import Crash
from transport import FaultPlan, VirtualBoard
from transport.endpoint import Address

#: Where the demo puts its data: the start of user SDRAM on each chip.
ADDRESS = 0x6000_0000
CHIPS = ((0, 0), (1, 0), (0, 1), (1, 1))


@dataclass
class Totals:
    written: int = 0
    verified: int = 0
    write_seconds: float = 0.0
    read_seconds: float = 0.0


def run_demo(
    out: TextIO,
    progress: TextIO,
    kib: int,
    address: Address | None = None,
    seed: int = 1,
) -> int:
    """The demo; 0 only if every byte read back is the byte written."""
    size = kib * 1024
    with (
        _board(address, seed) as (host, port),
        connect(host, port, max_restarts=10, period=5) as client,
    ):
        info = client.version()
        print(
            f"board {host}:{port}: {info.name} {info.version_string} on "
            f"{info.hardware}; {len(CHIPS)} chips x {kib} KiB",
            file=out,
        )
        totals = Totals()
        patterns = {chip: _pattern(chip, size) for chip in CHIPS}
        _write_all(client, patterns, totals, progress)
        _read_back(client, patterns, totals, progress, out)
        _summary(client, totals, out)
    expected = size * len(CHIPS)
    if totals.verified != expected:
        print(f"FAILED: {totals.verified} of {expected} bytes verified", file=out)
        return 1
    print(f"verified {totals.verified} bytes: all verified", file=out)
    return 0


@contextlib.contextmanager
def _board(address: Address | None, seed: int) -> Iterator[Address]:
    """The given board, or an in-process one that drops and duplicates 1%
    of the datagrams each way."""
    if address is not None:
        yield address
        return
    faults = FaultPlan(drop=0.01, duplicate=0.01, seed=seed)
    with VirtualBoard(2, 2, faults=faults) as board:
        yield board.address


def _pattern(chip: tuple[int, int], size: int) -> bytes:
    x, y = chip
    unit = bytes((i * 7 + x * 31 + y * 17) & 0xFF for i in range(256))
    return (unit * (size // 256 + 1))[:size]


def _write_all(
    client: Client,
    patterns: dict[tuple[int, int], bytes],
    totals: Totals,
    stream: TextIO,
) -> None:
    jobs = [
        job
        for (x, y), data in patterns.items()
        for job in write_pieces(x, y, 0, ADDRESS, data, key=(x, y))
    ]
    total = sum(len(data) for data in patterns.values())
    killed = False
    start = time.perf_counter()
    for outcome in run_pieces(client, jobs, Progress(stream, total, "write")):
        (x, y), begin = _chip_and_start(outcome.key)
        totals.written += min(PIECE, len(patterns[(x, y)]) - begin)
        if not killed and totals.written * 2 >= total:
            actor = client.connection_actor
            if actor is not None:
                actor.tell(Crash("the demo kills its connection actor"))
                killed = True
    totals.write_seconds = time.perf_counter() - start


def _read_back(
    client: Client,
    patterns: dict[tuple[int, int], bytes],
    totals: Totals,
    stream: TextIO,
    out: TextIO,
) -> None:
    jobs = [
        job
        for (x, y), data in patterns.items()
        for job in read_pieces(x, y, 0, ADDRESS, len(data), key=(x, y))
    ]
    total = sum(len(data) for data in patterns.values())
    start = time.perf_counter()
    for outcome in run_pieces(client, jobs, Progress(stream, total, "read")):
        (x, y), begin = _chip_and_start(outcome.key)
        expected = patterns[(x, y)][begin : begin + PIECE]
        if bytes(outcome.value) == expected:
            totals.verified += len(expected)
        else:
            print(f"MISMATCH on chip {x},{y} at 0x{ADDRESS + begin:08x}", file=out)
    totals.read_seconds = time.perf_counter() - start


def _chip_and_start(key: Hashable) -> tuple[tuple[int, int], int]:
    """The ((x, y), offset) a demo piece's key holds."""
    assert isinstance(key, tuple)
    assert len(key) == 2
    (x, y), start = key
    return (int(x), int(y)), int(start)


def _summary(client: Client, totals: Totals, out: TextIO) -> None:
    stats = client.stats()
    restarts = client.supervision().restarts
    rtt = stats.rtt
    rows = [
        (
            "written",
            f"{totals.written / 2**20:.2f} MiB at "
            f"{totals.written / totals.write_seconds / 1e6:.2f} MB/s",
        ),
        (
            "read back",
            f"{totals.verified / 2**20:.2f} MiB verified at "
            f"{totals.verified / totals.read_seconds / 1e6:.2f}"
            f" MB/s",
        ),
        (
            "round trips",
            f"p50 {rtt.p50 * 1e3:.2f} ms, p90 "
            f"{rtt.p90 * 1e3:.2f} ms, p99 {rtt.p99 * 1e3:.2f} ms"
            f" ({rtt.count} samples since the last restart)",
        ),
        (
            "resends",
            f"{stats.resent} ({stats.fast_resent} fast, "
            f"{stats.timeouts} after a timeout) since the last "
            f"restart",
        ),
        ("duplicates", f"{stats.duplicates} ignored"),
        ("restarts", f"{restarts} (the connection actor was killed once)"),
    ]
    print("summary", file=out)
    for name, value in rows:
        print(f"  {name:<12} {value}", file=out)
