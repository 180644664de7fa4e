"""A VirtualBoard in a process of its own.

In the caller's process a board shares the GIL with the client it serves,
so figures measured against it are the client's and the board's together.
In a spawned process it has a core of its own, as a real board would;
``cpus`` keeps it off its client's (Linux): a client that shares a core
with its board is woken by a switch from the board's process, which is
cheaper than the wake-up from an idle core a real board's reply costs,
and the scheduler moves them together or apart from run to run.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Collection
from multiprocessing.connection import Connection
from types import TracebackType

from transport.links.endpoint import Address
from transport.links.faults import FaultPlan

#: How long a new board process may take to report its address.
START_TIMEOUT = 30.0


def _serve(
    width: int,
    height: int,
    faults: dict[str, float],
    sides: str,
    service_time: float,
    capture: str | None,
    cpus: Collection[int] | None,
    pipe: Connection,
) -> None:
    from transport.virtual.board import VirtualBoard  # in the child only

    if cpus is not None:
        os.sched_setaffinity(0, cpus)  # (before the board's threads start)

    plan = FaultPlan(**faults, seed=1) if any(faults.values()) else None
    board = VirtualBoard(
        width,
        height,
        faults=plan,
        fault_sides=sides,  # type: ignore[arg-type]
        service_time=service_time,
        capture=capture,
    )
    pipe.send(board.address)
    board.start()
    with contextlib.suppress(EOFError):  # the parent is gone
        pipe.recv()  # until told to stop
    board.stop()


class BoardProcess:
    """A ``width`` x ``height`` VirtualBoard on 127.0.0.1 in a spawned
    process; ``drop`` of the requests it receives are lost (seeded), and
    ``duplicate`` and ``reorder`` (each way) are as FaultPlan's;
    ``service_time`` paces it (REALISTIC_SERVICE_TIME: a real board's);
    ``capture``, a pcap file's path, records its wire (complete once the
    board has stopped); ``cpus``, the CPUs its process may run on."""

    def __init__(
        self,
        width: int = 2,
        height: int = 2,
        drop: float = 0.0,
        duplicate: float = 0.0,
        reorder: float = 0.0,
        service_time: float = 0.0,
        capture: str | None = None,
        cpus: Collection[int] | None = None,
    ) -> None:
        if cpus is not None:
            if not hasattr(os, "sched_setaffinity"):
                raise ValueError("cpus: this platform cannot pin a process to CPUs")
            allowed = os.sched_getaffinity(0)
            if not cpus or not set(cpus) <= allowed:
                raise ValueError(
                    f"cpus={sorted(cpus)}: must be some of this process's "
                    f"{sorted(allowed)}"
                )
        faults = {"drop": drop, "duplicate": duplicate, "reorder": reorder}
        sides = "both" if duplicate or reorder else "receive"
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(
            target=_serve,
            args=(width, height, faults, sides, service_time, capture, cpus, child),
            daemon=True,
            name="spinnactors-board",
        )
        self._process.start()
        child.close()
        if not self._pipe.poll(START_TIMEOUT):
            self._process.kill()
            raise RuntimeError("the board process did not start")
        self.address: Address = self._pipe.recv()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self._pipe.send("stop")
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)
        self._pipe.close()

    def __enter__(self) -> BoardProcess:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
