"""Client CPU per request: what decides how many boards one core can drive.

Each contender reads from a virtual board in a process of its own, and
itself runs in a child process, so that its CPU time (user + sys, from
os.wait4) is its own. A zero-byte run of the same child (interpreter start,
imports, connect, close) is subtracted, leaving the CPU the requests cost.
Rounds are interleaved (each starting with the next contender) so that a
noisy neighbour hurts every contender alike; medians and spreads are
printed, with ratios to the bare loop.

    python bench/cpu.py [--mib 8] [--rounds 5] [--quick]
                        [--settings w8,paced,w1,drop] [--against TREE]

Settings: window 8 unpaced; window 8 against a board paced at a real
board's ~70 us a request (the figure that decides boards per core:
1e6 / (14,500 reads/s x CPU per request)); window 1; window 8 with 1% of
requests dropped. ``--against TREE`` adds this project as checked out in
another tree (e.g. a ``git worktree`` of an older commit), for before and
after figures in one interleaved run.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from transport.virtual.board import REALISTIC_SERVICE_TIME  # noqa: E402
from transport.virtual.process import BoardProcess  # noqa: E402

BASE = 0x6000_0000
MIB = 1 << 20
#: Reads a second a real board answers: what a paced figure is scaled by.
BOARD_READS_PER_SECOND = 14_500


# -- the children: each reads ``size`` bytes and prints its MB/s ---------------


def bare_loop(host: str, port: int, size: int, window: int) -> float:
    """The practical limit: a plain socket keeping ``window`` reads in
    flight, resending everything outstanding after 0.2 s of silence."""
    from messages.scp.bulk import ChunkBuilder
    from messages.scp.layout import REPLY_DATA_OFFSET, SEQUENCE, SEQUENCE_OFFSET

    builder = ChunkBuilder(0, 0, 0)
    sequence_of, at, full = SEQUENCE, SEQUENCE_OFFSET, REPLY_DATA_OFFSET + 256
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect((host, port))
    sock.settimeout(0.2)
    requests = size // 256
    outstanding: dict[int, bytes] = {}
    sent = done = 0
    start = time.perf_counter()
    while done < requests:
        while len(outstanding) < window and sent < requests:
            seq = sent & 0xFFFF
            datagram = builder.read(BASE + 256 * (sent % 4096), 256)
            sequence_of.pack_into(datagram, at, seq)
            sock.send(datagram)
            outstanding[seq] = bytes(datagram)
            sent += 1
        try:
            reply = sock.recv(1024)
        except TimeoutError:
            for datagram in outstanding.values():
                sock.send(datagram)
            continue
        seq = sequence_of.unpack_from(reply, at)[0]
        if seq in outstanding and len(reply) == full:
            del outstanding[seq]
            done += 1
    elapsed = time.perf_counter() - start
    sock.close()
    return size / max(elapsed, 1e-9) / 1e6


def spinnactors_read(host: str, port: int, size: int, window: int) -> float:
    from actors import connect

    with connect(host, port, window=window) as client:
        start = time.perf_counter()
        data = client.read(0, 0, BASE, size) if size else b""
        elapsed = time.perf_counter() - start
    assert len(data) == size
    return size / max(elapsed, 1e-9) / 1e6


def spinnman_read(host: str, port: int, size: int, window: int) -> float:
    from spinnman.connections.scp_request_pipeline import SCPRequestPipeLine
    from spinnman.connections.udp_packet_connections import SCAMPConnection
    from spinnman.messages.scp.impl import ReadMemory

    connection = SCAMPConnection(remote_host=host, remote_port=port)
    errors: list[Exception] = []

    def failed(request: object, error: Exception, *_: object) -> None:
        errors.append(error)

    start = time.perf_counter()
    try:
        pipeline = SCPRequestPipeLine(connection, n_channels=window)
        for offset in range(0, size, 256):
            pipeline.send_request(
                ReadMemory((0, 0, 0), BASE + offset, 256), lambda _: None, failed
            )
        pipeline.finish()
    finally:
        connection.close()
    if errors:
        raise RuntimeError(f"SpiNNMan failed: {errors[0]}")
    return size / max(time.perf_counter() - start, 1e-9) / 1e6


def spinnactors_captured_read(host: str, port: int, size: int, window: int) -> str:
    """spinnactors_read with ``capture=`` a pcap file (in a folder removed
    after): the capture's close, which writes what is left, is timed too.
    Also printed: datagrams written and dropped, the writer's CPU seconds."""
    import tempfile

    from actors import connect

    try:
        from transport.capture.writer import PacketCapture
    except ImportError:  # a tree from before transport/ had subpackages
        from transport.capture import PacketCapture  # type: ignore[no-redef]

    with tempfile.TemporaryDirectory() as folder:
        capture = PacketCapture(Path(folder) / "read.pcap")
        with connect(host, port, window=window, capture=capture) as client:
            start = time.perf_counter()
            data = client.read(0, 0, BASE, size) if size else b""
            elapsed = time.perf_counter() - start
        start = time.perf_counter()
        capture.close()
        elapsed += time.perf_counter() - start
    assert len(data) == size
    mb_per_s = size / max(elapsed, 1e-9) / 1e6
    return f"{mb_per_s} {capture.written} {capture.dropped} {capture.writer_seconds}"


CHILDREN: dict[str, Callable[[str, int, int, int], float | str]] = {
    "bare": bare_loop,
    "spinnactors": spinnactors_read,
    "spinnactors-capture": spinnactors_captured_read,
    "spinnman": spinnman_read,
}


def child_main(argv: list[str]) -> int:
    kind, host, port, size, window = argv
    tree = os.environ.get("SPINNACTORS_TREE")
    if tree:  # this project as checked out there, not here
        sys.path.insert(0, tree)
        for name in [
            name
            for name in sys.modules
            if name.split(".")[0] in ("actors", "messages", "transport")
        ]:
            del sys.modules[name]
    figures = CHILDREN[kind](host, int(port), int(size), int(window))
    sys.stdout.write(f"{figures}\n")
    return 0


# -- the parent: runs children and reads their CPU -------------------------------


@dataclass(frozen=True)
class Contender:
    label: str
    kind: str
    tree: str | None = None


@dataclass(frozen=True)
class Run:
    cpu: float
    mb_per_s: float
    #: What else the child printed after its MB/s.
    extra: tuple[float, ...] = ()


def run_child(
    contender: Contender,
    address: tuple[str, int],
    size: int,
    window: int,
    script: str = __file__,
) -> Run:
    """One child run: its CPU seconds (user + sys) and the MB/s it saw;
    ``script --child KIND ...`` is the child (another bench's children)."""
    env = dict(os.environ)
    env.pop("SPINNACTORS_TREE", None)
    if contender.tree:
        env["SPINNACTORS_TREE"] = contender.tree
    process = subprocess.Popen(
        [
            sys.executable,
            script,
            "--child",
            contender.kind,
            address[0],
            str(address[1]),
            str(size),
            str(window),
        ],
        stdout=subprocess.PIPE,
        env=env,
        cwd="/",
    )
    assert process.stdout is not None
    output = process.stdout.read()
    cpu = reap(process, contender.label)
    process.stdout.close()
    mb_per_s, *extra = map(float, output.split())
    return Run(cpu, mb_per_s, tuple(extra))


def reap(process: subprocess.Popen[Any], label: str) -> float:
    """Wait for a child that has ended its work: its CPU seconds (user +
    sys, from os.wait4); RuntimeError if it failed."""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{label} failed ({process.returncode})")
    return usage.ru_utime + usage.ru_stime


@dataclass
class Figures:
    """A contender's runs in one setting, and its zero-byte baselines."""

    runs: list[Run]
    baselines: list[float]

    def cpu_per_request(self, requests: int) -> list[float]:
        """Microseconds per request of each run, less the median baseline."""
        base = statistics.median(self.baselines)
        return [(run.cpu - base) / requests * 1e6 for run in self.runs]


def measure(
    contenders: list[Contender],
    address: tuple[str, int],
    size: int,
    window: int,
    rounds: int,
    script: str = __file__,
) -> dict[str, Figures]:
    figures = {c.label: Figures([], []) for c in contenders}
    for round_ in range(rounds):
        # Each round starts with the next contender, so that none always
        # runs in the same place in the order.
        turn = round_ % len(contenders)
        for contender in contenders[turn:] + contenders[:turn]:
            entry = figures[contender.label]
            entry.baselines.append(run_child(contender, address, 0, window, script).cpu)
            entry.runs.append(run_child(contender, address, size, window, script))
    return figures


def spread(values: list[float]) -> str:
    return f"{min(values):.1f}-{max(values):.1f}"


def report(
    setting: str,
    figures: dict[str, Figures],
    requests: int,
    paced: bool,
    what: str = "reads",
) -> None:
    medians = {
        label: statistics.median(f.cpu_per_request(requests))
        for label, f in figures.items()
    }
    bare = medians.get("bare")
    print(f"\n{setting} ({requests} {what} of 256 bytes)")
    print(
        f"  {'contender':<26}{'us/request':>11}{'spread':>13}"
        f"{'x bare':>8}{'MB/s':>8}" + ("  boards/core" if paced else "")
    )
    for label, entry in figures.items():
        per_request = entry.cpu_per_request(requests)
        median = medians[label]
        ratio = f"{median / bare:.2f}" if bare else "-"
        mb_per_s = statistics.median(run.mb_per_s for run in entry.runs)
        line = (
            f"  {label:<26}{median:>11.1f}{spread(per_request):>13}"
            f"{ratio:>8}{mb_per_s:>8.1f}"
        )
        if paced:
            line += f"  {1e6 / (BOARD_READS_PER_SECOND * median):>11.2f}"
        print(line)
    others = [label for label in figures if label.startswith("spinnactors@")]
    for label in others:
        ratio = medians["spinnactors"] / medians[label]
        print(
            f"  spinnactors / {label}: {ratio:.3f}x CPU per request, "
            f"{_mb(figures, 'spinnactors') / _mb(figures, label):.3f}x MB/s"
        )


def _mb(figures: dict[str, Figures], label: str) -> float:
    return statistics.median(run.mb_per_s for run in figures[label].runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mib", type=float, default=8, help="MiB read per run (default: %(default)s)"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="1 MiB, 3 rounds")
    parser.add_argument("--settings", default="w8,paced,w1,drop")
    parser.add_argument(
        "--against",
        metavar="TREE",
        action="append",
        default=[],
        help="also this project checked out in TREE (repeatable)",
    )
    parser.add_argument("--no-spinnman", action="store_true")
    args = parser.parse_args()
    size = int((1 if args.quick else args.mib) * MIB)
    rounds = 3 if args.quick else args.rounds
    contenders = [Contender("bare", "bare"), Contender("spinnactors", "spinnactors")]
    contenders += [
        Contender(
            f"spinnactors@{Path(tree).name}", "spinnactors", str(Path(tree).resolve())
        )
        for tree in args.against
    ]
    if not args.no_spinnman:
        contenders.append(Contender("spinnman", "spinnman"))
    # (label, window, board options, share of size, contenders' kinds)
    settings = {
        "w8": ("window 8, unpaced", 8, {}, 1.0),
        "paced": (
            "window 8, board paced at 70 us a request",
            8,
            {"service_time": REALISTIC_SERVICE_TIME},
            0.25,
        ),
        "w1": ("window 1, unpaced", 1, {}, 1.0),
        "drop": ("window 8, 1% of requests dropped", 8, {"drop": 0.01}, 0.25),
    }
    print(
        f"{size / MIB:g} MiB per run at window 8 unpaced (a quarter in "
        f"the other settings), median of {rounds} interleaved rounds; "
        f"CPU is the child's user+sys less a zero-byte run's",
        flush=True,
    )
    for name in args.settings.split(","):
        label, window, options, share = settings[name]
        run_size = max(256, int(size * share) // 256 * 256)
        chosen = [
            c for c in contenders if not (name == "drop" and c.kind == "spinnman")
        ]
        # SpiNNMan waits 1 s per lost reply: left out of the drop setting.
        with BoardProcess(**options) as board:  # type: ignore[arg-type]
            figures = measure(chosen, board.address, run_size, window, rounds)
        report(label, figures, run_size // 256, name == "paced")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        sys.exit(child_main(sys.argv[2:]))
    sys.exit(main())
