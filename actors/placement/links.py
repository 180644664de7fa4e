"""Process placement: a board group in a spawned worker process.

The parent talks to the worker over a multiprocessing pipe, a pickled
batch of group messages per transmission (see wire.py). The worker ignores
SIGINT (the parent decides when it stops) and dies with its parent at
every stage: a death signal from the start, a check of its parent's pid
and its pipe closing in its loop (orphans.py); the spawner thread starts
it (spawner.py). It is a daemonic process, so multiprocessing's own exit
hook terminates one still running when the parent exits.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
from multiprocessing.connection import Connection
from typing import Protocol

from actors.placement.orphans import die_with_parent, parent_alive
from actors.placement.spawner import start_process
from actors.placement.wire import GroupFailed, GroupSpec, Ready, decode, encode
from actors.placement.worker import serve

#: How long a new worker may take to say it is ready.
START_TIMEOUT = 30.0


class GroupLost(RuntimeError):
    """The group at the other end of a link has gone, hung or broke it:
    raised by a link, and the reason a GroupActor fails (its supervisor
    then starts a new group)."""


class GroupLink(Protocol):
    """The parent's end of a link to a running group."""

    #: Where the group runs, for logs ("pid 1234", "ray actor ...").
    where: str
    #: The process id the group reported when it was ready.
    pid: int | None

    def send(self, blob: bytes) -> None:
        """Send a batch (raises GroupLost if the group has gone)."""

    def receive(self, timeout: float) -> bytes | None:
        """The next batch; None if none came within ``timeout`` (raises
        GroupLost if the group has gone)."""

    def abandon(self) -> None:
        """End a group that has hung, at once and from any thread: a send
        blocked on it then raises GroupLost. close() still frees the link."""

    def close(self, grace: float) -> None:
        """Wait up to ``grace`` seconds for the group to end, then kill
        it; free everything the link holds. Safe to call twice."""


def ready_pid(first: bytes, where: str) -> int:
    """The pid in a new group's first batch (its Ready); GroupLost saying
    why if the group failed to start instead."""
    messages = decode(first)
    for message in messages:
        if isinstance(message, GroupFailed):
            raise GroupLost(f"{where}: {message.reason}")
        if isinstance(message, Ready):
            return message.pid
    raise GroupLost(f"{where} did not start: {messages!r}")


def _worker_main(spec: GroupSpec, pipe: Connection, parent: int) -> None:
    die_with_parent(parent)  # first: the parent may die while we start
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def receive(timeout: float) -> bytes | None:
        if not parent_alive(parent):
            raise EOFError(f"the parent (pid {parent}) has gone")
        return pipe.recv_bytes() if pipe.poll(timeout) else None

    try:
        serve(spec, receive, pipe.send_bytes)
    except Exception as error:  # noqa: BLE001 - told to the parent
        # e.g. a board's Client could not start: say why before exiting
        with contextlib.suppress(OSError):
            pipe.send_bytes(encode([GroupFailed(f"the group crashed: {error!r}")]))
        raise SystemExit(1) from error  # the parent has been told
    finally:
        pipe.close()


class ProcessLink:
    """A group in a worker process started with the spawn method."""

    def __init__(self, spec: GroupSpec, start_timeout: float = START_TIMEOUT) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child_end = context.Pipe()
        self._process = context.Process(
            target=_worker_main,
            args=(spec, child_end, os.getpid()),
            name=f"spinnactors-{spec.name}",
            daemon=True,
        )
        try:
            start_process(self._process)
        finally:
            child_end.close()  # the worker has its own copy
        self.pid: int | None = self._process.pid
        self.where = f"pid {self.pid}"
        self._closed = False
        try:
            first = self.receive(start_timeout)
            if first is None:
                raise GroupLost(
                    f"worker {self.where} did not start within {start_timeout} s"
                )
            self.pid = ready_pid(first, f"worker {self.where}")
        except BaseException:
            self.close(0)
            raise

    def send(self, blob: bytes) -> None:
        try:
            self._pipe.send_bytes(blob)
        except (OSError, EOFError, ValueError) as error:
            raise GroupLost(f"worker {self.where}: {error!r}") from error

    def receive(self, timeout: float) -> bytes | None:
        try:
            if not self._pipe.poll(timeout):
                return None
            return self._pipe.recv_bytes()
        except (OSError, EOFError, ValueError) as error:
            code = self._process.exitcode
            raise GroupLost(
                f"worker {self.where} has gone (exit code {code})"
                if code is not None
                else f"worker {self.where}: {error!r}"
            ) from error

    @property
    def alive(self) -> bool:
        return not self._closed and self._process.is_alive()

    def abandon(self) -> None:
        if not self._closed:
            with contextlib.suppress(ValueError):  # closed meanwhile
                self._process.kill()

    def close(self, grace: float) -> None:
        if self._closed:
            return
        self._closed = True
        self._process.join(grace)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)
        self._pipe.close()
        if not self._process.is_alive():
            self._process.close()
