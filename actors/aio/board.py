"""The asyncio face of a Client or a Machine.

Each call posts its job to the connection actor (or a Machine's worker)
without waiting, with a LoopSink as the outcome sink: the actor side hands
outcomes to the loop in batches with ``call_soon_threadsafe``, where each
settles the future its caller awaits. A cancelled await (a task cancelled,
an ``asyncio.timeout``) gives the job up: the actor ends it (what is not
sent leaves the window's queue, what is on the wire is retired and its
late replies counted), and its outcome, when it comes, is discarded here.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import deque
from collections.abc import AsyncIterator, Callable, Hashable, Sequence
from dataclasses import replace
from typing import Any, Generic, TypeVar

from actors.aio.loop import LoopSink, Opened, off_loop
from actors.board.client import Client
from actors.board.operations import BoardOperations
from actors.connecting import connect
from actors.connection.messages import ConnectionStats
from actors.errors import ShutDown
from actors.placement.machine import Machine
from actors.protocol.jobs import Job, Outcome, OutcomeSink, ReadJob, SCPJob, WriteJob
from messages.errors import InvalidArgumentError
from messages.scp.base import AbstractSCPRequest, AbstractSCPResponse
from messages.scp.layout import parse_reply
from messages.scp.memory import FillRequest
from messages.scp.version import GetVersion, VersionInfo

R = TypeVar("R", bound=AbstractSCPResponse)
#: What a post takes (a Job, or a (board, job) pair), and what a cancel
#: names a job by (its key, or a (board, key) pair).
E = TypeVar("E")
C = TypeVar("C")

Arrived = Callable[[Outcome], None]


class LoopJobs(Generic[E, C]):
    """Jobs posted from one event loop, and what awaits their outcomes.

    ``post(entries, sink)`` and ``cancel(sink, names)`` are a Client's or
    a Machine's. Keys are this object's own, so that they never meet a
    caller's; ``discarded`` counts the outcomes that came for awaits given
    up on.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        post: Callable[[Sequence[E], OutcomeSink], None],
        cancel: Callable[[OutcomeSink, Sequence[C]], None],
    ) -> None:
        self._loop = loop
        self._post = post
        self._cancel = cancel
        self.sink = LoopSink(loop, self._settle)
        self._keys = itertools.count()
        #: Job key -> the future awaiting it, or a stream's taker.
        self._waiting: dict[int, asyncio.Future[Outcome] | Arrived] = {}
        self._emptied: asyncio.Event | None = None
        self.discarded = 0
        self.cancelled = 0
        self._ended: ShutDown | None = None

    @property
    def pending(self) -> int:
        """Jobs posted whose outcomes have not come yet (given up on or not)."""
        return len(self._waiting)

    async def settled(self) -> None:
        """Wait until every job posted has had its outcome here (those given
        up on too): after it, nothing of them is left on the actor side."""
        while self._waiting:
            if self._emptied is None:
                self._emptied = asyncio.Event()
            await self._emptied.wait()

    async def one(self, make: Callable[[int], tuple[E, C]]) -> Any:
        """Run the job ``make(key)`` gives (with the name to cancel it by);
        its value, or raise its error."""
        if self._ended is not None:
            raise self._ended
        key = next(self._keys)
        entry, name = make(key)
        future = self._loop.create_future()
        self._waiting[key] = future
        try:
            self._post([entry], self.sink)
        except BaseException:
            del self._waiting[key]
            raise
        try:
            outcome = await future
        except asyncio.CancelledError:
            if key in self._waiting:
                self._give_up([name])
            else:  # it had ended: its outcome is thrown away
                self.discarded += 1
            raise
        if outcome.error is not None:
            raise outcome.error
        return outcome.value

    async def stream(
        self, items: Sequence[Any], make: Callable[[Any, int], tuple[E, C, Hashable]]
    ) -> AsyncIterator[Outcome]:
        """Post ``make(item, key)`` for each item (entry, cancel name, the
        caller's key); each outcome, with the caller's key, as it comes.
        Leaving early gives up the jobs left."""
        if self._ended is not None:
            raise self._ended
        came: deque[Outcome] = deque()
        wake: list[asyncio.Future[None]] = []
        abandoned = False

        def arrived(outcome: Outcome) -> None:
            if abandoned:
                self.discarded += 1
                return
            came.append(outcome)
            if wake and not wake[0].done():
                wake[0].set_result(None)

        mine: dict[int, tuple[C, Hashable]] = {}
        entries = []
        for item in items:
            key = next(self._keys)
            entry, name, theirs = make(item, key)
            mine[key] = (name, theirs)
            entries.append(entry)
        for key in mine:
            self._waiting[key] = arrived
        try:
            self._post(entries, self.sink)
        except BaseException:
            for key in mine:
                del self._waiting[key]
            raise
        try:
            while mine:
                if not came:
                    wake[:] = [self._loop.create_future()]
                    await wake[0]
                    continue
                outcome = came.popleft()
                _, theirs = mine.pop(outcome.key)  # type: ignore[call-overload]
                yield replace(outcome, key=theirs)
        finally:
            abandoned = True
            self.discarded += len(came)
            if mine:
                self._give_up([name for name, _ in mine.values()])

    def end(self, error: ShutDown) -> None:
        """End every await still pending with ``error`` (closed, or the
        loop ending); later calls raise it."""
        self._ended = error
        waiting, self._waiting = self._waiting, {}
        for key, waiter in waiting.items():
            if isinstance(waiter, asyncio.Future):
                if not waiter.done():
                    waiter.set_exception(error)
            else:
                waiter(Outcome(key, error=error))
        self._wake_settled()

    # -- inside ----------------------------------------------------------------

    def _give_up(self, names: Sequence[C]) -> None:
        self.cancelled += len(names)
        with contextlib.suppress(ShutDown):  # closed: its jobs end anyway
            self._cancel(self.sink, names)

    def _settle(self, batch: list[Outcome]) -> None:
        """Outcomes from the actor side, on the loop's thread."""
        waiting = self._waiting
        for outcome in batch:
            waiter = waiting.pop(outcome.key, None)  # type: ignore[call-overload]
            if waiter is None:
                self.discarded += 1  # (ended here already: closed)
            elif isinstance(waiter, asyncio.Future):
                if waiter.done():
                    self.discarded += 1  # its await was cancelled
                else:
                    waiter.set_result(outcome)
            else:
                waiter(outcome)
        if not waiting:
            self._wake_settled()

    def _wake_settled(self) -> None:
        if self._emptied is not None:
            self._emptied.set()
            self._emptied = None


class AsyncBoard(Opened):
    """One board's operations, awaited: version, read, write, fill, call,
    stream; ``stats()`` as a Client's. Opened by ``actors.aio.connect``
    (which owns and closes its Client), or by ``AsyncMachine.board``."""

    def __init__(
        self,
        board: BoardOperations,
        loop: asyncio.AbstractEventLoop,
        *,
        owns: bool = True,
    ) -> None:
        super().__init__(loop)
        self.board = board
        self._owns = owns
        self._jobs: LoopJobs[Job, Hashable] = LoopJobs(loop, board.post, board.cancel)

    async def version(self, x: int = 0, y: int = 0, p: int = 0) -> VersionInfo:
        """Who runs core (x, y, p): SC&MP or SARK, and its version."""
        info = (await self.call(GetVersion(x, y, p))).version_info
        assert info is not None
        return info

    async def read(
        self, x: int, y: int, address: int, length: int, p: int = 0
    ) -> bytes:
        """``length`` bytes of memory from ``address`` on chip (x, y)."""
        return bytes(await self.read_buffer(x, y, address, length, p))

    async def read_buffer(
        self, x: int, y: int, address: int, length: int, p: int = 0
    ) -> bytearray:
        """As read(), as the bytearray the replies were gathered in."""
        job = ReadJob(0, x, y, p, address, length)  # (checks the arguments)
        value: bytearray = await self._jobs.one(
            lambda key: (replace(job, key=key), key)
        )
        return value

    async def write(
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
        job = WriteJob(0, x, y, p, address, bytes(data))
        await self._jobs.one(lambda key: (replace(job, key=key), key))

    async def fill(self, x: int, y: int, address: int, data: int, size: int) -> None:
        """Fill ``size`` bytes from ``address`` with the 32-bit word ``data``."""
        await self.call(FillRequest(x, y, address, data, size))

    async def call(
        self, request: AbstractSCPRequest[R], timeout: float | None = None
    ) -> R:
        """Send any SCP request; its parsed response, or the error."""
        reply = await self._jobs.one(lambda key: (SCPJob(key, request, timeout), key))
        return parse_reply(request, reply)

    def stream(self, jobs: Sequence[Job]) -> AsyncIterator[Outcome]:
        """Run a batch of jobs together; each outcome as it comes (with the
        job's own key). Breaking out early and closing the iterator
        (``contextlib.aclosing``) gives the rest up."""
        return self._jobs.stream(
            list(jobs), lambda job, key: (replace(job, key=key), key, job.key)
        )

    def stats(self) -> ConnectionStats:
        """The connection's counters (a quick ask of its actor)."""
        stats = self.board.stats()  # type: ignore[attr-defined]
        assert isinstance(stats, ConnectionStats)
        return stats

    @property
    def pending(self) -> int:
        """Awaits posted whose outcomes have not come back yet."""
        return self._jobs.pending

    @property
    def discarded(self) -> int:
        """Outcomes that came for awaits given up on (and were dropped)."""
        return self._jobs.discarded

    async def settled(self) -> None:
        """Wait until every job posted from here has had its outcome, the
        given-up ones too."""
        await self._jobs.settled()

    def _close_blocking(self) -> None:
        if self._owns:
            close = getattr(self.board, "close", None)
            if close is not None:
                close()

    def _closed(self, error: ShutDown) -> None:
        self._jobs.end(error)

    def __repr__(self) -> str:
        return f"AsyncBoard({self.board!r})"


class AsyncMachine(Opened):
    """A Machine's operations, awaited: each takes the board's name first,
    as a Machine's do; ``board(name)`` is one board's AsyncBoard."""

    def __init__(self, machine: Machine, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.machine = machine
        self._boards: dict[Hashable, AsyncBoard] = {}
        self._jobs: LoopJobs[tuple[Hashable, Job], tuple[Hashable, Hashable]] = (
            LoopJobs(loop, machine.post, machine.cancel)
        )

    @property
    def boards(self) -> list[Hashable]:
        return self.machine.boards

    def board(self, name: Hashable) -> AsyncBoard:
        board = self._boards.get(name)
        if board is None:
            if self.closed:
                raise ShutDown(f"{self!r} is closed")
            board = AsyncBoard(self.machine.board(name), self.loop, owns=False)
            self._boards[name] = board
        return board

    async def version(
        self, board: Hashable, x: int = 0, y: int = 0, p: int = 0
    ) -> VersionInfo:
        return await self.board(board).version(x, y, p)

    async def read(
        self, board: Hashable, x: int, y: int, address: int, length: int, p: int = 0
    ) -> bytes:
        return await self.board(board).read(x, y, address, length, p)

    async def write(
        self,
        board: Hashable,
        x: int,
        y: int,
        address: int,
        data: bytes | bytearray | memoryview,
        p: int = 0,
    ) -> None:
        await self.board(board).write(x, y, address, data, p)

    async def fill(
        self, board: Hashable, x: int, y: int, address: int, data: int, size: int
    ) -> None:
        await self.board(board).fill(x, y, address, data, size)

    def stream(self, entries: Sequence[tuple[Hashable, Job]]) -> AsyncIterator[Outcome]:
        """Run (board, job) pairs together; each outcome as it comes."""
        return self._jobs.stream(
            list(entries),
            lambda entry, key: (
                (entry[0], replace(entry[1], key=key)),
                (entry[0], key),
                entry[1].key,
            ),
        )

    def stats(self) -> dict[Hashable, ConnectionStats | str]:
        return self.machine.stats()

    async def settled(self) -> None:
        await self._jobs.settled()
        for board in list(self._boards.values()):
            await board.settled()

    def _close_blocking(self) -> None:
        self.machine.close()

    def _closed(self, error: ShutDown) -> None:
        self._jobs.end(error)
        for board in self._boards.values():
            board.closed_with(error)

    def __repr__(self) -> str:
        return f"AsyncMachine({self.machine!r})"


async def open_board(host: Any, port: int, options: dict[str, Any]) -> Any:
    """A Client or Machine made on a thread of its own (starting actors,
    or worker processes, blocks), then its asyncio face."""
    loop = asyncio.get_running_loop()
    opened: Client | Machine = await off_loop(
        lambda: connect(host, port, **options),
        "spinnactors-aio-open",
        abandoned=lambda handle: handle.close(),
    )
    if isinstance(opened, Machine):
        return AsyncMachine(opened, loop)
    return AsyncBoard(opened, loop)
