"""The restart machinery of a Client's connection: what its supervisor
calls to start the connection actor and when it stops restarting it.

Kept apart from the Client (actors/board/client.py) because it is what a
supervisor sees of a client, not what a caller does with one.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import pykka

from actors.connection.actor import ConnectionActor
from actors.connection.book import JobBook
from actors.errors import ShutDown
from actors.protocol.settings import WindowSettings
from actors.ratelimit.limiter import Limiter
from actors.supervision.child import Watch
from actors.supervision.spec import ChildSpec
from transport.capture.writer import PacketCapture
from transport.connections.scamp import SCAMPConnection
from transport.links.endpoint import DatagramEndpoint


class Incarnations:
    """The restart machinery of a Client's connection: what its supervisor
    calls to start the connection actor (``start``) and when it stops
    restarting it (``give_up``), as one ChildSpec (``spec``).

    A given endpoint serves the first incarnation; each restart opens a
    fresh UDP socket and is timed, for health(). Every incarnation shares
    the client's settings and JobBook, so it carries on with the jobs the
    last one left open.
    """

    def __init__(
        self,
        settings: WindowSettings,
        book: JobBook,
        address: tuple[str, int],
        *,
        local_host: str | None,
        endpoint: DatagramEndpoint | None,
        connected: bool,
        capture: PacketCapture | None,
        limiter: Limiter | None,
        fail_refused: bool,
    ) -> None:
        self._settings, self._book, self._address = settings, book, address
        self._local_host, self._endpoint = local_host, endpoint
        self._connected, self._capture = connected, capture
        self._limiter, self._fail_refused = limiter, fail_refused
        self._started = False
        #: When the connection actor was restarted (the last few).
        self.restarts: deque[float] = deque(maxlen=64)
        #: Set when the connection's supervisor gives up on it.
        self.gave_up = threading.Event()
        #: Set once the connection is gone for good (closed, or given up on
        #: by a shared supervisor, which itself carries on).
        self.gone = False
        #: With recovery: told instead when the supervisor gives up; and
        #: True while a recovery has stopped the connection on purpose.
        self.on_lost: Callable[[str], bool] | None = None
        self.recovering = False

    def spec(self, child: str) -> ChildSpec:
        return ChildSpec(child, self.start, cleanup=self.give_up)

    def start(self, watch: Watch) -> pykka.ActorRef[Any]:
        if self._started:
            self.restarts.append(time.monotonic())
        self._started = True
        return ConnectionActor.start(
            self._open,
            self._settings,
            limiter=self._limiter,
            book=self._book,
            fail_refused=self._fail_refused,
            watch=watch,
        )

    def _open(self) -> SCAMPConnection:
        given, self._endpoint = self._endpoint, None
        host, port = self._address
        return SCAMPConnection(
            local_host=self._local_host,
            remote_host=host,
            remote_port=port,
            endpoint=given,
            connected=self._connected,
            capture=self._capture,
        )

    def give_up(self) -> None:
        if self.recovering:  # stopped by a recovery: its jobs wait for it
            return
        if self.on_lost is not None and not self.gone:
            self.recovering = True  # (callers wait from now on)
            if self.on_lost("its supervisor gave up"):
                return
            self.recovering = False
        if not self.gone:  # (a close runs this too, as it forgets us)
            self.gave_up.set()
        self.gone = True
        self._book.fail_all(
            ShutDown("the connection kept failing; its supervisor gave up")
        )
