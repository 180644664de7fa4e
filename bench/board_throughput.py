"""How many 256-byte reads per second a `spinnactors board` process serves.

A bare socket client keeps WINDOW read requests outstanding against a board
running in its own process and counts replies. This is the fastest a client
can go, so it is the figure the board must keep above: issue 2 asks for at
least 50,000 reads/s with a window of 8.

    python bench/board_throughput.py [--requests N] [--runs R] [--window W]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pipeline_throughput import bare_loop  # noqa: E402

TARGET = 50_000


def start_board() -> tuple[subprocess.Popen[str], tuple[str, int]]:
    board = subprocess.Popen(
        [sys.executable, "-m", "actors.app.cli", "board", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert board.stdout is not None
    line = board.stdout.readline().strip()
    if not line.startswith("listening on "):
        board.kill()
        raise SystemExit(f"board did not start: {line!r}")
    host, port = line.removeprefix("listening on ").rsplit(":", 1)
    return board, (host, int(port))


def reads_per_second(address: tuple[str, int], requests: int, window: int) -> float:
    """The bare socket loop of pipeline_throughput, counted in reads."""
    mb_per_s = bare_loop(address, requests * 256, window)
    return mb_per_s * 1e6 / 256


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--window", type=int, default=8)
    args = parser.parse_args()
    board, address = start_board()
    try:
        reads_per_second(address, 5_000, args.window)  # warm up
        rates = [
            reads_per_second(address, args.requests, args.window)
            for _ in range(args.runs)
        ]
    finally:
        board.terminate()
        board.wait(10)
    median = statistics.median(rates)
    print(
        f"board at {address[0]}:{address[1]}, window {args.window}, "
        f"{args.requests} reads of 256 bytes per run, {args.runs} runs"
    )
    print("runs (reads/s): " + ", ".join(f"{rate:,.0f}" for rate in rates))
    print(
        f"median: {median:,.0f} reads/s = "
        f"{median * 256 / 1e6:.1f} MB/s of payload; "
        f"{median / TARGET:.2f}x the {TARGET:,} reads/s target"
    )
    return 0 if median >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
