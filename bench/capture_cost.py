"""What a packet capture costs: bench/pipeline_throughput.py's read, with
and without ``capture=``, in interleaved rounds against one virtual board
in a process of its own.

    python bench/capture_cost.py [--mib 8] [--rounds 9] [--window 8]

Two boards: one that answers at once (the client's own overhead is the
limit, so this is the capture's worst case) and one at a real board's
pace (--realistic: a few MB/s, what a capture of real hardware sees).
Reported for each: the median MB/s without and with a capture, their
ratio (the issue's target: a capture costs at most 15%, ratio >= 0.85),
the process's CPU time with a capture over without, the writer thread's
share, and what the capture wrote and dropped.
Each captured round writes a pcap file into a
temporary folder, removed at the end.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from actors import connect  # noqa: E402
from transport.board import REALISTIC_SERVICE_TIME  # noqa: E402
from transport.board_process import BoardProcess  # noqa: E402
from transport.capture import PacketCapture  # noqa: E402

BASE = 0x6000_0000
MIB = 1 << 20
Address = tuple[str, int]


def read_rate(
    address: Address, size: int, window: int, capture: PacketCapture | None
) -> tuple[float, float]:
    """MB/s of one read of ``size`` bytes (the capture's writing, and its
    close, inside the timed part: what a user waits for), and the CPU
    seconds this process took."""
    cpu = time.process_time()
    start = time.perf_counter()
    with connect(*address, window=window, capture=capture) as client:
        data = client.read(0, 0, BASE, size)
    if capture is not None:
        capture.close()
    elapsed = time.perf_counter() - start
    assert len(data) == size
    return size / elapsed / 1e6, time.process_time() - cpu


def measure(
    address: Address, size: int, window: int, rounds: int, folder: str, label: str
) -> dict[str, float]:
    """Interleaved rounds without and with a capture: medians, ratios."""
    plain: list[float] = []
    captured: list[float] = []
    cpu = {"plain": 0.0, "captured": 0.0, "writer": 0.0}
    written = dropped = 0
    read_rate(address, min(size, 4 * MIB), window, None)  # warm up
    for round_ in range(rounds):
        rate, seconds = read_rate(address, size, window, None)
        plain.append(rate)
        cpu["plain"] += seconds
        capture = PacketCapture(Path(folder) / f"{label}{round_}.pcap")
        rate, seconds = read_rate(address, size, window, capture)
        captured.append(rate)
        cpu["captured"] += seconds
        cpu["writer"] += capture.writer_seconds
        written += capture.written
        dropped += capture.dropped
        print(
            f"{label} round {round_ + 1}: {plain[-1]:.1f} MB/s plain, "
            f"{captured[-1]:.1f} MB/s captured",
            flush=True,
        )
    return {
        "plain": statistics.median(plain),
        "captured": statistics.median(captured),
        "ratio": statistics.median(captured) / statistics.median(plain),
        "cpu": cpu["captured"] / cpu["plain"],
        "writer_share": cpu["writer"] / cpu["captured"],
        "writer_us": cpu["writer"] / max(written, 1) * 1e6,
        "written": written,
        "dropped": dropped,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=8, help="MiB read per round")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--window", type=int, default=8)
    args = parser.parse_args()
    size = args.mib * MIB
    fast, paced = BoardProcess(), BoardProcess(service_time=REALISTIC_SERVICE_TIME)
    try:
        with tempfile.TemporaryDirectory() as folder:
            figures = {
                "fast board": measure(
                    fast.address, size, args.window, args.rounds, folder, "fast"
                ),
                "real board's pace": measure(
                    paced.address, size // 4, args.window, args.rounds, folder, "paced"
                ),
            }
    finally:
        fast.stop()
        paced.stop()
    print(
        f"median of {args.rounds} interleaved rounds, window {args.window} "
        f"({args.mib} MiB a round on the fast board, {args.mib / 4:g} on the paced)"
    )
    print(f"{'setting':<20}{'plain':>8}{'captured':>10}{'ratio':>8}{'CPU':>8}  (MB/s)")
    for label, f in figures.items():
        verdict = "met" if f["ratio"] >= 0.85 else "MISSED"
        print(
            f"{label:<20}{f['plain']:8.1f}{f['captured']:10.1f}{f['ratio']:7.3f}x"
            f"{f['cpu']:7.3f}x  target ratio >= 0.85: {verdict}; writer thread "
            f"{f['writer_share']:.0%} of the CPU, {f['writer_us']:.2f} us a "
            f"datagram; {f['written']} written, {f['dropped']} dropped"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
