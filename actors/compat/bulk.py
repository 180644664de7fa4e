"""Whole reads and writes on a connection's shared actor, for SpiNNMan's
memory processes.

install() puts memory processes of its own in place of SpiNNMan's
(actors/compat/processes.py): a Transceiver.read_memory or write_memory
of more than one 256-byte piece becomes one ReadJob or WriteJob (a write
read from a file, one per MiB), handed to the same supervised
ConnectionActor that SpiNNMan's pipelines on that connection use
(actors/compat/shared.py), so the window, its fences, metrics, capture
and supervision are the same. A BulkTransfer is that hand-over, for one
operation, on the caller's thread; transfers() counts what went which
way, so that one can see it is in use.

Nothing here imports SpiNNMan: it is an optional dependency.
"""

from __future__ import annotations

import itertools
import queue
import threading
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any

from actors.compat.shared import SHARED, ConnectionGroup
from actors.connection.book import next_outcomes
from actors.errors import ShutDown
from actors.protocol.jobs import Outcome, ReadJob, WriteJob
from actors.protocol.settings import WindowSettings


@dataclass(frozen=True)
class Transfers:
    """What install()'s memory processes have done in this process:
    ``reads`` and ``writes`` run whole on spinnactors, the bytes those
    moved, how many of them ``failed``, and operations ``handed_back`` to
    SpiNNMan's own per-piece code (one piece or less, a connection that
    must be driven through its methods, a selector that may spread the
    pieces, a read that failed otherwise than unanswered, read again)."""

    reads: int = 0
    read_bytes: int = 0
    writes: int = 0
    written_bytes: int = 0
    failed: int = 0
    handed_back: int = 0


_counts_lock = threading.Lock()
_counts = Transfers()


def transfers() -> Transfers:
    """The counts so far (they only grow)."""
    return _counts


def count(**more: int) -> None:
    """Add ``more`` (Transfers' fields by name) to the counts."""
    global _counts
    with _counts_lock:
        now = _counts
        _counts = replace(
            now, **{name: getattr(now, name) + value for name, value in more.items()}
        )


class BulkTransfer:
    """Jobs of one operation on ``connection``'s shared actor (started,
    or a lingering one reused, with ``settings``), their outcomes waited
    for on the caller's thread. A context manager: leaving it lets go of
    the connection, as a pipeline's finish() does."""

    def __init__(self, connection: Any, settings: WindowSettings) -> None:
        self._connection = connection
        self._settings = settings
        self._group: ConnectionGroup | None = None
        self._sink: queue.SimpleQueue[list[Outcome]] = queue.SimpleQueue()
        self._keys = itertools.count()
        #: Jobs handed over and not yet ended, by key.
        self.open: dict[int, ReadJob | WriteJob] = {}

    def __enter__(self) -> BulkTransfer:
        self._group = SHARED.acquire(self._connection, self._settings)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._group is not None:
            self._group = None
            SHARED.release(self._connection)

    def read(self, x: int, y: int, p: int, address: int, length: int) -> int:
        """Hand over a read; its key."""
        key = next(self._keys)
        self._post(ReadJob(key, x, y, p, address, length))
        return key

    def write(self, x: int, y: int, p: int, address: int, data: bytes) -> int:
        """Hand over a write; its key."""
        key = next(self._keys)
        self._post(WriteJob(key, x, y, p, address, data))
        return key

    def take(self) -> list[Outcome]:
        """The outcomes that have come, waiting for at least one (every
        open job ends with ShutDown if the connection's supervisor stops
        without answering)."""
        group = self._group
        assert group is not None
        assert self.open
        batch = next_outcomes(self._sink, lambda: group.alive)
        if batch is None:
            error = ShutDown("the connection actor stopped without answering")
            batch = [Outcome(key, error=error) for key in self.open]
        for outcome in batch:
            self.open.pop(outcome.key, None)  # type: ignore[call-overload]
        return batch

    def _post(self, job: ReadJob | WriteJob) -> None:
        group = self._group
        assert group is not None, "use a BulkTransfer in a with block"
        self.open[job.key] = job  # type: ignore[index]
        if not group.alive:
            error = ShutDown("the connection's supervisor has stopped")
            self._sink.put([Outcome(job.key, error=error)])
            return
        group.post([job], self._sink)
