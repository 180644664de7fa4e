"""What a packet capture costs: bench/pipeline_throughput.py's read, with
and without ``capture=``, in interleaved rounds against one virtual board
in a process of its own.

    python bench/capture_cost.py [--mib 16] [--rounds 7] [--window 8]

Reported: the median MB/s of each, their ratio (the issue's target: a
capture costs at most 15%, so the ratio >= 0.85), what the capture
wrote and dropped, and the CPU time it added (a figure a busy machine
disturbs less than MB/s). Each captured round writes a pcap file into a
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=16, help="MiB read per round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--window", type=int, default=8)
    args = parser.parse_args()
    size = args.mib * MIB
    board = BoardProcess()
    plain: list[float] = []
    captured: list[float] = []
    written = dropped = 0
    cpu = {"plain": 0.0, "captured": 0.0, "writer": 0.0}
    try:
        with tempfile.TemporaryDirectory() as folder:
            read_rate(board.address, min(size, 4 * MIB), args.window, None)  # warm
            for round_ in range(args.rounds):
                rate, seconds = read_rate(board.address, size, args.window, None)
                plain.append(rate)
                cpu["plain"] += seconds
                capture = PacketCapture(Path(folder) / f"round{round_}.pcap")
                rate, seconds = read_rate(board.address, size, args.window, capture)
                captured.append(rate)
                cpu["captured"] += seconds
                cpu["writer"] += capture.writer_seconds
                written += capture.written
                dropped += capture.dropped
                print(
                    f"round {round_ + 1}: {plain[-1]:.1f} MB/s plain, "
                    f"{captured[-1]:.1f} MB/s captured",
                    flush=True,
                )
    finally:
        board.stop()
    ratio = statistics.median(captured) / statistics.median(plain)
    print(
        f"median of {args.rounds} rounds reading {args.mib} MiB, window "
        f"{args.window}: {statistics.median(plain):.1f} MB/s plain, "
        f"{statistics.median(captured):.1f} MB/s captured"
    )
    print(
        f"captured / plain {ratio:.3f}x  target >= 0.85: "
        f"{'met' if ratio >= 0.85 else 'MISSED'}; {written} datagrams "
        f"written, {dropped} dropped"
    )
    print(
        f"CPU of this process: {cpu['captured'] / cpu['plain']:.3f}x with a "
        f"capture; its writer thread took {cpu['writer'] / cpu['captured']:.1%} "
        f"of it ({cpu['writer'] / max(written, 1) * 1e6:.2f} us a datagram)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
