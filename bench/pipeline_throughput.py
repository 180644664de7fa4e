"""Read throughput of this project against a bare socket loop and SpiNNMan.

Each contender reads from the same virtual board, which runs in its own
process (one core for the board, one for the client), in interleaved
rounds so that a noisy neighbour hurts all of them alike. Reported: the
median MB/s of each contender per setting, and the ratios the issue's
targets are about.

    python bench/pipeline_throughput.py [--mib 16] [--rounds 5] [--quick]

Settings: window 8 on a clean link; window 8 with the board dropping 1% of
the requests it receives; window 1 (one request at a time) on a clean
link. A separate child process reads 64 MiB and reports its peak of
Python-allocated memory (tracemalloc) above the baseline, as a multiple of
the data size.
"""

from __future__ import annotations

import argparse
import multiprocessing
import socket
import statistics
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from actors import connect  # noqa: E402
from messages.scp.bulk import ChunkBuilder  # noqa: E402
from messages.scp.layout import REPLY_DATA_OFFSET, SEQUENCE, SEQUENCE_OFFSET  # noqa: E402
from transport.links.endpoint import Address  # noqa: E402
from transport.virtual.process import BoardProcess  # noqa: E402

BASE = 0x6000_0000
MIB = 1 << 20


# -- the contenders ---------------------------------------------------------------


def bare_loop(address: Address, size: int, window: int) -> float:
    """The practical limit: a plain socket keeping ``window`` reads in
    flight, resending everything outstanding after 0.2 s of silence."""
    builder = ChunkBuilder(0, 0, 0)
    sequence_of, at, full = SEQUENCE, SEQUENCE_OFFSET, REPLY_DATA_OFFSET + 256
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    requests = size // 256
    datagrams = []
    for index in range(min(requests, 1 << 16)):
        datagram = builder.read(BASE + 256 * index, 256)
        sequence_of.pack_into(datagram, at, index)
        datagrams.append(bytes(datagram))
    outstanding: dict[int, bytes] = {}
    sent = done = 0
    start = time.perf_counter()
    while done < requests:
        while len(outstanding) < window and sent < requests:
            seq = sent & 0xFFFF
            sock.sendto(datagrams[seq], address)
            outstanding[seq] = datagrams[seq]
            sent += 1
        try:
            reply = sock.recv(1024)
        except TimeoutError:
            for pending in outstanding.values():
                sock.sendto(pending, address)
            continue
        seq = sequence_of.unpack_from(reply, at)[0]
        if seq in outstanding and len(reply) == full:
            del outstanding[seq]
            done += 1
    elapsed = time.perf_counter() - start
    sock.close()
    return size / elapsed / 1e6


def spinnactors_read(address: Address, size: int, window: int) -> float:
    with connect(*address, window=window) as client:
        start = time.perf_counter()
        data = client.read(0, 0, BASE, size)
        elapsed = time.perf_counter() - start
    assert len(data) == size
    return size / elapsed / 1e6


def spinnman_read(address: Address, size: int, window: int) -> float:
    from spinnman.connections.scp_request_pipeline import SCPRequestPipeLine
    from spinnman.connections.udp_packet_connections import SCAMPConnection
    from spinnman.messages.scp.impl import ReadMemory
    from spinnman.messages.scp.impl.read_memory import Response

    connection = SCAMPConnection(remote_host=address[0], remote_port=address[1])
    received = [0]
    errors: list[Exception] = []

    def got(response: Response) -> None:
        received[0] += response.length

    def failed(request: object, error: Exception, *_: object) -> None:
        errors.append(error)

    try:
        pipeline: SCPRequestPipeLine[Response] = SCPRequestPipeLine(
            connection, n_channels=window
        )
        start = time.perf_counter()
        for offset in range(0, size, 256):
            pipeline.send_request(
                ReadMemory((0, 0, 0), BASE + offset, 256), got, failed
            )
        pipeline.finish()
        elapsed = time.perf_counter() - start
    finally:
        connection.close()
    if errors:
        raise RuntimeError(f"SpiNNMan failed: {errors[0]}")
    assert received[0] == size
    return size / elapsed / 1e6


Contender = Callable[[Address, int, int], float]


def measure(
    contenders: dict[str, tuple[Contender, int]],
    address: Address,
    window: int,
    rounds: int,
) -> dict[str, float]:
    """Median MB/s of each contender over interleaved rounds."""
    figures: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, (run, size) in contenders.items():
            figures[name].append(run(address, size, window))
    return {name: statistics.median(runs) for name, runs in figures.items()}


# -- memory ---------------------------------------------------------------------


def _peak_of_read(address: Address, size: int, pipe: Connection) -> None:
    import gc
    import tracemalloc

    with connect(*address) as client:
        client.read(0, 0, BASE, 256)  # warm up
        gc.collect()
        tracemalloc.start()
        baseline = tracemalloc.get_traced_memory()[0]
        data = client.read(0, 0, BASE, size)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert len(data) == size
    pipe.send((peak - baseline) / size)


def read_memory_ratio(address: Address, size: int) -> float:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_peak_of_read, args=(address, size, child))
    process.start()
    ratio: float = parent.recv()
    process.join(60)
    return ratio


# -- the report -----------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mib", type=int, default=16, help="MiB read per run (default: %(default)s)"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--quick", action="store_true", help="2 MiB, 3 rounds, 16 MiB memory check"
    )
    args = parser.parse_args()
    size = (2 if args.quick else args.mib) * MIB
    rounds = 3 if args.quick else args.rounds
    lossy_spinnman = min(size, 256 * 1024)  # SpiNNMan stalls 1 s per loss

    clean, lossy = BoardProcess(), BoardProcess(drop=0.01)
    try:
        print(
            f"boards: clean {clean.address}, 1% request drop "
            f"{lossy.address}; {size // MIB} MiB per run, median of "
            f"{rounds} rounds",
            flush=True,
        )
        w8 = measure(
            {
                "bare": (bare_loop, size),
                "spinnactors": (spinnactors_read, size),
                "spinnman": (spinnman_read, size),
            },
            clean.address,
            8,
            rounds,
        )
        drop = measure(
            {
                "spinnactors": (spinnactors_read, size),
                "spinnman": (spinnman_read, lossy_spinnman),
            },
            lossy.address,
            8,
            rounds,
        )
        w1 = measure(
            {
                "bare": (bare_loop, size // 4),
                "spinnactors": (spinnactors_read, size // 4),
                "spinnman": (spinnman_read, size // 4),
            },
            clean.address,
            1,
            rounds,
        )
        memory = read_memory_ratio(clean.address, (16 if args.quick else 64) * MIB)
    finally:
        clean.stop()
        lossy.stop()

    rows = [
        ("clean, window 8", w8),
        ("1% drop, window 8", drop),
        ("clean, window 1", w1),
    ]
    print(f"{'setting':<20}{'bare':>10}{'spinnactors':>13}{'spinnman':>10}   (MB/s)")
    for label, figures in rows:
        cells = [
            f"{figures[name]:.1f}" if name in figures else "-"
            for name in ("bare", "spinnactors", "spinnman")
        ]
        print(f"{label:<20}{cells[0]:>10}{cells[1]:>13}{cells[2]:>10}")
    targets = [
        ("clean w8: spinnactors / bare", w8["spinnactors"] / w8["bare"], 0.85),
        ("clean w8: spinnactors / spinnman", w8["spinnactors"] / w8["spinnman"], 1.8),
        (
            "1% drop w8: spinnactors / its clean",
            drop["spinnactors"] / w8["spinnactors"],
            0.5,
        ),
        ("1% drop w8: spinnman / its clean", drop["spinnman"] / w8["spinnman"], None),
        ("w1: spinnactors / bare", w1["spinnactors"] / w1["bare"], 0.9),
        ("w1: spinnman / bare", w1["spinnman"] / w1["bare"], None),
        (f"{(16 if args.quick else 64)} MiB read: peak memory / size", memory, None),
    ]
    for label, ratio, target in targets:
        verdict = (
            ""
            if target is None
            else f"  target >= {target}: {'met' if ratio >= target else 'MISSED'}"
        )
        print(f"{label:<40}{ratio:7.3f}x{verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
