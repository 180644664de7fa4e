"""asyncio faces: boards and listeners awaited on an event loop.

``async with actors.aio.connect(host, port, **options) as board`` gives a
board whose operations are awaited (``await board.read(...)``); given a
list or dict of boards, a Machine's (same placement options as
``actors.connect``). ``async with actors.aio.listen(connection_or_port)
as messages: async for message in messages`` iterates a listener's
messages. Outcomes and messages come to the loop through
``call_soon_threadsafe`` from the actor side: no thread of the caller's
blocks, and no executor thread runs per call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from actors.aio.board import AsyncBoard, AsyncMachine, LoopJobs, open_board
from actors.aio.listen import AsyncListener, open_listener
from actors.aio.loop import LoopSink, Opening, off_loop
from transport.connections.scamp import SCP_SCAMP_PORT


def connect(
    host: str | Sequence[Any] | Mapping[Any, Any],
    port: int = SCP_SCAMP_PORT,
    **options: Any,
) -> Opening[Any]:
    """The asyncio face of ``actors.connect(host, port, **options)``: an
    AsyncBoard for one board, an AsyncMachine for many. ``async with`` it
    (closed on the way out), or ``await`` it and ``aclose()`` it yourself;
    an open board is also closed when its event loop ends."""
    return Opening(lambda: open_board(host, port, options))


def listen(connection_or_port: Any, **options: Any) -> Opening[AsyncListener[Any]]:
    """An AsyncListener of ``connection_or_port`` (a Listenable connection,
    or a local UDP port to open, ``kind`` "sdp" or "eieio", on
    ``local_host``); ``backlog`` bounds the messages waiting untaken
    (beyond it they are dropped and counted, as by a ConnectionListener)."""
    return Opening(lambda: open_listener(connection_or_port, **options))


__all__ = [
    "AsyncBoard",
    "AsyncListener",
    "AsyncMachine",
    "LoopJobs",
    "LoopSink",
    "connect",
    "listen",
    "off_loop",
]
