"""The operations every board handle offers, over one way to post jobs.

A Client (one board, in this process) and a board of a Machine (which
may run in a worker process) both turn calls into jobs and wait for their
outcomes; only how the jobs reach a connection actor differs: ``post``.
"""

from __future__ import annotations

import itertools
import queue
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from actors.boot.driver import BootReport, boot_board
from actors.boot.options import BootOptions
from actors.connection.book import next_outcomes
from actors.errors import ShutDown, board_label
from actors.protocol.jobs import Job, Outcome, OutcomeSink, ReadJob, SCPJob, WriteJob
from messages.errors import InvalidArgumentError
from messages.scp.base import AbstractSCPRequest, AbstractSCPResponse
from messages.scp.layout import parse_reply
from messages.scp.memory import FillRequest
from messages.scp.version import GetVersion, VersionInfo
from transport.capture.writer import PacketCapture

R = TypeVar("R", bound=AbstractSCPResponse)
#: What a post takes: jobs, or (board, job) pairs for a Machine.
J = TypeVar("J")


class BoardOperations:
    """version, read, write, fill, call, submit and stream, for one board.

    Subclasses say how jobs are handed over (``post``) and whether whoever
    owes the outcomes still runs (``_serving``).
    """

    def __init__(self) -> None:
        self._keys = itertools.count()

    def post(self, jobs: Sequence[Job], sink: OutcomeSink) -> None:
        """Hand ``jobs`` over without waiting: each one's Outcome goes to
        ``sink`` in batches as they end."""
        raise NotImplementedError

    def cancel(self, sink: OutcomeSink, keys: Sequence[Hashable]) -> None:
        """Give up on jobs posted with ``sink`` under ``keys``: each not
        ended yet ends with Cancelled, without waiting."""
        raise NotImplementedError

    def _serving(self) -> bool:
        raise NotImplementedError

    @property
    def address(self) -> tuple[str, int]:
        """The board's (host, port)."""
        raise NotImplementedError

    @property
    def name(self) -> Hashable | None:
        """A Machine's name for the board (None for a lone client)."""
        return None

    @property
    def boot_capture(self) -> PacketCapture | None:
        """Where a boot records its boot frames and BMP exchanges (a
        Client's capture; None: not recorded)."""
        return None

    def boot(
        self, options: BootOptions | bool | Mapping[str, Any] = True
    ) -> BootReport:
        """Bring the board up, as SpiNNMan's ``ensure_board_is_ready`` does,
        within ``options.deadline``: ask ``version`` once; if it is silent,
        boot it (``options.image``, SpiNNMan's unless given) and wait for
        SC&MP at its position, and if it stays silent and its BMP is known
        (``options.bmp``), power it on and boot it again. A board that
        answers is never booted again. BootError, naming the board and the
        stage, if it cannot be brought up (see actors/boot/stages.py)."""
        given = BootOptions.of(options)
        name = self.name
        label = f"board {self.address[0]}:{self.address[1]}"
        if name is not None:
            label = board_label(name, self.address)
        return boot_board(
            self,
            self.address,
            label,
            given,
            bmp=given.bmp_of(name),
            capture=self.boot_capture,
        )

    def version(self, x: int = 0, y: int = 0, p: int = 0) -> VersionInfo:
        """Who runs core (x, y, p): SC&MP or SARK, and its version."""
        info = self.call(GetVersion(x, y, p)).version_info
        assert info is not None
        return info

    def read(self, x: int, y: int, address: int, length: int, p: int = 0) -> bytes:
        """``length`` bytes of memory from ``address`` on chip (x, y)."""
        return bytes(self.read_buffer(x, y, address, length, p))

    def read_buffer(
        self, x: int, y: int, address: int, length: int, p: int = 0
    ) -> bytearray:
        """As read(), as the bytearray the replies were gathered in (what
        SpiNNMan's read_memory returns): no final copy, so half the peak
        memory of read() for a large read."""
        value: bytearray = self._one(
            ReadJob(next(self._keys), x, y, p, address, length)
        )
        return value

    def write(
        self,
        x: int,
        y: int,
        address: int,
        data: bytes | bytearray | memoryview,
        p: int = 0,
    ) -> None:
        """Write ``data`` to memory from ``address`` on chip (x, y)."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InvalidArgumentError(
                "data", type(data).__name__, "must be bytes-like"
            )
        self._one(WriteJob(next(self._keys), x, y, p, address, bytes(data)))

    def fill(self, x: int, y: int, address: int, data: int, size: int) -> None:
        """Fill ``size`` bytes from ``address`` with the 32-bit word
        ``data`` (both word aligned), on the board in one request."""
        self.call(FillRequest(x, y, address, data, size))

    def call(self, request: AbstractSCPRequest[R], timeout: float | None = None) -> R:
        """Send any SCP request; its parsed response, or the error.

        ``timeout`` is a deadline for this request over all its tries.
        """
        reply = self._one(SCPJob(next(self._keys), request, timeout))
        return parse_reply(request, reply)

    def submit(self, jobs: Sequence[Job]) -> list[Outcome]:
        """Run a batch of jobs together; their outcomes in the same order.

        Errors are not raised: each outcome says how its job ended.
        """
        by_key = {outcome.key: outcome for outcome in self.stream(jobs)}
        return [by_key[job.key] for job in jobs]

    def stream(self, jobs: Sequence[Job]) -> Iterator[Outcome]:
        """Run a batch of jobs together; each outcome as soon as it comes
        (in the order they end), for progress as a long transfer goes."""
        return run_jobs(self.post, list(jobs), self._serving)

    # -- inside --------------------------------------------------------------------

    def _one(self, job: Job) -> Any:
        """Run one job; its value, or raise its error."""
        outcome = next(run_jobs(self.post, [job], self._serving))
        if outcome.error is not None:
            raise outcome.error
        return outcome.value


def run_jobs(
    post: Callable[[Sequence[J], OutcomeSink], None],
    jobs: Sequence[J],
    serving: Callable[[], bool],
) -> Iterator[Outcome]:
    """``post(jobs, sink)``, then each outcome as it comes; ShutDown if
    whoever owes them stops (``serving()`` False) without answering (a
    connection actor answers every job it has, even when stopping)."""
    sink: queue.SimpleQueue[list[Outcome]] = queue.SimpleQueue()
    post(jobs, sink)
    left = len(jobs)
    while left:
        batch = next_outcomes(sink, serving)
        if batch is None:
            raise ShutDown("the connection stopped without answering")
        left -= len(batch)
        yield from batch
