"""A client for many boards, spread over worker processes or Ray actors.

One Python process tops out near the bare-socket rate for all its boards
together, so a Machine places its boards in groups, each in a worker
process of its own (``placement="process"``, spawned) or a Ray actor
(``placement="ray"``), or keeps them in this process (``workers=0``). A
group runs one supervised Client per board; the parent holds a GroupActor
per group, under one Supervisor, that forwards batches of jobs and brings
their outcomes back. A worker that dies, hangs past its heartbeat deadline
or gives up is restarted under the supervisor's intensity rules, and the
new one runs the jobs the old one left open: each still ends exactly once.
"""

from __future__ import annotations

import logging
import os
import queue
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, Literal, cast

import pykka

from actors.board.client import Client
from actors.board.health import BoardHealth, BoardState
from actors.board.operations import BoardOperations, run_jobs
from actors.compat.connection_listener import ConnectionListener
from actors.connection.actor import ConnectionStats
from actors.errors import ShutDown, ask, at_board
from actors.lifetime import track
from actors.placement.book import NO_ANSWER, GroupBook
from actors.placement.links import GroupLink, ProcessLink
from actors.placement.parent import (
    HEARTBEAT_DEADLINE,
    START_ATTEMPTS,
    Forward,
    GetWorkerPid,
    GroupActor,
    SendListen,
    SendStats,
)
from actors.placement.wire import (
    LISTEN_KINDS,
    BoardSpec,
    GroupSpec,
    Listen,
    Listening,
    Unlisten,
)
from actors.placement.worker import LOGGERS
from actors.protocol.jobs import Job, Outcome, OutcomeSink
from actors.supervision.child import Watch, stop_and_join
from actors.supervision.errors import ChildNotRunning
from actors.supervision.spec import Backoff, ChildSpec
from actors.supervision.supervisor import (
    ChildLookup,
    GetSupervisorStats,
    StartChild,
    Strategy,
    Supervisor,
    SupervisorStats,
)
from messages.errors import InvalidArgumentError
from transport.capture import PacketCapture, names_each_board
from transport.endpoint import UDPEndpoint
from transport.feed import MessageFeed
from transport.scamp import SCP_SCAMP_PORT

Placement = Literal["process", "ray"]
#: A board: "host", (host, port), or anything with an ``address`` (a
#: VirtualBoard).
BoardAddress = Any
#: How long a call waits for a group to answer a question (stats, listen).
ASK_TIMEOUT = 30.0
#: How long Machine.health waits for its groups' answers, in all.
HEALTH_TIMEOUT = 2.0


def _check_capture(capture: Any, boards: int, workers: int | None) -> None:
    """A capture must give each board a file of its own (or, in this
    process, may be one PacketCapture that they share)."""
    if capture is None:
        return
    if isinstance(capture, PacketCapture):
        if workers != 0:
            raise InvalidArgumentError(
                "capture",
                capture,
                "a PacketCapture cannot cross to a worker: give a file "
                "template with {host} and {port}, or a directory",
            )
        return
    if boards > 1 and not names_each_board(capture):
        raise InvalidArgumentError(
            "capture",
            capture,
            "several boards would write one file: give a template with "
            "{host} and {port}, or a directory",
        )


def board_addresses(
    boards: Sequence[BoardAddress] | Mapping[Hashable, BoardAddress],
) -> dict[Hashable, tuple[str, int]]:
    """Board name -> (host, port): names are the positions in a sequence,
    or the keys of a mapping."""
    items = (
        list(boards.items()) if isinstance(boards, Mapping) else list(enumerate(boards))
    )
    if not items:
        raise InvalidArgumentError("boards", boards, "needs at least one")
    out: dict[Hashable, tuple[str, int]] = {}
    for name, board in items:
        address = getattr(board, "address", board)
        if isinstance(address, str):
            address = (address, SCP_SCAMP_PORT)
        if (
            not isinstance(address, tuple)
            or len(address) != 2
            or not isinstance(address[0], str)
            or not isinstance(address[1], int)
        ):
            raise InvalidArgumentError(
                f"board {name!r}",
                board,
                "must be a host, (host, port) or have an address",
            )
        out[name] = (address[0], address[1])
    return out


def _label(address: tuple[str, int]) -> str:
    return f"{address[0]}:{address[1]}"


class _Group:
    """The parent's handle on one placed group."""

    def __init__(
        self, index: int, spec: GroupSpec, supervisor: pykka.ActorRef[Any]
    ) -> None:
        self.child_id = f"group-{index}"
        self.spec = spec
        self.book = GroupBook(spec.boards)
        self._supervisor = supervisor
        #: The running incarnation of the group's actor (None while it
        #: restarts).
        self.current = ChildLookup(supervisor, self.child_id, ASK_TIMEOUT)

    def tell(self, message: Any) -> bool:
        """Tell the running incarnation; False if none runs just now (a new
        one reads the book when it starts)."""
        actor = self.current()
        if actor is None:
            return False
        try:
            actor.tell(message)
        except pykka.ActorDeadError:
            return False
        return True

    def ask_actor(self, message: Any) -> Any:
        """Ask the running incarnation (None if none runs just now, or if it
        is still starting its worker and cannot answer yet)."""
        actor = self.current()
        if actor is None:
            return None
        try:
            return actor.ask(message, timeout=ASK_TIMEOUT)
        except (pykka.ActorDeadError, pykka.Timeout):
            return None

    def send_question(
        self, send: Callable[[int], Any]
    ) -> tuple[int, queue.SimpleQueue[Any]] | None:
        """Tell ``send(ticket)`` to the running incarnation without waiting:
        the ticket and where its answer comes (forget the ticket once
        done with it), or None if none runs just now."""
        ticket, answer = self.book.new_ticket()
        if not self.tell(send(ticket)):
            self.book.forget(ticket)
            return None
        return ticket, answer

    def ask(self, send: Callable[[int], Any], what: str) -> Any:
        """Send ``send(ticket)`` to the group and wait for the answer,
        asking again if the worker is lost meanwhile (until ASK_TIMEOUT)."""
        self._check_open()
        deadline = time.monotonic() + ASK_TIMEOUT
        while self._supervisor.is_alive():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            asked = self.send_question(send)
            if asked is None:
                # Between incarnations: woken when the next one runs.
                try:
                    self.current.wait(left)
                except ChildNotRunning:
                    break
                continue
            ticket, answer = asked
            try:
                value = answer.get(timeout=left)
            except queue.Empty:
                break
            finally:
                self.book.forget(ticket)
            if value is not NO_ANSWER:
                return value
        raise ShutDown(f"{self.child_id} did not answer {what}")

    def ask_health(self) -> tuple[int, queue.SimpleQueue[Any]] | None:
        """Ask for its boards' health without waiting (see send_question and
        health); None if there is none to ask."""
        if self.book.closed_by is not None or not self._supervisor.is_alive():
            return None
        return self.send_question(lambda ticket: SendStats(ticket, health=True))

    def health(
        self,
        addresses: Mapping[Hashable, tuple[str, int]],
        asked: tuple[int, queue.SimpleQueue[Any]] | None,
        deadline: float,
    ) -> dict[Hashable, BoardHealth]:
        """Its boards' health: the answer to ``asked`` (from ask_health)
        if it comes by ``deadline``; else each board says why there is
        none (given up, closed, restarting, or a worker that did not
        answer in time)."""
        names = [board.name for board in self.spec.boards]

        def each(state: BoardState, reason: str) -> dict[Hashable, BoardHealth]:
            return {
                name: BoardHealth(_label(addresses[name]), state, reason=reason)
                for name in names
            }

        if self.book.closed_by is not None:
            return each("given_up", f"{self.child_id}: {self.book.closed_by}")
        if not self._supervisor.is_alive():
            return each("closed", "the machine is closed")
        if asked is None:
            return each("restarting", f"{self.child_id}'s worker is restarting")
        ticket, answer = asked
        try:
            value = answer.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return each(
                "unresponsive", f"{self.child_id}'s worker did not answer in time"
            )
        finally:
            self.book.forget(ticket)
        if value is NO_ANSWER:
            return each("restarting", f"{self.child_id}'s worker is restarting")
        return cast("dict[Hashable, BoardHealth]", value)

    def _check_open(self) -> None:
        """ShutDown at once for a group given up for good (no worker will
        ever answer)."""
        if self.book.closed_by is not None:
            raise ShutDown(f"{self.child_id}: {self.book.closed_by}")

    def listen(self, listen: Listen, heard: Callable[[list[Any]], None]) -> Listening:
        """Open a listener in the group; each new worker opens it again
        (on the port the first one bound)."""
        self._check_open()
        listen_id, answer = self.book.new_ticket(lost_with_group=False)
        listen = replace(listen, listen_id=listen_id)
        self.book.listeners[listen_id] = (listen, heard)
        try:
            self.tell(SendListen(listen_id))  # else the next worker opens it
            try:
                value: Listening = answer.get(timeout=ASK_TIMEOUT)
            except queue.Empty:
                raise ShutDown(f"{self.child_id} did not open a listener") from None
        finally:
            self.book.forget(listen_id)
        if value.address is None:
            self.book.listeners.pop(listen_id, None)
        return value


class MachineBoard(BoardOperations):
    """One board of a Machine, with a Client's operations."""

    def __init__(self, machine: Machine, name: Hashable) -> None:
        super().__init__()
        self.machine = machine
        self.name = name

    def post(self, jobs: Sequence[Job], sink: OutcomeSink) -> None:
        self.machine.post([(self.name, job) for job in jobs], sink)

    def cancel(self, sink: OutcomeSink, keys: Sequence[Hashable]) -> None:
        self.machine.cancel(sink, [(self.name, key) for key in keys])

    def _serving(self) -> bool:
        return not self.machine.closed

    def __repr__(self) -> str:
        return f"MachineBoard({self.name!r} of {self.machine!r})"


@dataclass
class RemoteListener:
    """A listening port in a board's group, and the callbacks here."""

    address: tuple[str, int]
    listener: ConnectionListener[Any]
    close: Callable[[], None]


class Machine:
    """Many boards behind one client, placed over ``workers`` groups.

    ``boards`` is a sequence (boards are named by position) or a mapping
    (named by key) of hosts, (host, port) pairs or VirtualBoards.
    ``workers`` is how many groups (default: the number of cores; 0 keeps
    every board in this process, each its own Client); ``placement`` is
    "process" (spawned worker processes) or "ray" (Ray actors: call
    ``ray.init()`` first to join a cluster, else a local one is started).
    Other options (window, timeout, retries, rto_floor, local_host,
    backoff...) go to each board's Client; a ``limiter`` stays here and
    paces the boards of every group (actors/ratelimit/remote.py). The groups run
    under one Supervisor (``strategy``, ``max_restarts`` in ``period``,
    ``backoff``, which also bound each board's connection restarts); a
    group silent for ``heartbeat_deadline`` seconds is taken for hung and
    restarted; one whose worker fails to start ``start_attempts`` times in
    a row is given up (its jobs end with GroupLost saying so).

    Every error a job ends with names its board, ``board 'a' at
    host:port: ...``, keeping its type (actors.errors.at_board).

    ``capture`` writes each board's datagrams to a pcap file of its own,
    wherever the board is placed: a template with {host} and {port}
    (``"run-{host}-{port}.pcap"``) or a directory.
    """

    def __init__(
        self,
        boards: Sequence[BoardAddress] | Mapping[Hashable, BoardAddress],
        *,
        workers: int | None = None,
        placement: Placement = "process",
        heartbeat_deadline: float = HEARTBEAT_DEADLINE,
        start_attempts: int = START_ATTEMPTS,
        max_restarts: int = 3,
        period: float = 5.0,
        backoff: Backoff | None = None,
        strategy: Strategy = "one_for_one",
        start_link: Callable[[GroupSpec], GroupLink] | None = None,
        **options: Any,
    ) -> None:
        self.addresses = board_addresses(boards)
        _check_capture(options.get("capture"), len(self.addresses), workers)
        if workers is None:
            workers = os.cpu_count() or 1
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
            raise InvalidArgumentError(
                "workers", workers, "must be a whole number >= 0"
            )
        if placement not in ("process", "ray"):
            raise InvalidArgumentError(
                "placement", placement, 'must be "process" or "ray"'
            )
        self.placement = placement if workers else "in-process"
        self._clients: dict[Hashable, Client] = {}
        self._groups: list[_Group] = []
        self._group_of: dict[Hashable, _Group] = {}
        self._listeners: list[RemoteListener] = []
        self._supervisor: pykka.ActorRef[Any] | None = None
        self._closed = False
        #: In-process, the boards' connection actors share one supervisor
        #: (one thread), each restarted and given up on alone.
        self._local: pykka.ActorRef[Any] | None = None
        track(self.close)  # closed at exit if still open
        if not workers:
            try:
                self._local = Supervisor.start(
                    [],
                    per_child=True,
                    max_restarts=max_restarts,
                    period=period,
                    backoff=backoff,
                    name="machine-boards",
                )
                for name, (host, port) in self.addresses.items():
                    self._clients[name] = Client(
                        host, port, supervisor=self._local, board_name=name, **options
                    )
            except BaseException:
                self.close()
                raise
            return
        for host, _ in self.addresses.values():
            UDPEndpoint.resolve_host(host)  # a bad name: an error here, now
        # The limiter stays here; the groups' connections ask it for leases
        # through their GroupActors (actors/ratelimit/remote.py).
        limiter = options.pop("limiter", None)
        if limiter is not None and not isinstance(limiter, pykka.ActorRef):
            raise InvalidArgumentError(
                "limiter", limiter, "must be a RateLimiterActor's ActorRef"
            )
        options = dict(
            options, max_restarts=max_restarts, period=period, backoff=backoff
        )
        specs = self._group_specs(
            min(workers, len(self.addresses)), options, limited=limiter is not None
        )
        link = start_link or _link_for(placement)
        self._supervisor = supervisor = Supervisor.start(
            [],
            strategy=strategy,
            max_restarts=max_restarts,
            period=period,
            backoff=backoff,
            name="machine",
        )
        try:
            for index, spec in enumerate(specs):
                group = _Group(index, spec, supervisor)
                ask(
                    supervisor,
                    _start_child(
                        group, link, heartbeat_deadline, start_attempts, limiter
                    ),
                    timeout=ASK_TIMEOUT,
                    what=f"starting {group.child_id}",
                )
                self._groups.append(group)
                for board in spec.boards:
                    self._group_of[board.name] = group
        except BaseException:
            self.close()
            raise

    # -- the boards ----------------------------------------------------------

    @property
    def boards(self) -> list[Hashable]:
        return list(self.addresses)

    def board(self, name: Hashable) -> BoardOperations:
        """One board, with a Client's operations (read, write, version...)."""
        self._check_board(name)
        client = self._clients.get(name)
        return client if client is not None else MachineBoard(self, name)

    def version(self, board: Hashable, x: int = 0, y: int = 0, p: int = 0) -> Any:
        return self.board(board).version(x, y, p)

    def read(
        self, board: Hashable, x: int, y: int, address: int, length: int, p: int = 0
    ) -> bytes:
        return self.board(board).read(x, y, address, length, p)

    def write(
        self,
        board: Hashable,
        x: int,
        y: int,
        address: int,
        data: bytes | bytearray | memoryview,
        p: int = 0,
    ) -> None:
        self.board(board).write(x, y, address, data, p)

    def fill(
        self, board: Hashable, x: int, y: int, address: int, data: int, size: int
    ) -> None:
        self.board(board).fill(x, y, address, data, size)

    def post(self, entries: Sequence[tuple[Hashable, Job]], sink: OutcomeSink) -> None:
        """Hand (board, job) pairs over without waiting; outcomes go to
        ``sink`` in batches. A board not in the machine, or a job that
        cannot cross to its worker, raises InvalidArgumentError here and
        nothing of the batch is sent."""
        if self.closed:
            closed = ShutDown("the machine is closed")
            boards = {board for board, _ in entries}
            if len(boards) == 1:  # (one board's call: name it)
                (board,) = boards
                if board in self.addresses:
                    raise at_board(closed, board, self.addresses[board])
            raise closed
        by_target: dict[int, tuple[Client | _Group, list[Any]]] = {}
        for board, job in entries:
            self._check_board(board)
            target: Client | _Group = self._clients.get(board) or self._group_of[board]
            by_target.setdefault(id(target), (target, []))[1].append(
                job if isinstance(target, Client) else (board, job)
            )
        # Every group's share is pickled (and may be refused) before any
        # is taken: a refused batch sends nothing.
        prepared = [
            (target, target.book.prepare(items, sink))
            for target, items in by_target.values()
            if isinstance(target, _Group)
        ]
        for group, batch in prepared:
            group.book.take(batch)
            group.tell(Forward())
        for target, items in by_target.values():
            if isinstance(target, Client):
                target.post(items, sink)

    def cancel(
        self, sink: OutcomeSink, entries: Sequence[tuple[Hashable, Hashable]]
    ) -> None:
        """Give up on jobs posted with ``sink``, as (board, key) pairs: each
        not ended yet ends with Cancelled, in its worker (the cancel
        crosses as plain data), without waiting."""
        if self.closed:
            return
        by_target: dict[int, tuple[Client | _Group, list[Hashable]]] = {}
        for board, key in entries:
            self._check_board(board)
            target: Client | _Group = self._clients.get(board) or self._group_of[board]
            by_target.setdefault(id(target), (target, []))[1].append(key)
        for target, keys in by_target.values():
            if isinstance(target, Client):
                target.cancel(sink, keys)
            elif target.book.cancel(sink, keys):
                target.tell(Forward())

    def submit(self, entries: Sequence[tuple[Hashable, Job]]) -> list[Outcome]:
        """Run (board, job) pairs together; outcomes in the same order
        (jobs' keys must differ)."""
        by_key = {
            outcome.key: outcome
            for outcome in run_jobs(self.post, entries, lambda: not self.closed)
        }
        return [by_key[job.key] for _, job in entries]

    def stats(self) -> dict[Hashable, ConnectionStats | str]:
        """Each board's connection stats (a text saying why, if none)."""
        out: dict[Hashable, ConnectionStats | str] = {}
        for name, client in self._clients.items():
            out[name] = client.stats()
        for group in self._groups:
            if group.book.closed_by is not None:
                why = str(group.book.closed_by)
                out.update((board.name, why) for board in group.spec.boards)
            else:
                out.update(group.ask(SendStats, "stats"))
        return {name: out[name] for name in self.addresses if name in out}

    def health(self, timeout: float = HEALTH_TIMEOUT) -> dict[Hashable, BoardHealth]:
        """Each board's health (see Client.health), without waiting for a
        group that is restarting its worker: its boards say so. Every
        group is asked at once and given ``timeout`` seconds in all; the
        boards of one that has not answered by then are "unresponsive"
        (a hung worker, found and restarted after ``heartbeat_deadline``),
        so a health check never waits longer than that for many groups."""
        deadline = time.monotonic() + timeout
        asked = [(group, group.ask_health()) for group in self._groups]
        out: dict[Hashable, BoardHealth] = {
            name: client.health() for name, client in self._clients.items()
        }
        for group, question in asked:
            out.update(group.health(self.addresses, question, deadline))
        return {name: out[name] for name in self.addresses if name in out}

    @property
    def local_clients(self) -> tuple[Client, ...]:
        """The Clients of the boards run in this process (workers=0)."""
        return tuple(self._clients.values())

    def supervision(self) -> SupervisorStats | None:
        """How the groups' supervisor is doing (None in-process)."""
        if self._supervisor is None:
            return None
        try:
            stats = ask(
                self._supervisor,
                GetSupervisorStats(),
                timeout=ASK_TIMEOUT,
                what="the machine's supervisor",
            )
        except ShutDown:
            raise ShutDown("the machine is closed") from None
        return cast(SupervisorStats, stats)

    def listen(
        self,
        board: Hashable,
        callback: Callable[[Any], None],
        *,
        kind: str = "sdp",
        local_host: str | None = None,
        local_port: int | None = None,
        n_processes: int = 1,
    ) -> RemoteListener:
        """Open a UDP port beside ``board`` (in its group's process) for
        SDP or EIEIO messages, e.g. those an IP tag sends; ``callback``
        runs here, with each message in arrival order."""
        self._check_board(board)
        if kind not in LISTEN_KINDS:
            raise InvalidArgumentError(
                "kind", kind, f"must be one of {sorted(LISTEN_KINDS)}"
            )
        if board in self._clients:
            connection = LISTEN_KINDS[kind](
                local_host=local_host, local_port=local_port
            )
            listener: ConnectionListener[Any] = ConnectionListener(
                connection, n_processes
            )
            address = (connection.local_ip_address, connection.local_port)

            def close() -> None:
                listener.close()
                connection.close()
        else:
            group = self._group_of[board]
            feed: MessageFeed[Any] = MessageFeed()
            answer = group.listen(Listen(-1, kind, local_host, local_port), feed.add)
            if answer.address is None:
                feed.close()
                raise InvalidArgumentError(
                    "listen",
                    (local_host, local_port),
                    f"could not open: {answer.error}",
                )
            address = answer.address
            listener = ConnectionListener(feed, n_processes)

            def close() -> None:
                group.book.listeners.pop(answer.listen_id, None)
                group.tell(Unlisten(answer.listen_id))
                listener.close()
                feed.close()

        listener.add_callback(callback)
        listener.start()
        handle = RemoteListener(address, listener, close)
        self._listeners.append(handle)
        return handle

    @property
    def worker_pids(self) -> list[int | None]:
        """Process id of each group's worker now (None while it restarts):
        for watching them, or for chaos tests that kill them."""
        return [group.ask_actor(GetWorkerPid()) for group in self._groups]

    # -- lifetime ----------------------------------------------------------------

    def close(self) -> None:
        """Stop everything: open jobs end with ShutDown, workers exit (or
        are killed after a grace period), sockets close."""
        self._closed = True
        for handle in self._listeners:
            handle.close()
        self._listeners.clear()
        for client in self._clients.values():
            client.close()
        if self._local is not None:
            stop_and_join(self._local, 60)
        if self._supervisor is not None:
            stop_and_join(self._supervisor, 60)

    @property
    def closed(self) -> bool:
        return self._closed or (
            self._supervisor is not None and not self._supervisor.is_alive()
        )

    def __enter__(self) -> Machine:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"Machine({len(self.addresses)} boards, {self.placement}, "
            f"{len(self._groups)} groups)"
        )

    # -- inside ------------------------------------------------------------------

    def _check_board(self, name: Hashable) -> None:
        if name not in self.addresses:
            raise InvalidArgumentError("board", name, f"is not one of {self.boards}")

    def _group_specs(
        self, n_groups: int, options: dict[str, Any], *, limited: bool
    ) -> list[GroupSpec]:
        boards = [
            BoardSpec(name, host, port) for name, (host, port) in self.addresses.items()
        ]
        level = min(logging.getLogger(name).getEffectiveLevel() for name in LOGGERS)
        return [
            GroupSpec(
                f"group-{index}",
                tuple(boards[index::n_groups]),
                options,
                log_level=level,
                limited=limited,
            )
            for index in range(n_groups)
        ]


def _start_child(
    group: _Group,
    link: Callable[[GroupSpec], GroupLink],
    heartbeat_deadline: float,
    start_attempts: int,
    limiter: pykka.ActorRef[Any] | None,
) -> StartChild:
    def start(watch: Watch) -> pykka.ActorRef[Any]:
        return GroupActor.start(
            group.spec,
            link,
            group.book,
            heartbeat_deadline=heartbeat_deadline,
            start_attempts=start_attempts,
            limiter=limiter,
            watch=watch,
        )

    def give_up() -> None:
        if group.book.closed_by is None:  # (else it gave up itself)
            group.book.close(
                ShutDown(f"{group.child_id} kept failing; its supervisor gave up")
            )

    # transient: a group ends normally only when it gives up on starting
    # Its start (a worker process to spawn) is not waited for: groups spawn
    # side by side, and the supervisor answers lookups meanwhile.
    spec = ChildSpec(
        group.child_id,
        start,
        "transient",
        shutdown=30.0,
        cleanup=give_up,
        start_timeout=None,
    )
    return StartChild(spec)


def _link_for(placement: Placement) -> Callable[[GroupSpec], GroupLink]:
    if placement == "ray":
        from actors.placement import ray_link  # Ray only when asked for

        ray_link.start_ray()  # here, on the caller's thread
        return ray_link.RayLink
    return ProcessLink
