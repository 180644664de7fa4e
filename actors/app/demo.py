"""`spinnactors demo`: a supervised transfer through a lossy board.

With no board given it starts a virtual one in-process that drops and
duplicates packets; it says what it will do, writes a pattern over
several chips, kills the connection actor once half-way (planned, and
said so), reads everything back, verifies every byte, and ends with a
table that explains each figure. Progress shows on a terminal only.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from typing import TextIO

from rich.console import Console
from rich.table import Table

from actors.app.progress import PIECE, Progress, read_pieces, run_pieces, write_pieces
from actors.board.client import Client
from actors.connecting import connect
from actors.supervision.child import Crash
from transport import FaultPlan, VirtualBoard
from transport.links.endpoint import Address
from transport.logs import get_logger

log = get_logger("spinnactors.demo")

#: Where the demo puts its data: the start of user SDRAM on each chip.
ADDRESS = 0x6000_0000
CHIPS = ((0, 0), (1, 0), (0, 1), (1, 1))
#: The in-process board's faults: each way, this share of the datagrams
#: is dropped, and as many duplicated.
DROP = DUPLICATE = 0.01


@dataclass
class Totals:
    written: int = 0
    verified: int = 0
    write_seconds: float = 0.0
    read_seconds: float = 0.0


def run_demo(
    out: TextIO,
    progress: Console | None,
    kib: int,
    address: Address | None = None,
    seed: int = 1,
    capture: str | None = None,
) -> int:
    """The demo; 0 only if every byte read back is the byte written.
    ``progress`` is where bars go (None: no bars); ``capture``, a pcap
    file of the client's datagrams."""
    size = kib * 1024
    screen = Console(file=out, highlight=False)
    with (
        _board(address, seed) as (host, port),
        connect(host, port, max_restarts=10, period=5, capture=capture) as client,
    ):
        info = client.version()
        _story(screen, address is None, host, port, info, kib)
        totals = Totals()
        patterns = {chip: _pattern(chip, size) for chip in CHIPS}
        _write_all(client, patterns, totals, progress, screen)
        _read_back(client, patterns, totals, progress, screen)
        _summary(client, totals, screen, virtual=address is None)
    expected = size * len(CHIPS)
    if totals.verified != expected:
        screen.print(f"FAILED: {totals.verified} of {expected} bytes verified")
        return 1
    screen.print(f"verified {totals.verified} bytes: all verified")
    return 0


def _story(
    screen: Console, virtual: bool, host: str, port: int, info: object, kib: int
) -> None:
    """What the demo is about to do, before it does it."""
    name = getattr(info, "name", "?")
    version = getattr(info, "version_string", "?")
    hardware = getattr(info, "hardware", "?")
    where = (
        f"a virtual {len(CHIPS)}-chip board in this process at {host}:{port}, "
        f"which drops {DROP:.0%} of the datagrams each way and duplicates "
        f"{DUPLICATE:.0%}"
        if virtual
        else f"the board at {host}:{port}"
    )
    screen.print(f"board {host}:{port}: {name} {version} on {hardware}")
    screen.print(
        f"This demo talks to {where}. It writes {kib} KiB to each of "
        f"{len(CHIPS)} chips, 8 requests on the wire at once. Half-way "
        f"through the writes it kills its own connection actor on purpose: "
        f"the supervisor starts a new one, which carries on with the "
        f"requests that had no reply. Then it reads everything back and "
        f"checks every byte."
    )


@contextlib.contextmanager
def _board(address: Address | None, seed: int) -> Iterator[Address]:
    """The given board, or an in-process one that drops and duplicates 1%
    of the datagrams each way."""
    if address is not None:
        yield address
        return
    faults = FaultPlan(drop=DROP, duplicate=DUPLICATE, seed=seed)
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
    progress: Console | None,
    screen: Console,
) -> None:
    jobs = [
        job
        for (x, y), data in patterns.items()
        for job in write_pieces(x, y, 0, ADDRESS, data, key=(x, y))
    ]
    total = sum(len(data) for data in patterns.values())
    killed = False
    start = time.perf_counter()
    # What happens mid-transfer goes above the bar, when there is one.
    say = (progress or screen).print
    restarts = client.supervision().restarts
    for outcome in run_pieces(client, jobs, Progress(progress, total, "write")):
        (x, y), begin = _chip_and_start(outcome.key)
        totals.written += min(PIECE, len(patterns[(x, y)]) - begin)
        if not killed and totals.written * 2 >= total:
            actor = client.connection_actor
            if actor is not None:
                log.info("demo.planned_crash", written=totals.written)
                say(
                    "half-way: killing the connection actor (planned; "
                    "the supervisor restarts it)"
                )
                actor.tell(Crash("the demo kills its connection actor"))
                killed = True
        now = client.supervision().restarts
        if now != restarts:
            restarts = now
            say(
                f"restarted: a new connection actor carries on (restart {now}); "
                f"no request lost"
            )
    totals.write_seconds = time.perf_counter() - start


def _read_back(
    client: Client,
    patterns: dict[tuple[int, int], bytes],
    totals: Totals,
    progress: Console | None,
    screen: Console,
) -> None:
    jobs = [
        job
        for (x, y), data in patterns.items()
        for job in read_pieces(x, y, 0, ADDRESS, len(data), key=(x, y))
    ]
    total = sum(len(data) for data in patterns.values())
    start = time.perf_counter()
    for outcome in run_pieces(client, jobs, Progress(progress, total, "read")):
        (x, y), begin = _chip_and_start(outcome.key)
        expected = patterns[(x, y)][begin : begin + PIECE]
        if bytes(outcome.value) == expected:
            totals.verified += len(expected)
        else:
            screen.print(f"MISMATCH on chip {x},{y} at 0x{ADDRESS + begin:08x}")
    totals.read_seconds = time.perf_counter() - start


def _chip_and_start(key: Hashable) -> tuple[tuple[int, int], int]:
    """The ((x, y), offset) a demo piece's key holds."""
    assert isinstance(key, tuple)
    assert len(key) == 2
    (x, y), start = key
    return (int(x), int(y)), int(start)


def _summary(client: Client, totals: Totals, screen: Console, virtual: bool) -> None:
    """A table of the figures, each with what it means."""
    stats = client.stats()
    restarts = client.supervision().restarts
    rtt = stats.rtt
    faults = (
        f"caused by the board's injected {DROP:.0%} drops"
        if virtual
        else "requests or replies the network lost"
    )
    table = Table(title="summary", title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("what it means")
    table.add_row(
        "written",
        f"{totals.written / 2**20:.2f} MiB",
        f"at {totals.written / totals.write_seconds / 1e6:.2f} MB/s",
    )
    table.add_row(
        "verified",
        f"{totals.verified / 2**20:.2f} MiB",
        f"read back at {totals.verified / totals.read_seconds / 1e6:.2f} MB/s, "
        f"every byte the byte written",
    )
    table.add_row(
        "resends",
        str(stats.resent),
        f"{faults}: {stats.fast_resent} resent early (replies to later "
        f"requests came first), {stats.timeouts} after a timeout",
    )
    table.add_row(
        "duplicates",
        str(stats.duplicates),
        "second copies of a reply"
        + (f" (the board duplicates {DUPLICATE:.0%})" if virtual else "")
        + ", ignored",
    )
    table.add_row(
        "restarts",
        str(restarts),
        "the connection actor killed on purpose, restarted by its supervisor",
    )
    table.add_row(
        "round trips",
        f"p50 {rtt.p50 * 1e3:.2f} ms",
        f"p90 {rtt.p90 * 1e3:.2f} ms, p99 {rtt.p99 * 1e3:.2f} ms",
    )
    screen.print(table)
    screen.print("(resends, duplicates and round trips count since the last restart)")
