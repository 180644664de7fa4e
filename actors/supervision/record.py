"""What a supervisor keeps of each child, and its restart intensity.

A ChildRecord outlives the child's incarnations: its spec, the running
ref (if any), and, while the child restarts, who waits for it to be back
(AwaitChild) and what was told to it (TellChild), handed over in order
once it is back. Only the supervisor's thread touches a record.
"""

from __future__ import annotations

import contextlib
from collections import deque
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import Any

import pykka

from actors.supervision.errors import ChildNotRunning
from actors.supervision.messages import ChildInfo, ChildState
from actors.supervision.spec import ChildSpec


@dataclass
class ChildRecord:
    spec: ChildSpec
    ref: pykka.ActorRef[Any] | None = None
    state: ChildState = "stopped"
    incarnation: int = 0
    started_at: float = 0.0
    failures: int = 0
    #: Stopped on purpose: its exit report is expected, not a failure.
    stopping: bool = False
    #: The last incarnation whose exit was dealt with.
    handled: int = 0
    #: Its own restart intensity, when the supervisor counts per child.
    intensity: Intensity | None = None
    #: Its cleanup has run since it last started.
    cleaned: bool = False
    #: Ever a Supervisor (for count_children).
    supervisor: bool = False
    #: Futures of AwaitChild, done once it runs again.
    waiters: list[Future[pykka.ActorRef[Any]]] = field(default_factory=list)
    #: TellChild messages kept while it restarts.
    mailbox: deque[Any] = field(default_factory=deque)

    def info(self) -> ChildInfo:
        """What which_children says of it."""
        return ChildInfo(
            self.spec.id,
            self.ref if self.state == "running" else None,
            self.spec.restart,
            self.state,
            self.spec.significant,
        )

    def await_running(self) -> Future[pykka.ActorRef[Any]]:
        """A Future of its running ref: done now if it runs, once it is
        back if it restarts; ChildNotRunning if it is stopped."""
        future: Future[pykka.ActorRef[Any]] = Future()
        if self.state == "running" and self.ref is not None and self.ref.is_alive():
            future.set_result(self.ref)
        elif self.state in ("running", "restarting"):
            # (running but dead: its exit report is on its way)
            self.waiters = [w for w in self.waiters if not w.cancelled()]
            self.waiters.append(future)
        else:
            raise ChildNotRunning(self.spec.id, "it is stopped")
        return future

    def tell(self, message: Any, down_mailbox: int) -> str | None:
        """Tell it ``message`` now if it runs, or keep it (up to
        ``down_mailbox``) until it is back; why not, if it was dropped."""
        if self.state == "running" and self.ref is not None:
            try:
                self.ref.tell(message)
            except pykka.ActorDeadError:
                pass  # it has just died (its report is on its way): keep it
            else:
                return None
        if self.state in ("running", "restarting"):
            if len(self.mailbox) < down_mailbox:
                self.mailbox.append(message)
                return None
            return "its mailbox while down is full"
        return "it is stopped"

    def back(self, ref: pykka.ActorRef[Any]) -> int:
        """It runs again as ``ref``: answer who waited, and tell it what was
        kept, in order; how many of those were lost (it died again)."""
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            # (one whose caller gave up may be cancelled at any moment)
            with contextlib.suppress(InvalidStateError):
                waiter.set_result(ref)
        lost = 0
        mailbox, self.mailbox = self.mailbox, deque()
        for kept in mailbox:
            try:
                ref.tell(kept)
            except pykka.ActorDeadError:
                lost += 1
        return lost

    def fail_waiters(self, why: str) -> None:
        """It will not be back (``why``): tell whoever waits for it."""
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            with contextlib.suppress(InvalidStateError):
                waiter.set_exception(ChildNotRunning(self.spec.id, why))

    def drop_mailbox(self) -> int:
        """Forget what was kept for it; how many."""
        dropped = len(self.mailbox)
        self.mailbox.clear()
        return dropped


@dataclass
class Intensity:
    max_restarts: int
    period: float
    times: deque[float] = field(default_factory=deque)

    def exceeded_after(self, now: float) -> bool:
        """Count a restart at ``now``; True if that is one too many."""
        self.times.append(now)
        while self.times and self.times[0] <= now - self.period:
            self.times.popleft()
        return len(self.times) > self.max_restarts
