"""Client: the plain blocking client of one board that most scripts want.

A Client starts one ConnectionActor for its board and turns each call into
jobs for it: a read or write of any length is one job, which the actor
splits into 256-byte requests and pipelines through its window. Calls may
come from several threads at once; each waits only for its own outcome.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import threading
import time
from collections import deque
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import replace
from types import TracebackType
from typing import Any, TypeVar, cast

import pykka

from actors.answers import ask_now
from actors.board.health import BoardHealth, PendingHealth
from actors.board.incarnations import Incarnations
from actors.board.operations import BoardOperations
from actors.boot.recovery import BoardRecovery, Recovery, check_recovery
from actors.connection.book import JobBook
from actors.connection.messages import ConnectionStats, GetConnectionStats, Wake
from actors.errors import ShutDown, ask, at_board
from actors.lifetime import track
from actors.protocol.fences import Span
from actors.protocol.jobs import Job, OutcomeSink
from actors.protocol.settings import WindowSettings
from actors.ratelimit.limiter import Limiter
from actors.supervision.api import ChildLookup
from actors.supervision.child import stop_and_join
from actors.supervision.errors import ChildNotRunning
from actors.supervision.messages import (
    GetSupervisorStats,
    StartChild,
    StopChild,
    SupervisorStats,
)
from actors.supervision.spec import Backoff
from actors.supervision.supervisor import Supervisor
from messages.errors import InvalidArgumentError
from messages.scp.base import AbstractSCPRequest, AbstractSCPResponse
from messages.validate import caller_names, check_int
from transport.capture.writer import CaptureTarget, PacketCapture, open_capture
from transport.connections.scamp import SCP_SCAMP_PORT
from transport.errors import TransportError
from transport.links.endpoint import DatagramEndpoint, UDPEndpoint

R = TypeVar("R", bound=AbstractSCPResponse)

#: How long a question to the client's own actors may wait.
ASK_TIMEOUT = 10.0
#: Tells apart the children of clients sharing one supervisor.
_SERIALS = itertools.count()


def _window_settings(
    window: int,
    timeout: float,
    retries: int,
    rto_floor: float,
    max_datagram_age: float,
    network_duplicates: bool,
) -> WindowSettings:
    """A Client's parameters as its window's settings, each refused under
    the Client's name for it (window, not size; timeout, not initial_rto)."""
    check_int("retries", retries, 0, 1000)  # (a Client's own ceiling)
    with caller_names(size="window", initial_rto="timeout"):
        return WindowSettings.from_timeout(
            timeout,
            rto_floor=rto_floor,
            size=window,
            retries=retries,
            max_datagram_age=max_datagram_age,
            network_duplicates=bool(network_duplicates),
        )


#: The Client options its window's settings are made from, in order.
_WINDOW_OPTIONS = (
    "window",
    "timeout",
    "retries",
    "rto_floor",
    "max_datagram_age",
    "network_duplicates",
)


def check_client_options(options: Mapping[str, Any]) -> None:
    """Raise what ``Client(host, port, **options)`` raises for a bad window
    option (the same error, in the same order), without starting
    anything: a Machine checks its options with it, wherever its boards
    run, so that a mistake is refused at once instead of every worker
    failing to start (options not given: the defaults)."""
    defaults = inspect.signature(Client).parameters
    _window_settings(
        *(options.get(name, defaults[name].default) for name in _WINDOW_OPTIONS)
    )


def client_options() -> frozenset[str]:
    """The keyword options a Client takes (what a Machine may pass on)."""
    parameters = inspect.signature(Client).parameters.values()
    return frozenset(p.name for p in parameters if p.kind is p.KEYWORD_ONLY)


def check_local_host(local_host: str | None) -> None:
    """A local address this machine cannot bind is the caller's mistake:
    say so now, rather than have every incarnation of the connection fail
    until its supervisor gives up."""
    if local_host is None:
        return
    try:
        UDPEndpoint(local_host, 0).close()
    except TransportError as error:
        raise InvalidArgumentError(
            "local_host", local_host, f"cannot be bound here ({error})"
        ) from None


def _check_host(host: str, endpoint: DatagramEndpoint | None) -> None:
    """A name that does not resolve is the caller's mistake: say so now
    rather than have the actor fail at every restart."""
    if endpoint is not None:
        endpoint.resolve(host)
    else:
        UDPEndpoint.resolve_host(host)


class Client(BoardOperations):
    """A board at ``host:port`` behind one supervised-ready ConnectionActor.

    ``window`` requests are on the wire at once (a board's monitor holds 8);
    ``timeout`` is the longest wait for one reply before resending (the
    actual wait adapts to measured round trips, never below ``rto_floor``);
    ``retries`` is how often one request may be resent; ``limiter`` is a
    RateLimiterActor shared with other clients. ``endpoint`` runs over an
    in-memory or fault-injecting link instead of UDP.

    The UDP socket is ``connected`` to the board (as SpiNNMan's is): the
    kernel drops datagrams from anyone else before they cost anything, and
    they are not counted. ``connected=False`` keeps an unconnected socket
    that sees them, counts them in ``stats().foreign`` and ignores them.
    On a connected socket, a board port that is closed (an ICMP "port
    unreachable") is counted in ``stats().refused`` and tried again as a
    loss (a restarting board comes back); ``fail_refused`` ends the open
    requests at once with PortRefused instead (what a command line wants).

    A write waits until no copy of an earlier overlapping write can still
    land: ``max_datagram_age`` seconds after that write's job ended (see
    actors/protocol/fences.py); ``network_duplicates`` False (a network
    known never to duplicate a datagram) frees a cleanly answered write's
    range at once.

    The connection actor runs under a Supervisor: if it fails (a socket
    error, a bug) it is restarted with a fresh socket and carries on with
    the requests that had no reply, each still answered exactly once. More
    than ``max_restarts`` failures within ``period`` seconds end every open
    request with ShutDown.

    ``supervisor`` (a Supervisor started with ``per_child=True``) runs the
    connection actor as one of its children instead of under a supervisor
    of the client's own: many clients then share one thread for their
    supervision (as a Machine's group does), each child still restarted
    and given up on alone, by that supervisor's intensity and backoff.

    ``board_name`` (a Machine's name for the board) leads every error a
    job ends with: ``board 'a' at host:port: ...``.

    ``recovery`` (a Recovery, opt-in; see actors/boot/recovery.py) power-
    cycles the board through its BMP and boots it again when it is lost
    (its supervisor gave up, or it has been silent ``hung_after``
    seconds): open requests end with PowerCycled, IP tags set through
    this client are set again, and the client serves on.

    ``capture`` records every datagram of the connection, as pcap, to a
    file (a template with {host} and {port}, or a directory, gets one per
    board) or a shared PacketCapture (see transport/capture/writer.py); the client
    closes a file it opened when it closes. Its boots and recoveries are
    recorded there too: the boot frames (UDP 54321) and the BMP's requests
    and replies.
    """

    CHILD = "connection"

    def __init__(
        self,
        host: str,
        port: int = SCP_SCAMP_PORT,
        *,
        window: int = 8,
        timeout: float = 1.0,
        retries: int = 10,
        rto_floor: float = 0.005,
        max_datagram_age: float = 0.1,
        network_duplicates: bool = True,
        limiter: Limiter | None = None,
        local_host: str | None = None,
        endpoint: DatagramEndpoint | None = None,
        connected: bool = True,
        fail_refused: bool = False,
        max_restarts: int = 3,
        period: float = 5.0,
        backoff: Backoff | None = None,
        supervisor: pykka.ActorRef[Any] | None = None,
        board_name: Hashable | None = None,
        capture: CaptureTarget | None = None,
        recovery: Recovery | None = None,
    ) -> None:
        check_int("port", port, 0, 65535)
        check_recovery(recovery, supervisor)
        self._settings = _window_settings(
            window, timeout, retries, rto_floor, max_datagram_age, network_duplicates
        )
        _check_host(host, endpoint)
        if endpoint is None:
            check_local_host(local_host)
        super().__init__()
        self.host, self.port = host, port
        self._board_name = board_name
        #: How far back health() counts restarts.
        self._period = period
        #: Whether close() was called (a client given up on is closed too,
        #: but stays in health checks until its owner closes it).
        self.closed_by_owner = False
        self._book = JobBook(
            name_error=None
            if board_name is None
            else lambda error: at_board(error, board_name, (host, port))
        )
        # Opened once: every incarnation of the connection writes to it.
        self.capture, owns_capture = open_capture(capture, host, port)
        self._own_capture = self.capture if owns_capture else None
        self._incarnations = Incarnations(
            self._settings,
            self._book,
            (host, port),
            local_host=local_host,
            endpoint=endpoint,
            connected=bool(connected),
            capture=self.capture,
            limiter=limiter,
            fail_refused=bool(fail_refused),
        )
        self._policy = (max_restarts, period, backoff)
        try:
            self._start(supervisor, max_restarts, period, backoff)
        except BaseException:
            self._close_capture()
            raise
        self._recovery: BoardRecovery | None = None
        if recovery is not None:
            self._recovery = BoardRecovery(self, recovery)
            self._incarnations.on_lost = self._recovery.lost

    def _start(
        self,
        supervisor: pykka.ActorRef[Any] | None,
        max_restarts: int,
        period: float,
        backoff: Backoff | None,
    ) -> None:
        """Start the connection actor under a supervisor of its own or
        the one given."""
        host, port = self.host, self.port
        if supervisor is None:
            self._own_supervisor(max_restarts, period, backoff)
        else:
            self._child = f"{self.CHILD}-{host}:{port}-{next(_SERIALS)}"
            self._supervisor = supervisor
            self._shared = True
            self._current = ChildLookup(self._supervisor, self._child)
            ask(
                supervisor,
                StartChild(self._incarnations.spec(self._child)),
                timeout=ASK_TIMEOUT,
                what=f"starting {self._child}",
            )
        track(self.close)  # closed at exit if still open
        self._current()

    def _own_supervisor(
        self, max_restarts: int, period: float, backoff: Backoff | None
    ) -> None:
        self._child = self.CHILD
        self._supervisor = Supervisor.start(
            [self._incarnations.spec(self._child)],
            max_restarts=max_restarts,
            period=period,
            backoff=backoff,
            name=f"client-{self.host}:{self.port}",
        )
        self._shared = False
        self._current = ChildLookup(self._supervisor, self._child)

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def name(self) -> Hashable | None:
        return self._board_name

    @property
    def boot_capture(self) -> PacketCapture | None:
        """The client's capture: its boots and recoveries are recorded too."""
        return self.capture

    @property
    def gave_up(self) -> threading.Event:
        """Set when the connection's supervisor gives up on it."""
        return self._incarnations.gave_up

    @property
    def _restarts(self) -> deque[float]:
        return self._incarnations.restarts

    def fence(self, span: Span) -> None:
        """Fence a write range that copies sent elsewhere (a lost worker's
        connection to this board) may still land in: nothing overlapping
        is written here for ``max_datagram_age``."""
        chip, start, end = span
        self._book.hold(
            [(chip, start, end, time.monotonic() + self._settings.max_datagram_age)]
        )

    def stats(self) -> ConnectionStats:
        """Counters and round-trip statistics of the connection (since its
        last restart)."""
        deadline = time.monotonic() + ASK_TIMEOUT
        while True:
            self._supervisor_alive_or_raise()
            try:
                # (woken by the supervisor once a restarting one is back)
                actor = self._current.wait(max(deadline - time.monotonic(), 0.0))
            except ChildNotRunning:
                self._supervisor_alive_or_raise()
                raise ShutDown("the connection did not come back") from None
            try:
                return cast(
                    ConnectionStats,
                    ask(
                        actor,
                        GetConnectionStats(),
                        timeout=max(deadline - time.monotonic(), 0.001),
                        what=f"{self!r} stats",
                    ),
                )
            except ShutDown:
                continue  # it has just stopped: ask its successor

    def health(self, timeout: float = ASK_TIMEOUT) -> BoardHealth:
        """Whether the board is served now, without waiting for a restart:
        its state, the age of its last reply, what is open, and its
        connection's restarts within the last ``period`` seconds;
        "unresponsive" if its connection actor does not answer within
        ``timeout`` seconds (stuck: it stays in a health check, down)."""
        return self.ask_health().result(time.monotonic() + timeout)

    def ask_health(self) -> PendingHealth:
        """health() asked of the connection actor and not waited for: its
        ``result(deadline)``, so that many clients are asked at once and
        a scrape waits for them together, not one after another."""
        now = time.monotonic()
        health = BoardHealth(
            f"{self.host}:{self.port}",
            "restarting",
            open_jobs=len(self._book.open),
            recent_restarts=sum(
                1 for at in list(self._restarts) if now - at <= self._period
            ),
            period=self._period,
            reason="its connection is restarting",
        )
        if self._incarnations.recovering:
            return PendingHealth(
                replace(
                    health,
                    reason="it is being power-cycled and booted through its BMP",
                )
            )
        if self.gave_up.is_set():
            return PendingHealth(
                replace(
                    health,
                    state="given_up",
                    reason="the connection kept failing; its supervisor gave up",
                )
            )
        if self.closed:
            return PendingHealth(
                replace(health, state="closed", reason="the client is closed")
            )
        # (No actor, or one just stopped: ``health`` as it stands.)
        return PendingHealth(health, ask_now(self._current(), GetConnectionStats()))

    def supervision(self) -> SupervisorStats:
        """How the connection's supervisor is doing (restarts so far)."""
        try:
            stats = ask(
                self._supervisor,
                GetSupervisorStats(),
                timeout=ASK_TIMEOUT,
                what=f"{self!r} supervision",
            )
        except ShutDown:
            raise ShutDown("the client is closed") from None
        return cast(SupervisorStats, stats)

    @property
    def connection_actor(self) -> pykka.ActorRef[Any] | None:
        """The connection actor now running (None while it restarts)."""
        return self._current()

    # -- lifetime ----------------------------------------------------------------

    def close(self) -> None:
        """Stop the actor: open requests end with ShutDown, the socket is
        closed and the actor's thread has ended when this returns."""
        self.closed_by_owner = True
        if self._recovery is not None:
            self._recovery.close()
            self._incarnations.recovering = False
        if self._shared:
            if not self._incarnations.gone:
                self._incarnations.gone = True
                with contextlib.suppress(ShutDown):
                    ask(
                        self._supervisor,
                        StopChild(self._child),
                        timeout=ASK_TIMEOUT,
                        what=f"stopping {self._child}",
                    )
            self._close_capture()
            return
        self._incarnations.gone = True
        stop_and_join(self._supervisor, 30)
        self._close_capture()

    def _close_capture(self) -> None:
        """Write out and close a capture this client opened."""
        if self._own_capture is not None:
            self._own_capture.close()

    @property
    def closed(self) -> bool:
        if self._incarnations.recovering:
            return False  # the jobs wait for the board to come back
        return self._incarnations.gone or not self._supervisor.is_alive()

    # -- recovery (actors/boot/recovery.py) ---------------------------------------

    def call(self, request: AbstractSCPRequest[R], timeout: float | None = None) -> R:
        response = super().call(request, timeout)
        if self._recovery is not None:
            self._recovery.noted(request)  # an IP tag to set again
        return response

    def _halt(self) -> None:
        """Stop the connection, its jobs left in the book (for _fail_open)."""
        self._incarnations.recovering = True
        self._book.parked = True
        try:
            stop_and_join(self._supervisor, 30)
        finally:
            self._book.parked = False

    def _fail_open(self, error: BaseException) -> None:
        self._book.fail_all(error)

    def _revive(self) -> None:
        """A connection again, with a supervisor of its own."""
        self._incarnations.gone = False
        self._incarnations.gave_up.clear()
        self._own_supervisor(*self._policy)
        self._incarnations.recovering = False
        self._current()

    def _lose(self, error: BaseException) -> None:
        """Given up for good: every job left ends with ``error``."""
        self._incarnations.recovering = False
        self._incarnations.gone = True
        self._incarnations.gave_up.set()
        self._book.fail_all(error)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = " closed" if self.closed else ""
        return f"Client({self.host}:{self.port}{state})"

    # -- inside ----------------------------------------------------------------

    def post(self, jobs: Sequence[Job], sink: OutcomeSink) -> None:
        """Hand ``jobs`` over without waiting: each one's Outcome goes to
        ``sink`` in batches as they end (what stream() and a worker
        process's group build on).

        The jobs go into the book, then whichever incarnation of the
        connection actor is running is woken (a restarting one reads the
        book when it starts)."""
        self._supervisor_alive_or_raise()
        self._book.put(jobs, sink)
        actor = self._current()
        if actor is not None:
            try:  # noqa: SIM105 - every post: suppress() costs ~200 ns more
                actor.tell(Wake())
            except pykka.ActorDeadError:
                pass

    def cancel(self, sink: OutcomeSink, keys: Sequence[Hashable]) -> None:
        """Give up on the jobs posted with ``sink`` under ``keys``: each
        that has not ended yet ends with Cancelled (sent to ``sink``), and
        nothing more of it is sent. Without waiting; a closed client has
        nothing left to cancel."""
        if self._incarnations.gone:
            return
        self._book.cancel(sink, keys)
        actor = self._current()
        if actor is not None:
            try:  # noqa: SIM105 - as in post
                actor.tell(Wake())
            except pykka.ActorDeadError:
                pass

    def _serving(self) -> bool:
        return not self.closed

    def _supervisor_alive_or_raise(self) -> None:
        if self._incarnations.recovering:
            return
        if self._incarnations.gone or not self._supervisor.is_alive():
            closed: BaseException = ShutDown("the client is closed")
            name = self._book.name_error
            raise closed if name is None else name(closed)
