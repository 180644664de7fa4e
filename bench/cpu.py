"""Client CPU per request: what decides how many boards one core can drive.

Each contender reads from a virtual board in a process of its own, and
itself runs in a child process, which measures the CPU of the read itself
(process_time around it: every thread of the child; a Machine's workers'
from /proc), so that the interpreter's start, the imports and connecting
are not in it. (Those were taken out by subtracting a zero-byte run of the
same child until 2026-12-07, but they vary by tens of milliseconds a run:
+-7 us a request in a paced 2 MiB read, as much as what was measured.)
Rounds are interleaved (each starting with the next contender) so that a
noisy neighbour hurts every contender alike; medians and spreads are
printed, with ratios to the bare loop.

    python bench/cpu.py [--mib 8] [--rounds 5] [--quick]
                        [--settings w8,paced,w1,drop,boards,latency]
                        [--against TREE] [--placement apart|any]

Settings: window 8 unpaced; window 8 against a board paced at a real
board's ~70 us a request (the figure that decides boards per core:
1e6 / (14,500 reads/s x CPU per request)); window 1; window 8 with 1% of
requests dropped; 8 paced boards read at once by one process (a Machine
with workers=0, and with 2 workers; against a bare select() loop over the
8 sockets); and ``latency``: how long after the paced board sent its reply
a version() asked during a read returns (the board's capture stamps the
reply, the child the return, both on the wall clock), against a bare
loop that asks on its read's own socket (the host's floor: its wake-ups
and stalls, no actors). ``--against TREE``
adds this project as checked out in another tree (e.g. a ``git worktree``
of an older commit), for before and after figures in one interleaved run.
A single board's process runs on one CPU and the children on the others
(``--placement apart``): a real board is another machine, and a child
the scheduler puts on its board's core is woken more cheaply than by a
real board's reply (the bare loop's paced figure halves, in some rounds
and not others).
"""

from __future__ import annotations

import argparse
import bisect
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypedDict, cast

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cpu_children import CHILDREN, MANY  # noqa: E402

from transport.capture.pcap import read_packets  # noqa: E402
from transport.links.endpoint import Address  # noqa: E402
from transport.virtual.board import REALISTIC_SERVICE_TIME  # noqa: E402
from transport.virtual.process import BoardProcess  # noqa: E402

BASE = 0x6000_0000
MIB = 1 << 20
#: Reads a second a real board answers: what a paced figure is scaled by.
BOARD_READS_PER_SECOND = 14_500


def child_main(argv: list[str]) -> int:
    kind, where, size, window = argv
    tree = os.environ.get("SPINNACTORS_TREE")
    if tree:  # this project as checked out there, not here
        sys.path.insert(0, tree)
        for name in [
            name
            for name in sys.modules
            if name.split(".")[0] in ("actors", "messages", "transport")
        ]:
            del sys.modules[name]
    addresses = [
        (host, int(port)) for host, port in (one.split(":") for one in where.split(","))
    ]
    figures: float | str
    if kind in MANY:
        figures = MANY[kind](addresses, int(size), int(window))
    else:
        figures = CHILDREN[kind](*addresses[0], int(size), int(window))
    sys.stdout.write(f"{figures}\n")
    return 0


# -- the parent: runs children and reads their CPU -------------------------------


@dataclass(frozen=True)
class Contender:
    label: str
    kind: str
    tree: str | None = None


@dataclass(frozen=True)
class Placement:
    """Which CPUs a single board's process and the contender's child may
    run on (None: any). ``apart`` puts the board on one CPU and the child
    on the others, as a real board is another machine: a child that
    shares a core with its board is woken by a switch from the board's
    process, cheaper than the wake from an idle core that a real board's
    reply costs, and the scheduler puts them together in some rounds and
    apart in others (the bare loop's paced figure then varies 2x)."""

    name: str
    board: frozenset[int] | None = None
    client: frozenset[int] | None = None

    @classmethod
    def of(cls, name: str) -> Placement:
        allowed = sorted(os.sched_getaffinity(0)) if name == "apart" else []
        if len(allowed) < 2:
            return cls("any")
        return cls(name, frozenset(allowed[:1]), frozenset(allowed[1:]))

    def __str__(self) -> str:
        if self.board is None or self.client is None:
            return "board and child on any CPU"
        return f"board on CPU {_cpus(self.board)}, child on CPU {_cpus(self.client)}"


def _cpus(cpus: frozenset[int]) -> str:
    return ",".join(map(str, sorted(cpus)))


@dataclass(frozen=True)
class Run:
    cpu: float
    mb_per_s: float
    #: What else the child printed after its MB/s.
    extra: tuple[float, ...] = ()
    #: CPU seconds the board processes spent meanwhile (if asked).
    boards_cpu: float = 0.0
    #: The child's whole user + sys (os.wait4): start-up, imports and
    #: close as well as the read, which ``cpu`` is when the child says it.
    whole: float = 0.0


def run_child(
    contender: Contender,
    address: Address | Sequence[Address],
    size: int,
    window: int,
    boards: Sequence[int] = (),
    script: str = __file__,
    cpus: Collection[int] | None = None,
) -> Run:
    """One child run: the MB/s it saw and the CPU seconds of its read, as
    it says them; and the CPU seconds of the ``boards`` (their process
    ids) meanwhile. ``script --child KIND ...`` is the child (another
    bench's children); one that prints its MB/s alone is charged its
    whole user + sys from os.wait4 (see ``measure``'s ``baseline``).
    ``cpus``: the CPUs the child may run on."""
    addresses = (
        [cast(Address, address)]
        if isinstance(address[0], str)
        else list(cast(Sequence[Address], address))
    )
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
            ",".join(f"{host}:{port}" for host, port in addresses),
            str(size),
            str(window),
        ],
        stdout=subprocess.PIPE,
        env=env,
        cwd="/",
        preexec_fn=None if cpus is None else lambda: os.sched_setaffinity(0, cpus),
    )
    assert process.stdout is not None
    boards_before = sum(map(process_cpu, boards))
    output = process.stdout.read()
    whole = reap(process, contender.label)
    process.stdout.close()
    boards_cpu = sum(map(process_cpu, boards)) - boards_before
    mb_per_s, *said = map(float, output.split())
    cpu, *extra = said or [whole]
    return Run(cpu, mb_per_s, tuple(extra), boards_cpu, whole)


def process_cpu(pid: int) -> float:
    """CPU seconds (user + sys) of every thread of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
    """A contender's runs in one setting, and the zero-byte baselines to
    take from them (bench/metrics_cost.py's; cpu.py's children measure
    their reads alone)."""

    runs: list[Run]
    baselines: list[float]

    def cpu_per_request(self, requests: int) -> list[float]:
        """Microseconds per request of each run, less the median baseline
        (if any)."""
        base = statistics.median(self.baselines) if self.baselines else 0.0
        return [(run.cpu - base) / requests * 1e6 for run in self.runs]


def measure(
    contenders: list[Contender],
    address: Address | Sequence[Address],
    size: int,
    window: int,
    rounds: int,
    boards: Sequence[int] = (),
    script: str = __file__,
    baseline: bool = False,
    wait4: bool = False,
    cpus: Collection[int] | None = None,
) -> dict[str, Figures]:
    """Each contender's runs in ``rounds`` interleaved rounds; the CPU of
    the ``boards`` processes is taken too. With ``baseline`` each run has
    a zero-byte run of the same child before it, whose CPU is taken off
    (for children that do not time their read themselves); ``wait4``
    does the same with each child's whole user + sys from os.wait4, in
    place of what it says of its read; ``cpus``: where the children run."""
    figures = {c.label: Figures([], []) for c in contenders}
    for round_ in range(rounds):
        # Each round starts with the next contender, so that none always
        # runs in the same place in the order.
        turn = round_ % len(contenders)
        for contender in contenders[turn:] + contenders[:turn]:
            entry = figures[contender.label]
            if baseline or wait4:
                zero = run_child(contender, address, 0, window, boards, script, cpus)
                entry.baselines.append(zero.whole if wait4 else zero.cpu)
            run = run_child(contender, address, size, window, boards, script, cpus)
            entry.runs.append(replace(run, cpu=run.whole) if wait4 else run)
    return figures


def spread(values: list[float]) -> str:
    return f"{min(values):.1f}-{max(values):.1f}"


def report(
    setting: str,
    figures: dict[str, Figures],
    requests: int,
    paced: bool,
    single_bare: float | None = None,
    what: str = "reads",
) -> dict[str, float]:
    """Print a setting's table; the median CPU per request by contender.
    ``single_bare``: the bare loop's paced figure on one board, which
    many boards' figures are also put against; ``what`` the requests are."""
    medians = {
        label: statistics.median(f.cpu_per_request(requests))
        for label, f in figures.items()
    }
    bare = medians.get("bare")
    boards = any(run.boards_cpu for f in figures.values() for run in f.runs)
    print(f"\n{setting} ({requests} {what} of 256 bytes)")
    print(
        f"  {'contender':<32}{'us/request':>11}{'spread':>13}"
        f"{'x bare':>8}{'MB/s':>8}"
        + ("  boards/core" if paced else "")
        + ("  boards' cores" if boards else "")
    )
    for label, entry in figures.items():
        per_request = entry.cpu_per_request(requests)
        median = medians[label]
        ratio = f"{median / bare:.2f}" if bare else "-"
        line = (
            f"  {label:<32}{median:>11.1f}{spread(per_request):>13}"
            f"{ratio:>8}{_mb(figures, label):>8.1f}"
        )
        if paced:
            line += f"  {1e6 / (BOARD_READS_PER_SECOND * median):>11.2f}"
        if boards:
            # (an idle board costs next to nothing: their CPU over the reads)
            busy = statistics.median(
                r.boards_cpu * r.mb_per_s * 1e6 / (requests * 256) for r in entry.runs
            )
            line += f"  {busy:>14.2f}"
        print(line)
    for label in figures:
        # "spinnactors@TREE..." against "spinnactors...", as measured here
        if "@" not in label:
            continue
        tree = label.split("@", 1)[1].split(",", 1)[0]
        mine = label.replace(f"@{tree}", "", 1)
        if mine in medians:
            print(
                f"  {mine} / {label}: {medians[mine] / medians[label]:.3f}x CPU "
                f"per request, {_mb(figures, mine) / _mb(figures, label):.3f}x MB/s"
            )
    if single_bare:
        for label in figures:
            if label.startswith("spinnactors"):
                print(
                    f"  {label} / the bare loop on one paced board: "
                    f"{medians[label] / single_bare:.2f}x CPU per request"
                )
    return medians


def _mb(figures: dict[str, Figures], label: str) -> float:
    return statistics.median(run.mb_per_s for run in figures[label].runs)


# -- how soon a version asked during a paced read returns ------------------------


#: How long after a reply's send a board's capture may stamp it, at most.
_STAMP_LAG = 0.001


@dataclass
class Latency:
    """A contender's version() returns, each less the board's reply."""

    delays: list[float] = field(default_factory=list)
    mb_per_s: list[float] = field(default_factory=list)


def measure_latency(
    contenders: list[Contender], size: int, rounds: int, placement: Placement
) -> dict[str, Latency]:
    """Each contender reads ``size`` bytes from a paced board, in
    interleaved rounds, asking for its version meanwhile; the board's
    capture says when it sent each version's reply. (A board a run: one
    capture of every run would outgrow what a capture keeps.)"""
    out = {contender.label: Latency() for contender in contenders}
    with tempfile.TemporaryDirectory() as folder:
        capture = str(Path(folder) / "board.pcap")
        for round_ in range(rounds):
            turn = round_ % len(contenders)
            for contender in contenders[turn:] + contenders[:turn]:
                with BoardProcess(
                    service_time=REALISTIC_SERVICE_TIME,
                    capture=capture,
                    cpus=placement.board,
                ) as board:
                    run = run_child(
                        contender, board.address, size, 8, cpus=placement.client
                    )
                sent = _version_replies(capture, board.address)
                latency = out[contender.label]
                latency.mb_per_s.append(run.mb_per_s)
                for returned in run.extra:
                    # (The capture stamps a reply once its send returned:
                    # a quick client has it by then. The next version is
                    # asked VERSION_EVERY after this one returned.)
                    at = bisect.bisect_right(sent, returned + _STAMP_LAG)
                    if at:
                        latency.delays.append(max(0.0, returned - sent[at - 1]))
    return out


def _version_replies(capture: str, board: Address) -> list[float]:
    """When the board sent each datagram that is not a 256-byte read's
    reply (a version's), in order."""
    from messages.scp.layout import REPLY_DATA_OFFSET

    with open(capture, "rb") as file:
        return sorted(
            packet.stamp
            for packet in read_packets(file)
            if packet.source == board and len(packet.payload) != REPLY_DATA_OFFSET + 256
        )


def report_latency(figures: dict[str, Latency]) -> None:
    print(
        "\nversion() during a read from a board paced at 70 us a request: "
        "its return less the board's reply (wall clocks)"
    )
    print(
        f"  {'contender':<32}{'versions':>9}{'p50 us':>9}{'p99 us':>9}"
        f"{'max us':>9}{'MB/s':>8}"
    )
    for label, entry in figures.items():
        delays = sorted(entry.delays)
        if not delays:
            print(f"  {label:<32}  no version matched a reply")
            continue
        p99 = delays[min(len(delays) - 1, int(0.99 * len(delays)))]
        print(
            f"  {label:<32}{len(delays):>9}{statistics.median(delays) * 1e6:>9.0f}"
            f"{p99 * 1e6:>9.0f}{delays[-1] * 1e6:>9.0f}"
            f"{statistics.median(entry.mb_per_s):>8.2f}"
        )


# -- the parent ------------------------------------------------------------------


class BoardOptions(TypedDict, total=False):
    """What a setting asks of its BoardProcess (the rest as by default)."""

    service_time: float
    drop: float


#: name: (label, window, board options, share of size, boards)
SETTINGS: dict[str, tuple[str, int, BoardOptions, float, int]] = {
    "w8": ("window 8, unpaced", 8, {}, 1.0, 1),
    "paced": (
        "window 8, board paced at 70 us a request",
        8,
        {"service_time": REALISTIC_SERVICE_TIME},
        0.25,
        1,
    ),
    "w1": ("window 1, unpaced", 1, {}, 1.0, 1),
    "drop": ("window 8, 1% of requests dropped", 8, {"drop": 0.01}, 0.25, 1),
    "boards": (
        "8 boards paced at 70 us a request, read at once (MB/s: all 8)",
        8,
        {"service_time": REALISTIC_SERVICE_TIME},
        0.125,
        8,
    ),
}


def contenders_for(name: str, trees: list[str], spinnman: bool) -> list[Contender]:
    """Who runs in setting ``name`` (SpiNNMan waits 1 s per lost reply,
    so it is left out of the drop setting, and it has no reader of many
    boards at once)."""
    against = [(f"@{Path(tree).name}", str(Path(tree).resolve())) for tree in trees]
    if name == "latency":
        return [
            Contender("bare", "bare-latency"),
            Contender("spinnactors", "spinnactors-latency"),
        ] + [
            Contender(f"spinnactors{at}", "spinnactors-latency", tree)
            for at, tree in against
        ]
    if name == "boards":
        return [Contender("bare", "bare-boards")] + [
            Contender(f"spinnactors{at}, workers={n}", f"machine-{n}", tree)
            for at, tree in [("", None), *against]
            for n in (0, 2)
        ]
    chosen = [Contender("bare", "bare"), Contender("spinnactors", "spinnactors")]
    chosen += [Contender(f"spinnactors{at}", "spinnactors", t) for at, t in against]
    if spinnman and name != "drop":
        chosen.append(Contender("spinnman", "spinnman"))
    return chosen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mib", type=float, default=8, help="MiB read per run (default: %(default)s)"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="1 MiB, 3 rounds")
    parser.add_argument("--settings", default="w8,paced,w1,drop,boards,latency")
    parser.add_argument(
        "--against",
        metavar="TREE",
        action="append",
        default=[],
        help="also this project checked out in TREE (repeatable)",
    )
    parser.add_argument("--no-spinnman", action="store_true")
    parser.add_argument(
        "--placement",
        choices=("apart", "any"),
        default="apart",
        help="apart (default, with 2 CPUs or more): a single board's process "
        "on one CPU, the contender on the others; any: wherever the "
        "scheduler puts them (8 boards always run anywhere: they need "
        "more than a CPU)",
    )
    parser.add_argument(
        "--wait4",
        action="store_true",
        help="CPU as each child's user+sys from os.wait4 less a zero-byte "
        "run's, not the read's own (a Machine's workers are in it only as "
        "far as the child waited for them)",
    )
    args = parser.parse_args()
    size = int((1 if args.quick else args.mib) * MIB)
    rounds = 3 if args.quick else args.rounds
    placement = Placement.of(args.placement)
    print(
        f"{size / MIB:g} MiB per run at window 8 unpaced and in the latency "
        f"setting (a quarter in the others, an eighth a board with 8), median "
        f"of {rounds} interleaved rounds; CPU is "
        + (
            "the child's user+sys (os.wait4) less a zero-byte run's"
            if args.wait4
            else "that of the read alone, every thread of the child (and its workers)"
        )
        + f"; one board: {placement}",
        flush=True,
    )
    single_bare = None
    for name in args.settings.split(","):
        chosen = contenders_for(name, args.against, not args.no_spinnman)
        if name == "latency":
            report_latency(measure_latency(chosen, size, rounds, placement))
            continue
        label, window, options, share, n_boards = SETTINGS[name]
        run_size = max(256, int(size * share) // 256 * 256)
        many = n_boards > 1
        where = Placement("any") if many else placement
        boards = [BoardProcess(**options, cpus=where.board) for _ in range(n_boards)]
        try:
            figures = measure(
                chosen,
                [board.address for board in boards],
                run_size,
                window,
                rounds,
                [board.pid for board in boards if board.pid] if many else (),
                wait4=args.wait4,
                cpus=where.client,
            )
        finally:
            for board in boards:
                board.stop()
        paced = "service_time" in options
        medians = report(
            label,
            figures,
            n_boards * run_size // 256,
            paced,
            single_bare if many else None,
        )
        if name == "paced":
            single_bare = medians["bare"]
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        sys.exit(child_main(sys.argv[2:]))
    sys.exit(main())
