"""What the board holds is what the last successful write said: a soak,
and what the write fences cost.

The board runs in its own process and drops, duplicates and reorders 2%
of the datagrams each way (seeded). Callers each write a random stretch of
their own 64 KiB region and read the whole region back, checking every
byte against a model of what they wrote; a killer crashes the connection
actor every few seconds.

    python bench/write_ordering.py soak [--seconds 600] [--callers 4]
    python bench/write_ordering.py cost [--seconds 10] [--rounds 3]

``soak`` prints operations, errors, wrong reads and bytes, kills and the
connection's counters. ``cost`` measures the worst case for the fences,
one caller writing then reading back the same 64 KiB region on a clean
board: write-read pairs a second and CPU per pair (this process's
user+sys), interleaved rounds, medians, for the default fence
(max_datagram_age 0.1 s), a fence of 0 s (no fence: the old behaviour,
unsafe under reordering) and network_duplicates=False.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import resource
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pykka  # noqa: E402

import actors.board.client  # noqa: E402
from actors import connect  # noqa: E402
from actors.board.client import Client
from actors.protocol import WindowSettings
from actors.supervision.child import Crash
from transport.virtual.process import BoardProcess  # noqa: E402

BASE = 0x6000_0000
REGION = 64 * 1024


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.operations = self.errors = self.wrong_reads = 0
        self.wrong_bytes = 0


def caller(client: Client, index: int, until: float, tally: Tally, seed: int) -> None:
    rng = random.Random(seed)
    address = BASE + index * REGION
    model = bytearray(REGION)
    client.write(1, 1, address, bytes(model))
    while time.monotonic() < until:
        size = rng.randint(1, 4096)
        offset = rng.randrange(REGION - size + 1)
        data = os.urandom(size)
        try:
            client.write(1, 1, address + offset, data)
            model[offset : offset + size] = data
            back = client.read(1, 1, address, REGION)
        except Exception:  # noqa: BLE001 - counted, and the model is unsure
            with tally.lock:
                tally.errors += 1
            client.write(1, 1, address, bytes(model))
            continue
        wrong = sum(a != b for a, b in zip(back, model, strict=True))
        with tally.lock:
            tally.operations += 2
            if wrong:
                tally.wrong_reads += 1
                tally.wrong_bytes += wrong


def soak(seconds: float, callers: int, kill_every: float) -> int:
    board = BoardProcess(2, 2, drop=0.02, duplicate=0.02, reorder=0.02)
    client = connect(*board.address, max_restarts=1_000_000, period=1)
    tally = Tally()
    until = time.monotonic() + seconds
    stop = threading.Event()
    kills = 0

    def killer() -> None:
        nonlocal kills
        rng = random.Random(3)
        while not stop.wait(rng.uniform(0.5, 1.5) * kill_every):
            ref = client.connection_actor
            if ref is not None:
                try:
                    ref.tell(Crash())
                    kills += 1
                except pykka.ActorDeadError:
                    pass

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    workers = [
        threading.Thread(target=caller, args=(client, i, until, tally, 10 + i))
        for i in range(callers)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    stop.set()
    thread.join()
    stats = client.stats()
    client.close()
    board.stop()
    print(
        f"soak: {seconds:.0f} s, {callers} callers, board dropping, "
        f"duplicating and reordering 2% each way"
    )
    print(
        f"  operations {tally.operations}, errors {tally.errors}, "
        f"wrong reads {tally.wrong_reads} ({tally.wrong_bytes} bytes), "
        f"kills {kills}"
    )
    print(
        f"  sent {stats.sent}, resent {stats.resent} (fast "
        f"{stats.fast_resent}), timeouts {stats.timeouts}, duplicates "
        f"{stats.duplicates}, malformed {stats.malformed}, retired "
        f"{stats.retired}, late {stats.late}"
    )
    return 0 if tally.wrong_reads == 0 else 1


class FenceOptions(TypedDict, total=False):
    """The Client options the cost compares (the rest as by default)."""

    max_datagram_age: float
    network_duplicates: bool


def pairs(
    address: tuple[str, int], seconds: float, options: FenceOptions
) -> tuple[float, float]:
    """Write-then-read pairs of one 64 KiB region a second, and CPU
    seconds per pair."""
    with connect(*address, **options) as client:
        data = os.urandom(REGION)
        client.write(1, 1, BASE, data)
        start, used, n = time.monotonic(), cpu(), 0
        while time.monotonic() - start < seconds:
            client.write(1, 1, BASE, data)
            client.read(1, 1, BASE, REGION)
            n += 1
        elapsed, used = time.monotonic() - start, cpu() - used
    return n / elapsed, used / n


@dataclass(frozen=True)
class NoFastResend(WindowSettings):
    """A window's settings with fast resend off."""

    fast_resend_after: int = 0


def lossy_write(address: tuple[str, int], mib: int, fast: bool) -> float:
    """MB/s of a ``mib`` MiB write; ``fast`` False turns fast resend off
    (the window's setting; the client does not offer it, so its module
    makes its settings with NoFastResend meanwhile)."""
    settings: contextlib.AbstractContextManager[object] = (
        contextlib.nullcontext()
        if fast
        else mock.patch.object(actors.board.client, "WindowSettings", NoFastResend)
    )
    with settings, connect(*address) as client:
        data = os.urandom(mib << 20)
        start = time.monotonic()
        client.write(1, 1, BASE, data)
        elapsed = time.monotonic() - start
        assert client.read(1, 1, BASE, len(data)) == data
    return len(data) / elapsed / 1e6


def cost(seconds: float, rounds: int) -> int:
    board = BoardProcess(2, 2)
    settings: dict[str, FenceOptions] = {
        "fence 0.1 s (default)": {},
        "fence 0 s (unsafe)": {"max_datagram_age": 0.0},
        "network_duplicates=False": {"network_duplicates": False},
    }
    rates: dict[str, list[float]] = {name: [] for name in settings}
    cpus: dict[str, list[float]] = {name: [] for name in settings}
    for _ in range(rounds):
        for name, options in settings.items():
            rate, per = pairs(board.address, seconds, options)
            rates[name].append(rate)
            cpus[name].append(per)
    board.stop()
    lossy = BoardProcess(2, 2, drop=0.01)
    writes: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(rounds):
        for fast in (True, False):
            writes[fast].append(lossy_write(lossy.address, 8, fast))
    lossy.stop()
    print(
        f"8 MiB write, board dropping 1% of requests, {rounds} rounds, "
        f"medians: fast resend on {statistics.median(writes[True]):.1f} "
        f"MB/s, off {statistics.median(writes[False]):.1f} MB/s"
    )
    print(
        f"write-then-read of one {REGION // 1024} KiB region, clean "
        f"board, {rounds} rounds of {seconds:.0f} s, medians"
    )
    for name in settings:
        print(
            f"  {name:28s} {statistics.median(rates[name]):8.1f} pairs/s "
            f"(spread {min(rates[name]):.1f}..{max(rates[name]):.1f}), "
            f"CPU {statistics.median(cpus[name]) * 1e3:.2f} ms/pair"
        )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    run = sub.add_parser("soak")
    run.add_argument("--seconds", type=float, default=600.0)
    run.add_argument("--callers", type=int, default=4)
    run.add_argument("--kill-every", type=float, default=5.0)
    measure = sub.add_parser("cost")
    measure.add_argument("--seconds", type=float, default=10.0)
    measure.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.what == "soak":
        return soak(args.seconds, args.callers, args.kill_every)
    return cost(args.seconds, args.rounds)


if __name__ == "__main__":
    raise SystemExit(main())
