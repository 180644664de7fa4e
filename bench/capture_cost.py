"""What a packet capture costs: bench/pipeline_throughput.py's read, with
and without ``capture=``, in interleaved rounds against one virtual board
in a process of its own.

    python bench/capture_cost.py [--mib 8] [--rounds 9] [--window 8]
                                 [--against TREE]

Each read runs in a child process of its own (bench/cpu.py's children),
which measures the CPU of its read (every thread of the child, the
capture's close included; until 2026-12-07 it was the child's user+sys
less a zero-byte run's). Two
boards: one that answers at once (the client's own overhead is the
limit, so this is the capture's worst case) and one at a real board's
pace (a few MB/s, what a capture of real hardware sees). Reported for
each: the median MB/s without and with a capture, their ratio (the
issue's target: a capture costs at most 15%, ratio >= 0.85), the CPU per
request without and with one and their ratio, the writer thread's share
of the captured CPU, and what the captures wrote and dropped. Each
captured read writes a pcap file into a temporary folder of its own,
removed when it ends. ``--against TREE`` also measures this project as
checked out in TREE (plain and captured), in the same interleaved rounds,
so a change's cost is read against the code before it on the same load.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cpu import MIB, BoardOptions, Contender, Figures, measure  # noqa: E402

from transport.virtual.board import REALISTIC_SERVICE_TIME  # noqa: E402
from transport.virtual.process import BoardProcess  # noqa: E402

PLAIN = Contender("plain", "spinnactors")
CAPTURED = Contender("captured", "spinnactors-capture")


def pair(tree: str | None = None) -> tuple[Contender, Contender]:
    """The plain and captured contenders of this checkout or of ``tree``."""
    if tree is None:
        return PLAIN, CAPTURED
    name = Path(tree).name
    path = str(Path(tree).resolve())
    return (
        Contender(f"plain@{name}", PLAIN.kind, path),
        Contender(f"captured@{name}", CAPTURED.kind, path),
    )


def summary(
    figures: dict[str, Figures],
    requests: int,
    contenders: tuple[Contender, Contender] = (PLAIN, CAPTURED),
) -> dict[str, float]:
    """Medians and ratios of one board's interleaved rounds, for one pair."""
    plain_of, captured_of = contenders
    plain, captured = figures[plain_of.label], figures[captured_of.label]
    rate = {
        c.label: statistics.median(run.mb_per_s for run in figures[c.label].runs)
        for c in contenders
    }
    cpu = {
        c.label: statistics.median(figures[c.label].cpu_per_request(requests))
        for c in contenders
    }
    # The children print written, dropped and the writer's CPU seconds.
    written = sum(int(run.extra[0]) for run in captured.runs)
    dropped = sum(int(run.extra[1]) for run in captured.runs)
    writer = sum(run.extra[2] for run in captured.runs)
    captured_cpu = sum(captured.cpu_per_request(requests)) * requests / 1e6
    ratios = [
        c.mb_per_s / p.mb_per_s for p, c in zip(plain.runs, captured.runs, strict=True)
    ]
    return {
        "plain": rate[plain_of.label],
        "captured": rate[captured_of.label],
        "ratio": rate[captured_of.label] / rate[plain_of.label],
        "low": min(ratios),
        "high": max(ratios),
        "plain_us": cpu[plain_of.label],
        "captured_us": cpu[captured_of.label],
        "cpu": cpu[captured_of.label] / cpu[plain_of.label],
        "writer_share": writer / max(captured_cpu, 1e-9),
        "written": written,
        "dropped": dropped,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=8, help="MiB read per round")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument(
        "--against",
        metavar="TREE",
        action="append",
        default=[],
        help="also this project checked out in TREE (repeatable)",
    )
    args = parser.parse_args()
    pairs = {"here": pair(), **{Path(t).name: pair(t) for t in args.against}}
    contenders = [c for both in pairs.values() for c in both]
    boards: dict[str, tuple[BoardOptions, int]] = {
        "fast board": ({}, args.mib * MIB),
        "real board's pace": (
            {"service_time": REALISTIC_SERVICE_TIME},
            args.mib * MIB // 4,
        ),
    }
    results = {}
    for label, (options, size) in boards.items():
        with BoardProcess(**options) as board:
            figures = measure(contenders, board.address, size, args.window, args.rounds)
        for name, both in pairs.items():
            row = label if name == "here" else f"{label} @{name}"
            results[row] = summary(figures, size // 256, both)
        print(f"{label}: done", flush=True)
    print(
        f"median of {args.rounds} interleaved rounds, window {args.window}, a "
        f"child process a read ({args.mib} MiB on the fast board, "
        f"{args.mib / 4:g} on the paced); CPU is that of the read alone, every "
        f"thread of the child"
    )
    print(
        f"{'board':<28}{'plain':>7}{'captured':>10}{'ratio':>8}{'spread':>11}"
        f"{'us/request':>16}{'CPU':>8}"
    )
    for label, f in results.items():
        verdict = "met" if f["ratio"] >= 0.85 else "MISSED"
        print(
            f"{label:<28}{f['plain']:7.1f}{f['captured']:10.1f}{f['ratio']:7.3f}x"
            f"{f['low']:6.2f}-{f['high']:.2f}"
            f"{f['plain_us']:8.1f} ->{f['captured_us']:5.1f}{f['cpu']:7.3f}x"
            f"  (MB/s; target ratio >= 0.85: {verdict}); writer thread "
            f"{f['writer_share']:.0%} of the captured CPU; {f['written']:.0f} "
            f"written, {f['dropped']:.0f} dropped"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
