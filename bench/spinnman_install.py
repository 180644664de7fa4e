"""SpiNNMan's Transceiver with and without actors.compat.install().

Throughput and CPU: each contender runs ``Transceiver.read_memory`` of
``--mib`` MiB (8 by default) in a child process of its own against a
virtual board in another, so that its CPU time (user + sys, from
os.wait4) is its own; a zero-byte run of the same child (interpreter
start, imports, the Transceiver made and closed) is subtracted, leaving
the CPU the requests cost. Rounds are interleaved; medians and spreads
are printed, for a board answering as fast as it can (``w8``) and one
paced at a real board's ~70 us a request (``paced``, a quarter of the
size), and ``Transceiver.write_memory`` of the same size unpaced
(``write``), with install()'s ratios to plain SpiNNMan (bench/cpu.py's
measuring helpers).

    python bench/spinnman_install.py [--mib 8] [--rounds 5]
                                     [--settings w8,paced,write]

Chaos (``--chaos``): the write/read-back workload of
tests/system/test_spinnman_chaos.py, through SpiNNMan's Transceiver,
against a board dropping, duplicating and reordering 2% each way: on
plain SpiNNMan, and installed with the connection actor killed every 1-3
s. Rounds done, exceptions and wrong bytes for each.

    python bench/spinnman_install.py --chaos [--chaos-rounds 8]
                                     [--chaos-installed-rounds 100]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import cpu  # noqa: E402

from transport.virtual.board import REALISTIC_SERVICE_TIME  # noqa: E402
from transport.virtual.process import BoardProcess  # noqa: E402

BASE = 0x6000_0000
MIB = 1 << 20


def _configure() -> None:
    """SpiNNMan's configuration for a SpiNN-5, as its own tests set it."""
    from spinn_utilities.config_holder import set_config
    from spinnman.config_setup import unittest_setup

    unittest_setup()
    set_config("Machine", "version", "5")


def transceiver_read(host: str, port: int, size: int, window: int) -> float:
    """Plain SpiNNMan: its Transceiver reads ``size`` bytes; MB/s.
    (``window`` is SpiNNMan's own: 8 channels, 7 waits.)"""
    from spinnman.connections.udp_packet_connections import SCAMPConnection
    from spinnman.transceiver import create_transceiver_from_connections

    _configure()
    connection = SCAMPConnection(0, 0, remote_host=host, remote_port=port)
    txrx = create_transceiver_from_connections([connection])
    try:
        start = time.perf_counter()
        data = txrx.read_memory(0, 0, BASE, size) if size else b""
        elapsed = time.perf_counter() - start
    finally:
        txrx.close()
    assert len(data) == size
    return size / max(elapsed, 1e-9) / 1e6


def installed_read(host: str, port: int, size: int, window: int) -> float:
    """The same, after actors.compat.install()."""
    from actors.compat import install

    install()
    return transceiver_read(host, port, size, window)


def transceiver_write(host: str, port: int, size: int, window: int) -> float:
    """Plain SpiNNMan: its Transceiver writes ``size`` bytes; MB/s."""
    from spinnman.connections.udp_packet_connections import SCAMPConnection
    from spinnman.transceiver import create_transceiver_from_connections

    _configure()
    data = bytes(range(256)) * (size // 256)
    connection = SCAMPConnection(0, 0, remote_host=host, remote_port=port)
    txrx = create_transceiver_from_connections([connection])
    try:
        start = time.perf_counter()
        written, _ = txrx.write_memory(0, 0, BASE, data) if size else (0, 0)
        elapsed = time.perf_counter() - start
    finally:
        txrx.close()
    assert written == size
    return size / max(elapsed, 1e-9) / 1e6


def installed_write(host: str, port: int, size: int, window: int) -> float:
    """The same, after actors.compat.install()."""
    from actors.compat import install

    install()
    return transceiver_write(host, port, size, window)


CHILDREN = {
    "spinnman": transceiver_read,
    "installed": installed_read,
    "spinnman-write": transceiver_write,
    "installed-write": installed_write,
}


def child_main(argv: list[str]) -> int:
    kind, where, size, window = argv  # (bench/cpu.py's run_child: "host:port")
    host, port = where.rsplit(":", 1)
    figures = CHILDREN[kind](host, int(port), int(size), int(window))
    sys.stdout.write(f"{figures}\n")
    return 0


def throughput(size: int, rounds: int, settings: list[str]) -> None:
    # (name: label, board options, share of size, children's suffix)
    chosen: dict[str, tuple[str, cpu.BoardOptions, float, str]] = {
        "w8": ("Transceiver.read_memory, unpaced board", {}, 1.0, ""),
        "paced": (
            "Transceiver.read_memory, board paced at 70 us a request",
            {"service_time": REALISTIC_SERVICE_TIME},
            0.25,
            "",
        ),
        "write": ("Transceiver.write_memory, unpaced board", {}, 1.0, "-write"),
    }
    print(
        f"{size / MIB:g} MiB per run unpaced (a quarter paced), median of "
        f"{rounds} interleaved rounds; CPU is the child's user+sys less a "
        f"zero-byte run's",
        flush=True,
    )
    for name in settings:
        label, options, share, suffix = chosen[name]
        contenders = [
            cpu.Contender("spinnman", "spinnman" + suffix),
            cpu.Contender("spinnman + install()", "installed" + suffix),
        ]
        run_size = max(256, int(size * share) // 256 * 256)
        requests = run_size // 256
        with BoardProcess(**options) as board:
            figures = cpu.measure(
                contenders,
                board.address,
                run_size,
                8,
                rounds,
                script=__file__,
                baseline=True,
            )
        what = "writes" if suffix else "reads"
        cpu.report(label, figures, requests, name == "paced", what=what)
        plain, ours = (figures[c.label] for c in contenders)
        mb_plain = cpu._mb(figures, "spinnman")
        mb_ours = cpu._mb(figures, contenders[1].label)
        per_request = statistics.median(
            ours.cpu_per_request(requests)
        ) / statistics.median(plain.cpu_per_request(requests))
        print(
            f"  install() / plain: {mb_ours / mb_plain:.3f}x MB/s "
            f"({mb_ours:.2f} against {mb_plain:.2f}; spread {_spread(ours)} "
            f"against {_spread(plain)}), {per_request:.2f}x CPU per request"
        )
        sys.stdout.flush()


def _spread(figures: cpu.Figures) -> str:
    speeds = [run.mb_per_s for run in figures.runs]
    return f"{min(speeds):.2f}-{max(speeds):.2f}"


def chaos(rounds: int, installed_rounds: int) -> None:
    """The chaos test's workload on plain SpiNNMan and installed (with
    kills; more rounds, so that the killer has time to kill), one after
    the other, against one lossy board each."""
    from actors.compat import installed
    from tests.system.spinnman_kit import transceiver
    from tests.system.test_spinnman_chaos import Killer, lossy_board, workload

    _configure()
    print(
        "rounds of a 128 KiB write and read-back through Transceiver, "
        "2% drop, duplicate and reorder each way"
    )
    for label in ("spinnman", "spinnman + install(), actor killed every 1-3 s"):
        n = rounds if label == "spinnman" else installed_rounds
        with lossy_board(seed=77) as board:
            start = time.perf_counter()
            if label == "spinnman":
                with transceiver(board.address) as txrx:
                    outcome = workload(txrx, n, seed=5)
                kills = 0
            else:
                with (
                    installed(),
                    transceiver(board.address) as txrx,
                    Killer(seed=9) as killer,
                ):
                    outcome = workload(txrx, n, 5, lambda: killer.kills < 4)
                kills = killer.kills
            elapsed = time.perf_counter() - start
        errors = sorted({type(e).__name__ for e in outcome.errors})
        moved = 2 * outcome.rounds * 128 * 1024 / 1e6
        print(
            f"  {label}: {outcome.rounds}/{n} rounds done, "
            f"{len(outcome.errors)} raised {errors}, {outcome.wrong} wrong bytes, "
            f"{kills} kills, {elapsed:.1f} s ({moved / elapsed:.2f} MB/s)"
        )
        sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=float, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--settings", default="w8,paced,write")
    parser.add_argument("--chaos", action="store_true")
    parser.add_argument("--chaos-rounds", type=int, default=8)
    parser.add_argument("--chaos-installed-rounds", type=int, default=100)
    args = parser.parse_args()
    if args.chaos:
        chaos(args.chaos_rounds, args.chaos_installed_rounds)
    else:
        throughput(int(args.mib * MIB), args.rounds, args.settings.split(","))
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        sys.exit(child_main(sys.argv[2:]))
    sys.exit(main())
