"""A listener's messages as an async iterator.

A ListenerActor reads the connection, as under a ConnectionListener, and
tells its batches to an outlet that hands them to the event loop with
``call_soon_threadsafe``. The backlog is the same bounded Backlog: a
message holds its place until the ``async for`` takes it, and what does
not fit is dropped and counted by the listener (``stats().dropped``).
When the connection closes under it, or the listener keeps failing, the
iterator raises why instead of waiting forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from typing import Any, Generic, TypeVar, cast

import pykka

from actors.aio.loop import Opened
from actors.errors import ShutDown
from actors.listening.callbacks import DEFAULT_BACKLOG, Backlog, Deliver
from actors.listening.listener import (
    GetListenerStats,
    Listenable,
    ListenerActor,
    ListenerStats,
)
from actors.placement.wire import LISTEN_KINDS
from actors.supervision.child import Watch, stop_and_join
from actors.supervision.messages import WhereIs
from actors.supervision.spec import ChildSpec
from actors.supervision.supervisor import Supervisor
from messages.errors import InvalidArgumentError

T = TypeVar("T")

_LISTENER = "listener"
#: The end of a clean close: the iterator stops.
_CLOSED = object()


class _LoopOutlet:
    """Where the ListenerActor tells its batches: onto the loop."""

    def __init__(self, listener: AsyncListener[Any]) -> None:
        self._call = listener.loop.call_soon_threadsafe
        self._arrive = listener._arrive

    def tell(self, message: Any) -> None:
        assert isinstance(message, Deliver)
        try:
            self._call(self._arrive, message.messages)
        except RuntimeError:  # the loop is closed: counted as dropped
            raise pykka.ActorDeadError("the event loop is closed") from None


class AsyncListener(Opened, Generic[T]):
    """``async for message in listener``: each message of ``connection``
    in arrival order; ``backlog`` bound what may wait untaken."""

    def __init__(
        self,
        connection: Listenable[T],
        loop: asyncio.AbstractEventLoop,
        *,
        backlog: int = DEFAULT_BACKLOG,
        timeout: float = 1.0,
        owns_connection: bool = False,
    ) -> None:
        super().__init__(loop)
        self.connection = connection
        self._owns = owns_connection
        self._backlog = Backlog(backlog)
        self._came: deque[T] = deque()
        self._wake: asyncio.Future[None] | None = None
        self._end: Any = None
        self._stopping = threading.Event()
        self._final: ListenerStats | None = None
        outlet = _LoopOutlet(self)

        def start(watch: Watch) -> pykka.ActorRef[Any]:
            return ListenerActor.start(
                connection,
                lambda slot: outlet,
                [self._backlog],
                [[]],
                timeout=timeout,
                closing=self._stopping,
                report=self._keep,
                ended=self._ended_there,
                watch=watch,
            )

        try:
            self._supervisor = self._start_supervisor(start)
        except BaseException:
            self._released.set()  # nothing to guard
            raise

    def _start_supervisor(self, start: Any) -> pykka.ActorRef[Any]:
        return Supervisor.start(
            [
                ChildSpec(
                    _LISTENER,
                    start,
                    restart="transient",
                    cleanup=lambda: self._ended_there(
                        ShutDown("the listener kept failing; its supervisor gave up")
                    ),
                )
            ],
            max_restarts=10,
            period=1.0,
            name="aio-listener",
        )

    def __aiter__(self) -> AsyncListener[T]:
        return self

    async def __anext__(self) -> T:
        came = self._came
        while True:
            if came:
                self._backlog.release(1)
                return came.popleft()
            end = self._end
            if end is not None:
                if end is _CLOSED:
                    raise StopAsyncIteration
                raise end
            self._wake = self.loop.create_future()
            try:
                await self._wake
            finally:
                self._wake = None

    def stats(self) -> ListenerStats | None:
        """The listener's counters (received, delivered, dropped, ...); the
        last ones once it has stopped."""
        if self._final is not None:
            return self._final
        try:
            listener = cast(
                "pykka.ActorRef[Any] | None",
                self._supervisor.ask(WhereIs(_LISTENER), timeout=5),
            )
            if listener is None:
                return self._final
            return cast(ListenerStats, listener.ask(GetListenerStats(), timeout=5))
        except (pykka.ActorDeadError, pykka.Timeout):
            return self._final

    @property
    def waiting(self) -> int:
        """Messages received and not yet taken by the ``async for``."""
        return len(self._came)

    # -- inside ----------------------------------------------------------------

    def _arrive(self, messages: list[T]) -> None:
        """A batch from the listener, on the loop's thread."""
        if self._end is not None:  # closed: let their places go
            self._backlog.release(len(messages), dropped_on_close=len(messages))
            return
        self._came.extend(messages)
        self._wake_taker()

    def _ended_there(self, error: BaseException | None) -> None:
        """The listener has stopped (on its thread): ``error`` is why, or
        None if it was told to."""
        end = _CLOSED if error is None or self._stopping.is_set() else error
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody to tell
            self.loop.call_soon_threadsafe(self._finish, end)

    def _finish(self, end: Any) -> None:
        if self._end is None:
            self._end = end
        self._wake_taker()

    def _wake_taker(self) -> None:
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    def _keep(self, stats: ListenerStats) -> None:
        self._final = stats

    def _close_blocking(self) -> None:
        self._stopping.set()
        try:
            stop_and_join(self._supervisor, 30)
        finally:
            if self._owns:
                close = getattr(self.connection, "close", None)
                if close is not None:
                    close()

    def _closed(self, error: ShutDown) -> None:
        self._finish(_CLOSED)
        left = len(self._came)
        self._came.clear()
        if left:
            self._backlog.release(left, dropped_on_close=left)

    @property
    def dropped_on_close(self) -> int:
        """Messages received but never taken because the listener closed."""
        return self._backlog.dropped_on_close

    def __repr__(self) -> str:
        return f"AsyncListener({self.connection!r})"


async def open_listener(
    connection_or_port: Any,
    *,
    kind: str = "sdp",
    local_host: str | None = None,
    backlog: int = DEFAULT_BACKLOG,
    timeout: float = 1.0,
) -> AsyncListener[Any]:
    """The AsyncListener of a connection, or of a new one (``kind`` "sdp"
    or "eieio") on local port ``connection_or_port``, closed with it."""
    if kind not in LISTEN_KINDS:
        raise InvalidArgumentError(
            "kind", kind, f"must be one of {sorted(LISTEN_KINDS)}"
        )
    if isinstance(backlog, bool) or not isinstance(backlog, int) or backlog < 1:
        raise InvalidArgumentError("backlog", backlog, "must be a positive integer")
    loop = asyncio.get_running_loop()
    owns = isinstance(connection_or_port, int) and not isinstance(
        connection_or_port, bool
    )
    if owns:
        connection = LISTEN_KINDS[kind](
            local_host=local_host, local_port=connection_or_port
        )
    elif hasattr(connection_or_port, "get_receive_method"):
        connection = connection_or_port
    else:
        raise InvalidArgumentError(
            "connection_or_port",
            connection_or_port,
            "must be a port number or a Listenable connection",
        )

    def start() -> AsyncListener[Any]:
        return AsyncListener(
            connection, loop, backlog=backlog, timeout=timeout, owns_connection=owns
        )

    try:
        # (AsyncListener makes its guard task on the loop: start it here;
        # starting the actors takes a few milliseconds.)
        return start()
    except BaseException:
        if owns:
            connection.close()
        raise
