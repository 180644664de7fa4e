"""How fast a supervised ConnectionActor comes back, and what restarts leak.

The board runs in its own process (transport.virtual.process.BoardProcess).

(a) Restart latency: Crash is sent to the client's ConnectionActor and the
    clock runs until a version() call has been answered by the new
    incarnation; median and max over ``--kills`` kills, against the target
    "serving again within 100 ms" (met when the worst kill meets it).
(b) Leaks: ``--restarts`` supervised restarts in a loop (crash, then a
    version() call the new incarnation answers), with threads, registered
    actors, open file descriptors and RSS before the client was made and
    after it closed.

Log output is silenced (pykka logs every crash with its traceback, the
supervisor logs each exit and restart): the numbers are the supervision's
own cost.

    python bench/supervision.py [--kills 50] [--restarts 10000]
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pykka  # noqa: E402
import structlog  # noqa: E402

from actors import Client, connect  # noqa: E402
from actors.supervision.child import Crash
from transport.virtual.process import BoardProcess  # noqa: E402

TARGET = 0.100
Ref = pykka.ActorRef[Any]


def quiet() -> None:
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL)
    )
    for name in ("pykka", "actors", "transport"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def next_incarnation(client: Client, last: Ref | None, limit: float = 10.0) -> Ref:
    """The running connection actor once it is not ``last`` (asks the
    supervisor until it is)."""
    deadline = time.perf_counter() + limit
    while True:
        ref = client.connection_actor
        if (
            ref is not None
            and ref.is_alive()
            and (last is None or ref.actor_urn != last.actor_urn)
        ):
            return ref
        if time.perf_counter() > deadline:
            raise RuntimeError("the connection actor did not come back")


def crash(client: Client, last: Ref | None) -> Ref:
    while True:
        ref = next_incarnation(client, last)
        try:
            ref.tell(Crash())
        except pykka.ActorDeadError:
            continue
        return ref


def latency(client: Client, kills: int) -> list[float]:
    """Seconds from Crash to a version() answered by the next incarnation."""
    client.version()
    times = []
    for _ in range(kills):
        ref = next_incarnation(client, None)
        started = time.perf_counter()
        ref.tell(Crash())
        client.version()
        times.append(time.perf_counter() - started)
        answered_by = next_incarnation(client, None)
        assert answered_by.actor_urn != ref.actor_urn
    return times


def status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def resources() -> dict[str, int]:
    gc.collect()
    return {
        "threads": threading.active_count(),
        "actors": len(pykka.ActorRegistry.get_all()),
        "fds": len(os.listdir("/proc/self/fd")),
        "rss_kib": status_kib("VmRSS"),
    }


def settle(before: dict[str, int], limit: float = 10.0) -> None:
    """Threads end a moment after their actor's last reply."""
    deadline = time.perf_counter() + limit
    while (
        threading.active_count() > before["threads"] and time.perf_counter() < deadline
    ):
        time.sleep(0.01)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--restarts", type=int, default=10_000)
    args = parser.parse_args(argv)
    quiet()

    board = BoardProcess()
    try:
        print(f"board process at {board.address[0]}:{board.address[1]}")

        # (a) restart latency
        with connect(*board.address, max_restarts=10**9, period=1) as client:
            times = latency(client, args.kills)
            restarts = client.supervision().restarts
        median, worst = statistics.median(times), max(times)
        print(
            f"(a) restart latency over {args.kills} kills "
            f"({restarts} restarts): median {median * 1e3:.2f} ms, "
            f"max {worst * 1e3:.2f} ms, "
            f"p90 {sorted(times)[int(0.9 * len(times))] * 1e3:.2f} ms"
        )
        verdict = "met" if worst <= TARGET else "MISSED"
        print(
            f"    target: serving again within {TARGET * 1e3:.0f} ms "
            f"after every kill: {verdict}"
        )

        # (b) restarts in a loop
        before = resources()
        started = time.perf_counter()
        with connect(*board.address, max_restarts=10**9, period=1) as client:
            client.version()
            last: Ref | None = None
            for _ in range(args.restarts):
                last = crash(client, last)
                # Answered by the next incarnation: a wait on a queue, not a
                # busy poll (polling WhereIs in a tight loop holds the GIL
                # and makes each restart ~25 times slower).
                client.version()
            next_incarnation(client, last)
            restarts = client.supervision().restarts
            during = resources()
        elapsed = time.perf_counter() - started
        settle(before)
        after = resources()
        print(
            f"(b) {restarts} supervised restarts of a ConnectionActor in "
            f"{elapsed:.1f} s ({elapsed / max(restarts, 1) * 1e6:.0f} us "
            f"each)"
        )
        print(f"    {'':10} {'before':>10} {'running':>10} {'after':>10} {'delta':>10}")
        for key in ("threads", "actors", "fds", "rss_kib"):
            print(
                f"    {key:10} {before[key]:>10} {during[key]:>10} "
                f"{after[key]:>10} {after[key] - before[key]:>+10}"
            )
        leaked = [key for key in ("threads", "actors") if after[key] != before[key]]
        if abs(after["fds"] - before["fds"]) > 2:
            leaked.append("fds")
        print("    leaks: " + (", ".join(leaked) if leaked else "none"))
        return 1 if leaked or restarts != args.restarts else 0
    finally:
        board.stop()


if __name__ == "__main__":
    sys.exit(main())
