"""A connection's jobs as the threads around it see them.

Callers on any thread put jobs into a JobBook and wait for their outcomes;
the one live ConnectionActor takes them out and runs them.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Hashable, Iterable, Sequence

from actors.protocol.fences import Hold
from actors.protocol.jobs import Job, Outcome, OutcomeSink, deliver, with_errors
from actors.protocol.runs import JobRun

#: How often whoever waits for outcomes checks that their giver still lives.
OUTCOME_WAIT_CHECK = 0.5


def next_outcomes(
    sink: queue.SimpleQueue[list[Outcome]], alive: Callable[[], bool]
) -> list[Outcome] | None:
    """The next batch of outcomes from ``sink``; None if whoever owes them
    (``alive()`` says whether it still runs) stopped without sending any."""
    while True:
        try:
            return sink.get(timeout=OUTCOME_WAIT_CHECK)
        except queue.Empty:
            if not alive():
                try:
                    return sink.get_nowait()
                except queue.Empty:
                    return None


class JobBook:
    """The jobs of one connection that have no outcome yet.

    It outlives the connection actor: a supervisor gives the same book to
    each incarnation, so the jobs a crashed actor had open are picked up by
    its successor (which asks again only for the pieces not done). Jobs may
    be put in from any thread; runs are touched only by the one live actor.
    """

    def __init__(
        self,
        next_sequence: int = 0,
        name_error: Callable[[BaseException], BaseException] | None = None,
    ) -> None:
        self._lock = threading.Lock()
        #: Remakes each error before it goes out (a Machine's board names
        #: itself in it); None leaves errors as they are.
        self.name_error = name_error
        self._incoming: list[tuple[Sequence[Job], OutcomeSink]] = []
        #: Where the next incarnation's sequence numbers start.
        self.next_sequence = next_sequence
        #: Runs started and not ended, in the order they came (a dict for
        #: quick removal).
        self.open: dict[JobRun, None] = {}
        #: Write ranges that copies sent by an earlier incarnation (or an
        #: earlier worker) may still land in, until when (time.monotonic).
        self._holds: list[Hold] = []
        #: Jobs their callers gave up on: (id of the sink, key) pairs.
        self._cancels: set[tuple[int, Hashable]] = set()
        #: True while a recovery (actors/boot/recovery.py) stops the actor:
        #: its jobs stay here for the recovery to end, not ShutDown.
        self.parked = False

    def hold(self, holds: Iterable[Hold]) -> None:
        """Fence these ranges for whichever incarnation runs next."""
        with self._lock:
            self._holds.extend(holds)

    def take_holds(self) -> list[Hold]:
        with self._lock:
            holds, self._holds = self._holds, []
        return holds

    def put(self, jobs: Sequence[Job], sink: OutcomeSink) -> None:
        with self._lock:
            self._incoming.append((jobs, sink))

    def take_incoming(self) -> list[tuple[Sequence[Job], OutcomeSink]]:
        with self._lock:
            incoming, self._incoming = self._incoming, []
        return incoming

    @property
    def has_incoming(self) -> bool:
        return bool(self._incoming)

    def cancel(self, sink: OutcomeSink, keys: Iterable[Hashable]) -> None:
        """Mark the jobs put with ``sink`` under ``keys`` as given up on:
        the live actor ends each (if it has not ended yet) with Cancelled."""
        with self._lock:
            self._cancels.update((id(sink), key) for key in keys)

    def take_cancels(self) -> set[tuple[int, Hashable]]:
        with self._lock:
            cancels, self._cancels = self._cancels, set()
        return cancels

    @property
    def has_cancels(self) -> bool:
        return bool(self._cancels)

    def fail_all(self, error: BaseException) -> None:
        """End every job left here with ``error``: for when no actor will
        come to run them (call only when none is running)."""
        ended = [
            (sink, Outcome(job.key, error=error))
            for jobs, sink in self.take_incoming()
            for job in jobs
        ]
        ended += [(run.sink, run.fail(error)) for run in list(self.open)]
        self.open.clear()
        self.deliver(ended)

    def deliver(self, outcomes: list[tuple[OutcomeSink, Outcome]]) -> None:
        """Hand each sink its outcomes, in one batch, errors named."""
        if self.name_error is not None:
            outcomes = with_errors(outcomes, self.name_error)
        deliver(outcomes)
