"""What one wake-up costs this host's CPU: a timer's, and a datagram's.

A client reading from a paced board wakes either once per reply (the bare
loop: a blocking receive, woken by the reply's arrival) or once per
several (spinnactors' Coalescer: a sleep on a timer, then every reply
that gathered). Which costs less per reply depends on what each kind of
wake costs, and that is the host's: in a virtual machine a timer is set
and fires through the hypervisor, while a datagram's wake is partly paid
by its sender (whose CPU sends the wake-up). So bench/cpu.py's paced
ratio to the bare loop has a floor set here: a wake that gathers
``g`` replies beats a wake per reply only by what ``g`` timer wakes'
worth of work saves.

    python bench/wakes.py [--rounds 7] [--wakes 3000] [--interval-us 300]

Each round, a child pinned to one CPU (where bench/cpu.py runs a paced
client) wakes ``--wakes`` times, every ``--interval-us``: on a timer
(``time.sleep``), and blocked in a receive on a UDP socket to which a
process on another CPU (where bench/cpu.py runs the board) sends one
datagram each interval. The CPU (user + sys) the child spends per wake
is printed, median and spread of the interleaved rounds, and the ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import socket
import statistics
import subprocess
import sys
import time

#: Datagrams the waker sends before the count starts (the child warms up).
_WARM_UP = 20


def child(kind: str, wakes: int, interval: float, port: int) -> float:
    """CPU seconds the ``wakes`` wake-ups cost this process."""
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", port))
    if kind == "datagram":
        for _ in range(_WARM_UP):
            receiver.recv(2048)
    before = resource.getrusage(resource.RUSAGE_SELF)
    if kind == "timer":
        for _ in range(wakes):
            time.sleep(interval)
    else:
        for _ in range(wakes):
            receiver.recv(2048)
    after = resource.getrusage(resource.RUSAGE_SELF)
    receiver.close()
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def waker(port: int, interval: float) -> None:
    """Send a datagram to ``port`` every ``interval`` until killed,
    spinning between sends (a sleep's own lateness would set the pace)."""
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    payload = bytes(270)  # (a read's reply)
    due = time.perf_counter()
    while True:
        with contextlib.suppress(ConnectionRefusedError):  # (not bound yet)
            sender.sendto(payload, ("127.0.0.1", port))
        due += interval
        while time.perf_counter() < due:
            pass


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def run(
    kind: str, wakes: int, interval: float, cpus: tuple[set[int], set[int]]
) -> float:
    """Microseconds of CPU per wake in one child of ``kind``."""
    board_cpus, client_cpus = cpus
    port = _free_port()
    script = os.path.abspath(__file__)
    sending = None
    if kind == "datagram":
        sending = subprocess.Popen(
            [sys.executable, script, "--waker", str(port), str(interval)],
            preexec_fn=lambda: os.sched_setaffinity(0, board_cpus),
        )
    try:
        output = subprocess.run(
            [sys.executable, script, "--child", kind]
            + [str(wakes), str(interval), str(port)],
            check=True,
            capture_output=True,
            text=True,
            preexec_fn=lambda: os.sched_setaffinity(0, client_cpus),
        ).stdout
    finally:
        if sending is not None:
            sending.kill()
            sending.wait()
    return float(output) / wakes * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--wakes", type=int, default=3000)
    parser.add_argument("--interval-us", type=float, default=300.0)
    args = parser.parse_args()
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        parser.error("needs 2 CPUs: the waker on one, the child on another")
    cpus = ({allowed[0]}, set(allowed[1:]))
    interval = args.interval_us * 1e-6
    kinds = ("timer", "datagram")
    figures: dict[str, list[float]] = {kind: [] for kind in kinds}
    for round_ in range(args.rounds):
        for kind in kinds[round_ % 2 :] + kinds[: round_ % 2]:
            figures[kind].append(run(kind, args.wakes, interval, cpus))
    print(
        f"CPU per wake of a child on CPU {','.join(map(str, sorted(cpus[1])))}, "
        f"{args.wakes} wakes {args.interval_us:g} us apart, median of "
        f"{args.rounds} interleaved rounds"
    )
    medians = {kind: statistics.median(values) for kind, values in figures.items()}
    labels = {
        "timer": "a timer (time.sleep)",
        "datagram": "a datagram from another CPU (blocking receive)",
    }
    for kind in kinds:
        values = figures[kind]
        print(
            f"  {labels[kind]:48s} {medians[kind]:6.1f} us"
            f"  ({min(values):.1f}-{max(values):.1f})"
        )
    ratio = medians["timer"] / medians["datagram"]
    print(f"  a timer's wake costs {ratio:.2f}x a datagram's")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind, wakes, interval, port = sys.argv[2:]
        sys.stdout.write(f"{child(kind, int(wakes), float(interval), int(port))}\n")
        sys.exit(0)
    if len(sys.argv) > 1 and sys.argv[1] == "--waker":
        waker(int(sys.argv[2]), float(sys.argv[3]))
    sys.exit(main())
