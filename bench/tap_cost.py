"""What a capture's tap costs per datagram, alone: a UDP socket sends a
270-byte datagram to itself and receives it, plain or tapped into a
PacketCapture, in child processes (CPU from os.wait4, less a zero-length
run of the same child), interleaved with the same for other checkouts.

    python bench/tap_cost.py [--rounds 9] [--datagrams 100000] [--against TREE]

It isolates the capture's hot path (what the connection's thread does per
datagram) from the board and the pipeline, whose noise hides a fraction of
a microsecond in bench/capture_cost.py on a shared machine.
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def child(kind: str, count: int) -> None:
    """Send and receive ``count`` datagrams on one socket, tapped or not."""
    sys.path.insert(0, os.environ.get("SPINNACTORS_TREE", str(ROOT)))
    try:
        from transport.capture.tap import TappedUDPEndpoint, attach
        from transport.capture.writer import PacketCapture
        from transport.links.endpoint import UDPEndpoint

        plain, tapped, tap = UDPEndpoint, TappedUDPEndpoint, attach
        capture_file = PacketCapture
    except ImportError:  # a tree from before transport/ had subpackages
        # (not this tree's modules: looked up by name, so unchecked)
        old = importlib.import_module("transport.capture")
        capture_file, tap = old.PacketCapture, old.attach
        plain = tapped = importlib.import_module("transport.endpoint").UDPEndpoint
    endpoint: Any = (tapped if kind == "tapped" else plain)("127.0.0.1", 0)
    endpoint.connect(endpoint.address)
    address, data = endpoint.address, bytes(270)
    with tempfile.TemporaryDirectory() as folder:
        capture = None
        if kind == "tapped":
            capture = capture_file(Path(folder) / "tap.pcap")
            endpoint = tap(endpoint, capture)
        for _ in range(count):
            endpoint.send_to(data, address)
            endpoint.receive_from(1.0)
        endpoint.close()
        if capture is not None:
            capture.close()
            assert capture.written == 2 * count, (capture.written, capture.dropped)


def run(kind: str, tree: str, count: int) -> float:
    """A child's CPU seconds (user + sys)."""
    env = dict(os.environ, SPINNACTORS_TREE=tree)
    command = [sys.executable, __file__, "--child", kind, str(count)]
    process = subprocess.Popen(command, env=env, cwd="/")
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{kind} child of {tree} failed")
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--datagrams", type=int, default=100_000)
    parser.add_argument("--against", metavar="TREE", action="append", default=[])
    args = parser.parse_args()
    trees = [str(ROOT), *(str(Path(tree).resolve()) for tree in args.against)]
    kinds = ("plain", "tapped")
    micros: dict[tuple[str, str], list[float]] = {
        (tree, kind): [] for tree in trees for kind in kinds
    }
    for round_ in range(args.rounds):
        turn = round_ % 2  # who goes first alternates
        for tree in trees[turn:] + trees[:turn]:
            for kind in kinds[turn:] + kinds[:turn]:
                base = run(kind, tree, 0)
                cpu = run(kind, tree, args.datagrams) - base
                micros[tree, kind].append(cpu / (2 * args.datagrams) * 1e6)
    print(
        f"median of {args.rounds} interleaved rounds, {args.datagrams} datagrams "
        f"each way a run; CPU per datagram (us), the child's user+sys less a "
        f"zero-length run's"
    )
    for tree in trees:
        plain, tapped = micros[tree, "plain"], micros[tree, "tapped"]
        extra = [t - p for p, t in zip(plain, tapped, strict=True)]
        cost = statistics.median(extra)
        print(
            f"{Path(tree).name:<12} plain {statistics.median(plain):6.3f}  tapped "
            f"{statistics.median(tapped):6.3f}  the tap: +{cost:.3f}"
            f" (rounds {min(extra):.3f}..{max(extra):.3f})"
        )
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]))
        sys.exit(0)
    sys.exit(main())
