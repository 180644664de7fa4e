"""A board group's working side, in whichever process it is placed.

A group runs wherever it is placed (in-process, a spawned worker process,
a Ray actor on another host). Its working side is a GroupServer: one
supervised Client per board, and a listener per listening port, talking
to the parent only in the plain data of wire.py. Its log records go to
the parent too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import replace
from typing import Any

from actors.answers import Missing, answer_by, ask_now
from actors.board.client import Client
from actors.board.health import BoardHealth
from actors.compat.connection_listener import ConnectionListener
from actors.connection.messages import ConnectionStats
from actors.placement.wire import (
    HEARTBEAT,
    LISTEN_KINDS,
    Cancel,
    GetGroupStats,
    GroupFailed,
    GroupSpec,
    GroupStats,
    Heard,
    Heartbeat,
    Listen,
    Listening,
    LogRecords,
    Outcomes,
    Post,
    Ready,
    Stop,
    Unlisten,
    _merged,
    decode,
    encode,
    encode_outbound,
)
from actors.protocol.jobs import Job, Outcome
from actors.ratelimit.remote import LeaseGrant, RemoteLimiter
from actors.supervision.child import stop_and_join
from actors.supervision.messages import GetSupervisorStats
from actors.supervision.supervisor import Supervisor
from messages.errors import InvalidArgumentError
from transport.logs import get_logger

log = get_logger(__name__)

#: How long a health check waits for the group's supervisor (busy with a
#: restart, it is left out rather than holding up the parent's check).
SUPERVISION_TIMEOUT = 0.5
#: How long a health check waits for the group's boards, in all, when the
#: parent did not say (its Machine.health gives a share of its own).
HEALTH_TIMEOUT = 1.0

# -- to the group ---------------------------------------------------------------


# -- from the group ---------------------------------------------------------------


# -- the working side -------------------------------------------------------------


class Outbox:
    """Messages on their way to the parent; taken a whole batch at a time,
    so many outcomes cross in one transmission."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def put(self, message: Any) -> None:
        self._queue.put(message)

    def take(self, timeout: float) -> list[Any]:
        """Everything waiting; waits up to ``timeout`` for a first one."""
        try:
            batch = [self._queue.get(timeout=timeout)]
        except queue.Empty:
            return []
        while True:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                return batch


class _Forward:
    """An outcome sink that sends outcomes to the parent."""

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox

    def put(self, outcomes: list[Outcome], /) -> None:
        self._outbox.put(Outcomes(outcomes))


class GroupServer:
    """A group's working side: a supervised Client per board, listeners,
    and an Outbox of what goes back. ``handle`` takes the parent's
    messages; it returns False once told to Stop."""

    def __init__(self, spec: GroupSpec, outbox: Outbox) -> None:
        self.spec = spec
        self.outbox = outbox
        self._sink = _Forward(outbox)
        self._log = log.bind(group=spec.name, pid=os.getpid())
        self._clients: dict[Hashable, Client] = {}
        self._listeners: dict[int, ConnectionListener[Any]] = {}
        self._limiter = RemoteLimiter(outbox.put) if spec.limited else None
        options = dict(spec.options)
        # One supervisor (one thread) for the group's connection actors,
        # each restarted and given up on alone, as with one per board.
        self._supervisor = Supervisor.start(
            [],
            per_child=True,
            name=f"group-{spec.name}",
            **{
                key: options.pop(key)
                for key in ("max_restarts", "period", "backoff")
                if key in options
            },
        )
        try:
            for board in spec.boards:
                self._clients[board.name] = Client(
                    board.host,
                    board.port,
                    limiter=self._limiter,
                    supervisor=self._supervisor,
                    **options,
                )
        except BaseException:
            self.close()
            raise
        self._log.info("group.started", boards=len(self._clients))

    def handle(self, message: Any) -> bool:
        if isinstance(message, Post):
            for board, span in message.fenced:
                if board in self._clients:
                    self._clients[board].fence(span)
            self._post(message.entries)
        elif isinstance(message, Cancel):
            by_board: dict[Hashable, list[Hashable]] = {}
            for board, key in message.entries:
                by_board.setdefault(board, []).append(key)
            for board, keys in by_board.items():
                if board in self._clients:
                    self._clients[board].cancel(self._sink, keys)
        elif isinstance(message, GetGroupStats):
            answer = self._health(message.timeout) if message.health else self._stats()
            self.outbox.put(GroupStats(message.ticket, answer))
        elif isinstance(message, Listen):
            self._listen(message)
        elif isinstance(message, Unlisten):
            listener = self._listeners.pop(message.listen_id, None)
            if listener is not None:
                listener.close()
        elif isinstance(message, LeaseGrant):
            if self._limiter is not None:
                self._limiter.answer(message)
        elif isinstance(message, Stop):
            return False
        else:
            self._log.warning("group.unknown_message", kind=type(message).__name__)
        return True

    def failure(self) -> str | None:
        """Why the group cannot go on, if it cannot."""
        for name, client in self._clients.items():
            if client.closed:
                return f"board {name!r}: its connection's supervisor gave up"
        return None

    def close(self) -> None:
        if self._limiter is not None:
            self._limiter.close()  # no connection waits on a lease now
        for listener in self._listeners.values():
            listener.close()
        self._listeners.clear()
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        stop_and_join(self._supervisor, 60)

    def _post(self, entries: list[tuple[Hashable, Job]]) -> None:
        by_board: dict[Hashable, list[Job]] = {}
        unknown: list[Outcome] = []
        for board, job in entries:
            if board in self._clients:
                by_board.setdefault(board, []).append(job)
            else:
                unknown.append(
                    Outcome(
                        job.key,
                        error=InvalidArgumentError(
                            "board", board, f"is not in group {self.spec.name!r}"
                        ),
                    )
                )
        if unknown:
            self.outbox.put(Outcomes(unknown))
        for board, jobs in by_board.items():
            client = self._clients[board]
            try:
                client.post(jobs, self._sink)
            except Exception as error:  # noqa: BLE001 - the client is closed
                self.outbox.put(
                    Outcomes([Outcome(job.key, error=error) for job in jobs])
                )

    def _stats(self) -> dict[Hashable, ConnectionStats | str]:
        stats: dict[Hashable, ConnectionStats | str] = {}
        for name, client in self._clients.items():
            try:
                stats[name] = client.stats()
            except Exception as error:  # noqa: BLE001
                stats[name] = f"no stats: {error}"
        return stats

    def _health(self, timeout: float | None) -> dict[Hashable, BoardHealth]:
        """Each board's health, with the group's supervision (one ask for
        all: the parent's metrics cannot ask this process's supervisors).
        Every board and the supervisor are asked at once and waited for
        together, up to ``timeout`` (HEALTH_TIMEOUT if None) in all: one
        stuck connection actor is unresponsive alone, and the answer is
        back before the parent's own check gives up on the group."""
        budget = HEALTH_TIMEOUT if timeout is None else timeout
        deadline = time.monotonic() + budget
        asked = ask_now(self._supervisor, GetSupervisorStats())
        pending = {name: c.ask_health() for name, c in self._clients.items()}
        wait = min(deadline, time.monotonic() + SUPERVISION_TIMEOUT)
        answer = answer_by(asked, wait)
        supervision = None if isinstance(answer, Missing) else answer
        return {
            name: replace(health.result(deadline), supervision=supervision)
            for name, health in pending.items()
        }

    def _listen(self, message: Listen) -> None:
        opener = LISTEN_KINDS.get(message.kind)
        if opener is None:
            self.outbox.put(
                Listening(message.listen_id, None, f"unknown kind {message.kind!r}")
            )
            return
        try:
            connection = opener(
                local_host=message.local_host, local_port=message.local_port
            )
        except OSError as error:
            self.outbox.put(Listening(message.listen_id, None, str(error)))
            return
        listener: ConnectionListener[Any] = ConnectionListener(
            connection, n_processes=1
        )
        listen_id, outbox = message.listen_id, self.outbox
        listener.add_callback(lambda heard: outbox.put(Heard(listen_id, [heard])))
        listener.start()
        self._listeners[listen_id] = listener
        host, port = connection.local_ip_address, connection.local_port
        self.outbox.put(Listening(listen_id, (host, port)))


def serve(
    spec: GroupSpec,
    receive: Callable[[float], bytes | None],
    send: Callable[[bytes], None],
    stopping: threading.Event | None = None,
) -> None:
    """Run a group until told to Stop or its parent is gone: messages come
    from ``receive`` (None when it times out; EOFError/OSError when the
    parent has gone) and batches go back through ``send``, with a
    Heartbeat whenever there is nothing else to say for HEARTBEAT seconds.
    """
    outbox = Outbox()
    logs = _ForwardLogs(outbox, spec.log_level)
    loggers = [logging.getLogger(name) for name in LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(logs)
        if logger.getEffectiveLevel() > spec.log_level:
            logger.setLevel(spec.log_level)
    try:
        _serve(spec, outbox, receive, send, stopping or threading.Event())
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(logs)
            logger.setLevel(level)


def _serve(
    spec: GroupSpec,
    outbox: Outbox,
    receive: Callable[[float], bytes | None],
    send: Callable[[bytes], None],
    stopping: threading.Event,
) -> None:
    server = GroupServer(spec, outbox)
    try:
        send(encode([Ready(os.getpid())]))
    except BaseException:
        server.close()  # the parent has gone already: close what started
        raise

    def send_loop() -> None:
        while not stopping.is_set():
            batch = _merged(outbox.take(HEARTBEAT))
            failure = server.failure()
            if failure is not None:
                batch.append(GroupFailed(failure))
            try:
                send(encode_outbound(batch or [Heartbeat()]))
            except (OSError, EOFError, ValueError):
                stopping.set()  # the parent has gone
                return
            if failure is not None:
                stopping.set()
                return

    sender = threading.Thread(target=send_loop, name="group-sender", daemon=True)
    sender.start()
    try:
        while not stopping.is_set():
            try:
                blob = receive(HEARTBEAT)
            except (OSError, EOFError):
                break
            if blob is None:
                continue
            if not all(server.handle(message) for message in decode(blob)):
                break
    finally:
        server.close()  # open jobs end with ShutDown, into the outbox
        stopping.set()
        sender.join()
        last = outbox.take(0)
        if last:
            with contextlib.suppress(OSError, EOFError, ValueError):
                send(encode_outbound(_merged(last)))


#: The loggers whose records a group sends back to its parent.
LOGGERS = ("actors", "transport")
#: The attribute a record re-emitted in the parent carries: where it came from.
FORWARDED = "group_worker"


class _ForwardLogs(logging.Handler):
    """Sends the group's log records to the parent, whose own handlers
    (and structlog renderers) then see them as if logged there."""

    def __init__(self, outbox: Outbox, level: int) -> None:
        super().__init__(level)
        self._outbox = outbox

    def emit(self, record: logging.LogRecord) -> None:
        if hasattr(record, FORWARDED):
            return  # one the parent re-emitted (a group run in-process)
        self._outbox.put(LogRecords([plain_record(record)]))


def plain_record(record: logging.LogRecord) -> dict[str, Any]:
    """A record's attributes as plain data (what will not pickle, as text)."""
    out: dict[str, Any] = {}
    for key, value in record.__dict__.items():
        if value is None or isinstance(value, (str, int, float, bool)):
            out[key] = value
        elif key not in ("args", "exc_info"):
            out[key] = repr(value)
    out["msg"], out["args"] = record.getMessage(), None
    if record.exc_info and not record.exc_text:
        out["exc_text"] = logging.Formatter().formatException(record.exc_info)
    return out
