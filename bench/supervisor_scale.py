"""One Supervisor with many children: what start, stop and one restart
cost, and that the supervisor adds no thread per child.

Children are trivial Supervised actors (a thread each, pykka's); each
round starts one supervisor over ``--children`` of them (each on_start
waited for, one after another), crashes one child and times until its
new incarnation answers, then stops the supervisor (children in reverse
order, each thread joined). Each round also starts the same children
without waiting for their on_start (start_timeout=None), for the ratio.
Threads are counted with every child running: children's own plus a
constant. Medians (and the range) over ``--rounds``.

    python bench/supervisor_scale.py [--children 1000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pykka  # noqa: E402
import structlog  # noqa: E402

from actors.supervision import (  # noqa: E402
    ChildHandle,
    ChildSpec,
    Crash,
    Supervised,
    Supervisor,
    Watch,
    count_children,
)

Ref = pykka.ActorRef[Any]


class Trivial(Supervised):
    def on_receive(self, message: Any) -> Any:
        return "pong" if message == "ping" else super().on_receive(message)


def start(watch: Watch) -> Ref:
    return Trivial.start(watch=watch)


def start_unwaited(children: int) -> float:
    """Seconds to start ``children`` whose on_start is not waited for
    (start_timeout=None: the pre-OTP-ordering behaviour), for the ratio."""
    specs = [ChildSpec(f"c{i}", start, start_timeout=None) for i in range(children)]
    began = time.perf_counter()
    sup = Supervisor.start(specs, max_restarts=10, name="scale")
    count_children(sup, timeout=120)
    took = time.perf_counter() - began
    sup.stop(block=True, timeout=120)
    return took


def one_round(children: int) -> dict[str, float]:
    unwaited = start_unwaited(children)
    base = threading.active_count()
    specs = [ChildSpec(f"c{i}", start) for i in range(children)]
    began = time.perf_counter()
    sup = Supervisor.start(specs, max_restarts=10, name="scale")
    counts = count_children(sup, timeout=120)  # answered once all started
    started = time.perf_counter() - began
    assert counts.active == children, counts
    extra = threading.active_count() - base - children  # the supervisor's own

    middle = ChildHandle(sup, f"c{children // 2}")
    old = middle.current(10)
    began = time.perf_counter()
    old.tell(Crash())
    assert old.actor_stopped.wait(10)
    new = middle.current(10)  # waits for the new incarnation
    assert new != old
    assert new.ask("ping", timeout=10) == "pong"
    restarted = time.perf_counter() - began

    began = time.perf_counter()
    sup.stop(block=True, timeout=120)
    stopped = time.perf_counter() - began
    return {
        "start": started,
        "restart": restarted,
        "stop": stopped,
        "threads_beyond_children": float(extra),
        "start_ratio": started / unwaited,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL)
    )
    logging.getLogger("pykka").setLevel(logging.CRITICAL)
    rounds = [one_round(args.children) for _ in range(args.rounds)]
    print(f"one supervisor, {args.children} children, {args.rounds} rounds")
    for key, unit, scale in (
        ("start", "ms", 1e3),
        ("restart", "ms", 1e3),
        ("stop", "ms", 1e3),
    ):
        values = [r[key] * scale for r in rounds]
        per = statistics.median(values) / args.children * 1e3
        print(
            f"  {key:8} median {statistics.median(values):8.1f} {unit} "
            f"(range {min(values):.1f}-{max(values):.1f})"
            + (f", {per:.0f} us a child" if key != "restart" else "")
        )
    ratios = [r["start_ratio"] for r in rounds]
    print(
        f"  start waiting for each on_start / not waiting: median "
        f"{statistics.median(ratios):.2f}x (range {min(ratios):.2f}-{max(ratios):.2f})"
    )
    extra = sorted({int(r["threads_beyond_children"]) for r in rounds})
    print(f"  threads beyond the children's own: {extra}")


if __name__ == "__main__":
    main()
