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
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, cast

import pykka

from actors.board.client import Client
from actors.board.health import BoardHealth
from actors.board.operations import BoardOperations, run_jobs
from actors.boot.many import BootsBoards, check_bmps
from actors.boot.options import BMPGiven
from actors.compat.connection_listener import ConnectionListener
from actors.connection.messages import ConnectionStats
from actors.errors import ShutDown, ask, at_board
from actors.lifetime import track
from actors.placement.feed import MessageFeed
from actors.placement.groups import ASK_TIMEOUT, PlacedGroup, Placement, link_for
from actors.placement.links import GroupLink
from actors.placement.options import BoardAddress, board_addresses, check_placement
from actors.placement.parent import (
    HEARTBEAT_DEADLINE,
    START_ATTEMPTS,
    Forward,
    GetWorkerPid,
    SendStats,
)
from actors.placement.wire import (
    LISTEN_KINDS,
    BoardSpec,
    GroupSpec,
    Listen,
    Unlisten,
)
from actors.placement.worker import LOGGERS
from actors.protocol.jobs import Job, Outcome, OutcomeSink
from actors.supervision.child import stop_and_join
from actors.supervision.messages import (
    GetSupervisorStats,
    StartChild,
    SupervisorStats,
)
from actors.supervision.spec import Backoff
from actors.supervision.supervisor import Strategy, Supervisor
from messages.errors import InvalidArgumentError

#: How long Machine.health waits for its groups' answers, in all.
HEALTH_TIMEOUT = 2.0
#: The share of a health check's timeout a worker may wait for its own
#: boards: the rest is left for its answer to come back in time, so one
#: stuck connection actor is unresponsive alone, not its whole group.
WORKER_SHARE = 0.5


class MachineBoard(BoardOperations):
    """One board of a Machine, with a Client's operations."""

    def __init__(self, machine: Machine, name: Hashable) -> None:
        super().__init__()
        self.machine = machine
        self._name = name

    @property
    def name(self) -> Hashable:
        return self._name

    @property
    def address(self) -> tuple[str, int]:
        return self.machine.addresses[self._name]

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


class Machine(BootsBoards):
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

    ``bmps`` names each board's BMP (a BoardBMP or ``"HOST[:PORT][/N]"``,
    by board name), for ``boot()`` to power a silent board on and for
    ``power_on()`` and ``power_off()`` (actors/boot/many.py).
    """

    def __init__(
        self,
        boards: Sequence[BoardAddress] | Mapping[Any, BoardAddress],
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
        bmps: Mapping[Any, BMPGiven] | None = None,
        **options: Any,
    ) -> None:
        self.addresses = board_addresses(boards)
        self.bmps = check_bmps(bmps, self.addresses)
        workers = check_placement(workers, placement, self.addresses, options)
        self.placement = placement if workers else "in-process"
        self._clients: dict[Hashable, Client] = {}
        self._groups: list[PlacedGroup] = []
        self._group_of: dict[Hashable, PlacedGroup] = {}
        self._listeners: list[RemoteListener] = []
        #: The groups' supervisor (None in-process).
        self._supervisor: pykka.ActorRef[Any] | None = None
        #: In-process, the boards' connection actors share one supervisor
        #: (one thread), each restarted and given up on alone.
        self._local: pykka.ActorRef[Any] | None = None
        self._closed = False
        track(self.close)  # closed at exit if still open
        # One intensity for the groups and for each board's connection.
        restarts = {"max_restarts": max_restarts, "period": period, "backoff": backoff}
        try:
            if workers:
                self._place(
                    min(workers, len(self.addresses)),
                    start_link or link_for(placement),
                    strategy,
                    restarts,
                    options,
                    heartbeat_deadline=heartbeat_deadline,
                    start_attempts=start_attempts,
                )
            else:
                self._start_here(restarts, options)
        except BaseException:
            self.close()
            raise

    def _place(
        self,
        n_groups: int,
        link: Callable[[GroupSpec], GroupLink],
        strategy: Strategy,
        restarts: dict[str, Any],
        options: dict[str, Any],
        *,
        heartbeat_deadline: float,
        start_attempts: int,
    ) -> None:
        """The boards dealt over ``n_groups`` groups, each started on a
        worker of its own (not waited for) under one supervisor."""
        # The limiter stays here; the groups' connections ask it for
        # leases through their GroupActors (actors/ratelimit/remote.py).
        limiter = options.pop("limiter", None)
        specs = self._group_specs(
            n_groups, dict(options, **restarts), limited=limiter is not None
        )
        self._supervisor = Supervisor.start(
            [], strategy=strategy, name="machine", **restarts
        )
        for index, spec in enumerate(specs):
            self._add_group(
                PlacedGroup(
                    index,
                    spec,
                    self._supervisor,
                    link,
                    heartbeat_deadline=heartbeat_deadline,
                    start_attempts=start_attempts,
                    limiter=limiter,
                )
            )

    def _start_here(self, restarts: dict[str, Any], options: dict[str, Any]) -> None:
        """Every board in this process, each its own Client, under one
        supervisor."""
        self._local = Supervisor.start(
            [], per_child=True, name="machine-boards", **restarts
        )
        for name, (host, port) in self.addresses.items():
            self._clients[name] = Client(
                host, port, supervisor=self._local, board_name=name, **options
            )

    def _add_group(self, group: PlacedGroup) -> None:
        """Start ``group`` under the groups' supervisor (without waiting
        for its worker); its boards' jobs go to it from now on."""
        assert self._supervisor is not None
        ask(
            self._supervisor,
            StartChild(group.child_spec()),
            timeout=ASK_TIMEOUT,
            what=f"starting {group.child_id}",
        )
        self._groups.append(group)
        for board in group.spec.boards:
            self._group_of[board.name] = group

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
        by_target: dict[int, tuple[Client | PlacedGroup, list[Any]]] = {}
        for board, job in entries:
            self._check_board(board)
            target: Client | PlacedGroup = (
                self._clients.get(board) or self._group_of[board]
            )
            by_target.setdefault(id(target), (target, []))[1].append(
                job if isinstance(target, Client) else (board, job)
            )
        # Every group's share is pickled (and may be refused) before any
        # is taken: a refused batch sends nothing.
        prepared = [
            (target, target.book.prepare(items, sink))
            for target, items in by_target.values()
            if isinstance(target, PlacedGroup)
        ]
        for group, batch in prepared:
            group.book.admit(batch)
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
        by_target: dict[int, tuple[Client | PlacedGroup, list[Hashable]]] = {}
        for board, key in entries:
            self._check_board(board)
            target: Client | PlacedGroup = (
                self._clients.get(board) or self._group_of[board]
            )
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
        group (and each board in this process) is asked at once and given
        ``timeout`` seconds in all; the boards of one that has not answered
        by then are "unresponsive" (a hung worker, found and restarted
        after ``heartbeat_deadline``), so a health check never waits longer
        than that for many groups. A worker asks its own boards at once
        too, waiting WORKER_SHARE of ``timeout`` for them: a board whose
        connection actor is stuck is unresponsive alone."""
        deadline = time.monotonic() + timeout
        return self.ask_health(timeout)(deadline)

    def ask_health(
        self, timeout: float = HEALTH_TIMEOUT
    ) -> Callable[[float], dict[Hashable, BoardHealth]]:
        """health(timeout) asked and not waited for: called with its
        deadline (time.monotonic()), it gives the answers, so that a
        scrape asks many Machines at once and waits for them together."""
        local = [(name, client.ask_health()) for name, client in self._clients.items()]
        share = timeout * WORKER_SHARE
        asked = [(group, group.ask_health(share)) for group in self._groups]

        def result(deadline: float) -> dict[Hashable, BoardHealth]:
            out = {name: pending.result(deadline) for name, pending in local}
            for group, question in asked:
                out.update(group.health(self.addresses, question, deadline))
            return {name: out[name] for name in self.addresses if name in out}

        return result

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
