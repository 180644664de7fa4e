"""connect(): the plain blocking client most scripts want.

A Client starts one ConnectionActor for its board and turns each call into
jobs for it: a read or write of any length is one job, which the actor
splits into 256-byte requests and pipelines through its window. Calls may
come from several threads at once; each waits only for its own outcome.
"""

from __future__ import annotations

import itertools
import queue
import time
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any, TypeVar, cast

import pykka

from actors.connection import ConnectionActor, ConnectionStats, GetStats, Wake
from actors.errors import ShutDown
from actors.jobs import Job, JobBook, Outcome, ReadJob, SCPJob, WriteJob, next_outcomes
from actors.supervisor import (
    Backoff,
    ChildSpec,
    GetSupervisorStats,
    Supervisor,
    SupervisorStats,
    Watch,
    WhereIs,
)
from actors.window import WindowSettings
from messages.errors import InvalidArgumentError
from messages.scp.base import AbstractSCPRequest, AbstractSCPResponse
from messages.scp.memory import FillRequest
from messages.scp.version import GetVersion, VersionInfo
from messages.validate import check_int
from transport.endpoint import DatagramEndpoint, UDPEndpoint
from transport.scamp import SCP_SCAMP_PORT, SCAMPConnection

R = TypeVar("R", bound=AbstractSCPResponse)



class Client:
    """A board at ``host:port`` behind one supervised-ready ConnectionActor.

    ``window`` requests are on the wire at once (a board's monitor holds 8);
    ``timeout`` is the longest wait for one reply before resending (the
    actual wait adapts to measured round trips, never below ``rto_floor``);
    ``retries`` is how often one request may be resent; ``limiter`` is a
    RateLimiterActor shared with other clients. ``endpoint`` runs over an
    in-memory or fault-injecting link instead of UDP.

    The connection actor runs under a Supervisor: if it fails (a socket
    error, a bug) it is restarted with a fresh socket and carries on with
    the requests that had no reply, each still answered exactly once. More
    than ``max_restarts`` failures within ``period`` seconds end every open
    request with ShutDown.
    """

    CHILD = "connection"

    def __init__(self, host: str, port: int = SCP_SCAMP_PORT, *,
                 window: int = 8, timeout: float = 1.0, retries: int = 10,
                 rto_floor: float = 0.005,
                 limiter: pykka.ActorRef[Any] | None = None,
                 local_host: str | None = None,
                 endpoint: DatagramEndpoint | None = None,
                 max_restarts: int = 3, period: float = 5.0,
                 backoff: Backoff | None = None) -> None:
        check_int("window", window, 1, 65535)
        check_int("retries", retries, 0, 1000)
        check_int("port", port, 0, 65535)
        if not isinstance(timeout, (int, float)) or not timeout > 0:
            raise InvalidArgumentError("timeout", timeout,
                                       "must be a positive number of seconds")
        # A name that does not resolve is the caller's mistake: say so now
        # rather than have the actor fail at every restart.
        if endpoint is not None:
            endpoint.resolve(host)
        else:
            UDPEndpoint.resolve_host(host)
        settings = WindowSettings(
            size=window, retries=retries, initial_rto=timeout,
            rto_floor=min(rto_floor, timeout), rto_ceiling=timeout)
        self.host, self.port = host, port

        endpoints = [endpoint]

        def open_connection() -> SCAMPConnection:
            # A given endpoint serves the first incarnation; a restart gets
            # a fresh UDP socket.
            given = endpoints.pop() if endpoints else None
            return SCAMPConnection(local_host=local_host, remote_host=host,
                                   remote_port=port, endpoint=given)

        self._book = book = JobBook()

        def start_connection(watch: Watch) -> pykka.ActorRef[Any]:
            return ConnectionActor.start(open_connection, settings,
                                         limiter=limiter, book=book,
                                         watch=watch)

        def give_up() -> None:
            book.fail_all(ShutDown("the connection kept failing; its "
                                   "supervisor gave up"))

        self._supervisor = Supervisor.start(
            [ChildSpec(self.CHILD, start_connection, cleanup=give_up)],
            max_restarts=max_restarts, period=period, backoff=backoff,
            name=f"client-{host}:{port}")
        self._actor: pykka.ActorRef[Any] | None = self._where()
        self._keys = itertools.count()

    # -- the board's operations ----------------------------------------------

    def version(self, x: int = 0, y: int = 0, p: int = 0) -> VersionInfo:
        """Who runs core (x, y, p): SC&MP or SARK, and its version."""
        info = self.call(GetVersion(x, y, p)).version_info
        assert info is not None
        return info

    def read(self, x: int, y: int, address: int, length: int,
             p: int = 0) -> bytes:
        """``length`` bytes of memory from ``address`` on chip (x, y)."""
        return bytes(self.read_buffer(x, y, address, length, p))

    def read_buffer(self, x: int, y: int, address: int, length: int,
                    p: int = 0) -> bytearray:
        """As read(), as the bytearray the replies were gathered in (what
        SpiNNMan's read_memory returns): no final copy, so half the peak
        memory of read() for a large read."""
        value: bytearray = self._one(ReadJob(next(self._keys), x, y, p,
                                             address, length))
        return value

    def write(self, x: int, y: int, address: int,
              data: bytes | bytearray | memoryview, p: int = 0) -> None:
        """Write ``data`` to memory from ``address`` on chip (x, y)."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InvalidArgumentError("data", type(data).__name__,
                                       "must be bytes-like")
        self._one(WriteJob(next(self._keys), x, y, p, address, bytes(data)))

    def fill(self, x: int, y: int, address: int, data: int,
             size: int) -> None:
        """Fill ``size`` bytes from ``address`` with the 32-bit word
        ``data`` (both word aligned), on the board in one request."""
        self.call(FillRequest(x, y, address, data, size))

    def call(self, request: AbstractSCPRequest[R],
             timeout: float | None = None) -> R:
        """Send any SCP request; its parsed response, or the error.

        ``timeout`` is a deadline for this request over all its tries.
        """
        reply = self._one(SCPJob(next(self._keys), request, timeout))
        response = request.get_scp_response()
        response.read_bytestring(reply, 2)
        return response

    def submit(self, jobs: Sequence[Job]) -> list[Outcome]:
        """Run a batch of jobs together; their outcomes in the same order.

        Errors are not raised: each outcome says how its job ended.
        """
        by_key = {outcome.key: outcome for outcome in self.stream(jobs)}
        return [by_key[job.key] for job in jobs]

    def stream(self, jobs: Sequence[Job]) -> Iterator[Outcome]:
        """Run a batch of jobs together; each outcome as soon as it comes
        (in the order they end), for progress as a long transfer goes."""
        sink: queue.SimpleQueue[list[Outcome]] = queue.SimpleQueue()
        self._submit(list(jobs), sink)
        left = len(jobs)
        while left:
            batch = self._next_batch(sink)
            left -= len(batch)
            yield from batch

    def stats(self) -> ConnectionStats:
        """Counters and round-trip statistics of the connection (since its
        last restart)."""
        for _ in range(100):
            actor = self._current()
            if actor is not None:
                try:
                    stats = cast(ConnectionStats,
                                 actor.ask(GetStats(), timeout=10))
                    return stats
                except pykka.ActorDeadError:
                    pass
            self._supervisor_alive_or_raise()
            time.sleep(0.01)  # restarting: ask again shortly
        raise ShutDown("the connection did not come back")

    def supervision(self) -> SupervisorStats:
        """How the connection's supervisor is doing (restarts so far)."""
        try:
            stats = cast(SupervisorStats, self._supervisor.ask(
                GetSupervisorStats(), timeout=10))
        except pykka.ActorDeadError:
            raise ShutDown("the client is closed") from None
        return stats

    @property
    def connection_actor(self) -> pykka.ActorRef[Any] | None:
        """The connection actor now running (None while it restarts)."""
        return self._current()

    # -- lifetime ----------------------------------------------------------------

    def close(self) -> None:
        """Stop the actor: open requests end with ShutDown, the socket is
        closed and the actor's thread has ended when this returns."""
        try:
            self._supervisor.stop(block=True, timeout=30)
        except pykka.ActorDeadError:
            pass

    @property
    def closed(self) -> bool:
        return not self._supervisor.is_alive()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, kind: type[BaseException] | None,
                 value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        state = " closed" if self.closed else ""
        return f"Client({self.host}:{self.port}{state})"

    # -- inside ----------------------------------------------------------------

    def _one(self, job: Job) -> Any:
        """Run one job; its value, or raise its error."""
        sink: queue.SimpleQueue[list[Outcome]] = queue.SimpleQueue()
        self._submit([job], sink)
        while True:
            for outcome in self._next_batch(sink):
                if outcome.error is not None:
                    raise outcome.error
                return outcome.value

    def _submit(self, jobs: list[Job],
                sink: queue.SimpleQueue[list[Outcome]]) -> None:
        """Put the jobs in the book, then wake whichever incarnation of the
        connection actor is running (a restarting one reads the book when
        it starts)."""
        self._supervisor_alive_or_raise()
        self._book.put(jobs, sink)
        actor = self._current()
        if actor is not None:
            try:
                actor.tell(Wake())
            except pykka.ActorDeadError:
                pass

    def _current(self) -> pykka.ActorRef[Any] | None:
        actor = self._actor
        if actor is not None and actor.is_alive():
            return actor
        self._actor = actor = self._where()
        return actor

    def _where(self) -> pykka.ActorRef[Any] | None:
        try:
            ref = cast("pykka.ActorRef[Any] | None", self._supervisor.ask(
                WhereIs(self.CHILD), timeout=10))
        except (pykka.ActorDeadError, pykka.Timeout):
            return None
        return ref

    def _supervisor_alive_or_raise(self) -> None:
        if not self._supervisor.is_alive():
            raise ShutDown("the client is closed")

    def _next_batch(self, sink: queue.SimpleQueue[list[Outcome]]
                    ) -> list[Outcome]:
        """The next batch of outcomes; ShutDown if the actor died without
        answering (it answers every job it has, even when stopping)."""
        batch = next_outcomes(sink, self._supervisor.is_alive)
        if batch is None:
            raise ShutDown("the connection actor stopped")
        return batch


def connect(host: str, port: int = SCP_SCAMP_PORT, **options: Any) -> Client:
    """A Client for the board at ``host:port``; use it as a context manager.

    Options: window, timeout, retries, rto_floor, limiter, local_host,
    endpoint (see Client).
    """
    return Client(host, port, **options)
