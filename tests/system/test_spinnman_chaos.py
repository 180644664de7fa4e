"""SpiNNMan's Transceiver on spinnactors loses nothing to a lossy board
and a connection actor killed every few seconds.

The board (UDP on 127.0.0.1) drops, duplicates and reorders 2% of the
datagrams each way; a killer crashes the connection actor that SpiNNMan's
pipelines and install()'s memory processes use at seeded random moments
1-3 s apart, mid-transfer. The workload is SpiNNMan's own write_memory and
read_memory, unchanged (each transfer one job on that actor); every byte
read back is compared with what was written. (bench/spinnman_install.py
--chaos runs the same workload on plain SpiNNMan, for comparison.)
"""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import pykka
import pytest
from spinnman.transceiver import Transceiver

from actors.compat import installed, transfers
from actors.compat.shared import SHARED
from actors.supervision.child import Crash
from tests.system.spinnman_kit import transceiver
from transport import FaultPlan, VirtualBoard

BASE = 0x6000_0000
KIB = 1024
CHUNK = 128 * KIB

pytestmark = pytest.mark.usefixtures("spinnman_setup")


@dataclass
class Outcome:
    """What a workload saw: rounds done, wrong bytes, exceptions raised."""

    rounds: int = 0
    wrong: int = 0
    errors: list[BaseException] = field(default_factory=list)


def workload(
    txrx: Transceiver,
    rounds: int,
    seed: int,
    more: Callable[[], bool] = lambda: False,
) -> Outcome:
    """Write CHUNK random bytes to a fresh place, read them back through
    SpiNNMan's Transceiver, count the bytes that differ; an exception is
    counted and the next round goes on. After ``rounds``, carry on while
    ``more()`` says so (up to 50 times as many)."""
    rng = random.Random(seed)
    outcome = Outcome()
    round_ = 0
    while round_ < rounds or (more() and round_ < 50 * rounds):
        round_ += 1
        data = rng.randbytes(CHUNK)
        address = BASE + (round_ % 64) * CHUNK
        try:
            txrx.write_memory(1, 1, address, data)
            back = txrx.read_memory(1, 1, address, CHUNK)
        except Exception as error:  # noqa: BLE001 - counted, reported
            outcome.errors.append(error)
            continue
        outcome.rounds += 1
        outcome.wrong += sum(a != b for a, b in zip(back, data, strict=True)) + abs(
            len(back) - len(data)
        )
    return outcome


def lossy_board(seed: int) -> VirtualBoard:
    return VirtualBoard(
        2, 2, faults=FaultPlan(drop=0.02, duplicate=0.02, reorder=0.02, seed=seed)
    )


class Killer:
    """Crashes the connection actor SpiNNMan's pipelines use, every 1-3 s
    (seeded), on a thread of its own, until stopped."""

    def __init__(self, seed: int) -> None:
        self.kills = 0
        self._rng = random.Random(seed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="killer", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._rng.uniform(1.0, 3.0)):
            for actor in SHARED.running():
                try:
                    actor.tell(Crash("killed by the chaos test"))
                except pykka.ActorDeadError:
                    continue
                self.kills += 1

    def __enter__(self) -> Killer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


@pytest.mark.timeout(240)
def test_spinnman_on_spinnactors_loses_nothing_to_faults_and_kills() -> None:
    rounds = int(os.environ.get("SPINNMAN_CHAOS_ROUNDS", "40"))
    with lossy_board(seed=77) as board, installed():
        with transceiver(board.address) as txrx:
            before = transfers()
            with Killer(seed=9) as killer:
                outcome = workload(txrx, rounds, 5, lambda: killer.kills < 4)
        after = transfers()
        counts = board.faults.counts
    assert outcome.errors == []
    assert outcome.rounds >= rounds
    assert outcome.wrong == 0
    # Each write and read ran whole, as one job, through the kills.
    assert after.reads - before.reads == outcome.rounds
    assert after.writes - before.writes == outcome.rounds
    assert (after.failed, after.handed_back) == (before.failed, before.handed_back)
    assert killer.kills >= 4, "the actor was killed mid-transfer"
    assert counts.dropped and counts.duplicated and counts.reordered
