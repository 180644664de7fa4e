"""What idle boards cost: start-up, threads and fds per board, idle CPU, close.

A large machine has hundreds of board endpoints, most of them idle most of
the time. For K boards (all names for one virtual board in a process of its
own, each with its own connection) this connects them as K separate
``connect()`` clients and through one Machine (``workers=0`` and
``workers=2``), reads 4 bytes from each, counts threads and open fds per
board, measures the CPU of the whole client process tree (this process and
its workers, from /proc) over an idle spell, and closes. ``start s`` is
the constructor, ``read s`` the first 4-byte read of every board after it
(a Machine's workers start their groups meanwhile). Each setting runs
in a fresh child process, with a time limit, so one that hangs is reported
instead of stalling the rest.

    python bench/idle.py [--boards 16,256,1024] [--idle 5] [--limit 180]
                         [--settings clients,machine-w0,machine-w2]

With SPINNACTORS_TREE=PATH in the environment the clients come from the
project as checked out at PATH (for before and after figures).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from transport.virtual.process import BoardProcess  # noqa: E402

BASE = 0x6000_0000
TICKS = os.sysconf("SC_CLK_TCK")


# -- the child: one setting, reported as one JSON line -------------------------


def tree_pids(root: int) -> list[int]:
    """``root`` and every process descended from it."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [root], [root]
    while frontier:
        children = [pid for pid, ppid in parents.items() if ppid in frontier]
        found += children
        frontier = children
    return found


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def threads_of(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            total += len(os.listdir(f"/proc/{pid}/task"))
        except OSError:
            continue
    return total


def fds_of(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            total += len(os.listdir(f"/proc/{pid}/fd"))
        except OSError:
            continue
    return total


def child_main(setting: str, k: int, host: str, port: int, idle: float) -> None:
    tree = os.environ.get("SPINNACTORS_TREE")
    if tree:  # this project as checked out there (e.g. an older commit)
        sys.path.insert(0, tree)
        for name in [name for name in sys.modules if name.split(".")[0] == "transport"]:
            del sys.modules[name]
    import structlog

    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL)
    )
    logging.disable(logging.CRITICAL)
    from actors import connect

    me = os.getpid()
    before_threads, before_fds = threading.active_count(), fds_of([me])
    start = time.perf_counter()
    if setting == "clients":
        boards = [connect(host, port) for _ in range(k)]

        def read_all() -> None:
            for board in boards:
                board.read(0, 0, BASE, 4)

        def close() -> None:
            for board in boards:
                board.close()
    else:
        workers = int(setting.rsplit("w", 1)[1])
        machine = connect({index: (host, port) for index in range(k)}, workers=workers)

        def read_all() -> None:
            for name in range(k):
                machine.read(name, 0, 0, BASE, 4)

        def close() -> None:
            machine.close()

    started = time.perf_counter() - start
    start = time.perf_counter()
    read_all()
    first_reads = time.perf_counter() - start
    pids = tree_pids(me)
    threads = threads_of(pids) - before_threads
    fds = fds_of(pids) - before_fds
    cpu_before = cpu_seconds(pids)
    time.sleep(idle)  # the idle spell being measured
    idle_cpu = (cpu_seconds(pids) - cpu_before) / idle
    start = time.perf_counter()
    close()
    closed = time.perf_counter() - start
    sys.stdout.write(
        json.dumps(
            {
                "start_s": started,
                "read_s": first_reads,
                "threads_per_board": threads / k,
                "fds_per_board": fds / k,
                "processes": len(pids),
                "idle_cores": idle_cpu,
                "close_s": closed,
            }
        )
        + "\n"
    )
    sys.stdout.flush()
    os._exit(0)  # what close() left running is not measured


# -- the parent ------------------------------------------------------------------


def run_setting(
    setting: str, k: int, address: tuple[str, int], idle: float, limit: float
) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--child",
        setting,
        str(k),
        address[0],
        str(address[1]),
        str(idle),
    ]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=limit, cwd="/"
        )
    except subprocess.TimeoutExpired:
        return {"error": f"not done within {limit:.0f} s"}
    if done.returncode != 0 or not done.stdout.strip():
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        return {"error": f"exit {done.returncode}: {tail[0][:120]}"}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boards", default="16,256,1024")
    parser.add_argument("--idle", type=float, default=5.0)
    parser.add_argument(
        "--limit", type=float, default=180.0, help="seconds per setting"
    )
    parser.add_argument("--settings", default="clients,machine-w0,machine-w2")
    args = parser.parse_args()
    print(
        f"idle spell {args.idle:g} s; each setting in a fresh process, "
        f"at most {args.limit:g} s; one board process serves every name",
        flush=True,
    )
    header = (
        f"{'setting':<12}{'boards':>7}{'start s':>9}{'read s':>8}{'thr/board':>10}"
        f"{'fd/board':>9}{'procs':>6}{'idle %core':>11}{'close s':>9}"
    )
    print(header)
    with BoardProcess() as board:
        for k in (int(n) for n in args.boards.split(",")):
            for setting in args.settings.split(","):
                figures = run_setting(setting, k, board.address, args.idle, args.limit)
                if "error" in figures:
                    print(f"{setting:<12}{k:>7}  {figures['error']}", flush=True)
                    continue
                print(
                    f"{setting:<12}{k:>7}{figures['start_s']:>9.2f}"
                    f"{figures['read_s']:>8.2f}"
                    f"{figures['threads_per_board']:>10.2f}"
                    f"{figures['fds_per_board']:>9.2f}{figures['processes']:>6}"
                    f"{100 * figures['idle_cores']:>11.1f}"
                    f"{figures['close_s']:>9.2f}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        setting, k, host, port, idle = sys.argv[2:]
        child_main(setting, int(k), host, int(port), float(idle))
    sys.exit(main())
