"""What crosses between the actors' threads and one asyncio event loop.

Outcomes and messages are handed to the loop with ``call_soon_threadsafe``
from the actor side, a batch at a time; the loop's thread never blocks on
an actor. The little that must block (starting and closing a client's
actors) runs on a short-lived thread of its own, not in an executor.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, Generic, TypeVar

from actors.errors import ShutDown
from actors.protocol.jobs import Outcome

T = TypeVar("T")


class LoopSink:
    """An OutcomeSink whose batches are settled on ``loop``'s thread.

    A batch that comes once the loop has closed has nobody to go to: it
    is counted in ``lost``.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        settle: Callable[[list[Outcome]], None],
    ) -> None:
        self._call = loop.call_soon_threadsafe
        self._settle = settle
        self.lost = 0

    def put(self, item: list[Outcome], /) -> None:
        try:
            self._call(self._settle, item)
        except RuntimeError:  # the loop is closed
            self.lost += len(item)


async def off_loop(
    function: Callable[[], T],
    name: str,
    abandoned: Callable[[T], None] | None = None,
) -> T:
    """``function()`` on a thread of its own, awaited without blocking
    the loop. If the awaiting task is cancelled first, ``abandoned`` gets
    the result once it comes (to close what was opened for nobody)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    given_up = threading.Event()

    def settle(value: Any, failed: bool) -> None:
        if future.done():
            return
        if failed:
            future.set_exception(value)
        else:
            future.set_result(value)

    def run() -> None:
        try:
            value = function()
        except BaseException as error:  # noqa: BLE001 - handed to the awaiter
            report: tuple[Any, bool] = (error, True)
        else:
            if given_up.is_set() and abandoned is not None:
                abandoned(value)
                return
            report = (value, False)
        try:
            loop.call_soon_threadsafe(settle, *report)
        except RuntimeError:  # the loop closed meanwhile
            if not report[1] and abandoned is not None:
                abandoned(report[0])

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        given_up.set()
        if (
            abandoned is not None
            and future.done()
            and not future.cancelled()
            and future.exception() is None
        ):
            abandoned(future.result())
        raise


class Opened:
    """Something opened on an event loop and closed with it: ``async with``
    closes it, and so does the loop ending (asyncio.run cancels every task
    left, the guard among them), so that no actor or thread outlives the
    loop that used it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._closing: asyncio.Future[None] | None = None
        self._released = asyncio.Event()
        self._guard = loop.create_task(self._guard_loop())

    async def aclose(self) -> None:
        """Close (the blocking part on a thread of its own); every pending
        await ends with ShutDown."""
        if self._closing is None:
            self._closing = self.loop.create_future()
            self._released.set()
            try:
                await off_loop(self._close_blocking, f"spinnactors-aio-close-{self}")
            finally:
                self._closed(ShutDown(f"{self!r} was closed"))
                self._closing.set_result(None)
        else:
            await asyncio.shield(self._closing)

    @property
    def closed(self) -> bool:
        return self._closing is not None

    def closed_with(self, error: ShutDown) -> None:
        """Closed by whatever owns it (a Machine's board, closed with its
        Machine): end what still awaits, and let the guard go."""
        if self._closing is None:
            self._closing = self.loop.create_future()
            self._closing.set_result(None)
            self._released.set()
            self._closed(error)

    async def _guard_loop(self) -> None:
        try:
            await self._released.wait()
        except asyncio.CancelledError:
            # The loop is ending with this still open: close it now, here
            # (nothing is left to run on the loop).
            if self._closing is None:
                self._closing = self.loop.create_future()
                self._closing.set_result(None)
                self._close_blocking()
                self._closed(ShutDown(f"{self!r}: the event loop ended"))
            raise

    def _close_blocking(self) -> None:
        raise NotImplementedError

    def _closed(self, error: ShutDown) -> None:
        """End whatever still awaits (on the loop's thread)."""
        raise NotImplementedError


class Opening(Generic[T]):
    """What connect() and listen() return: ``async with`` it (closed on
    the way out), or ``await`` it (close it yourself with ``aclose()``)."""

    def __init__(self, open_: Callable[[], Any]) -> None:
        self._open = open_
        self._opened: Any = None

    def __await__(self) -> Any:
        return self._open().__await__()

    async def __aenter__(self) -> T:
        self._opened = await self._open()
        return self._opened  # type: ignore[no-any-return]

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._opened is not None:
            await self._opened.aclose()
