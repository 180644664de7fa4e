"""The messages a Supervisor understands, and what it answers (as pykka
keeps its own in messages.py): plain frozen dataclasses.

The public ones are OTP's supervisor calls (each also a function in api.py,
which is how most callers should send them). Those named with an
underscore the supervisor sends itself, from its timers and failed
restarts, through its own inbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import pykka

from actors.supervision.spec import ChildSpec, Restart

#: What which_children says of a child: running; restarting (failed, to be
#: started again: backing off, or its start failed and is to be retried);
#: stopped (terminated, declined to start, or a transient child that ended
#: normally: kept as a spec until restart_child or delete_child).
ChildState = Literal["running", "restarting", "stopped"]

# -- asked by a supervisor's users, and its answers -------------------------------


@dataclass(frozen=True)
class WhereIs:
    """Ask for the ActorRef of a running child (None while it restarts)."""

    child_id: str


@dataclass(frozen=True)
class AwaitChild:
    """Ask for a Future of the child's running ref: done at once if it
    runs, when it is back if it restarts; ChildNotRunning (raised, or set
    on the Future) if it is stopped, unknown or will not come back."""

    child_id: str


@dataclass(frozen=True)
class TellChild:
    """Tell ``message`` to a child: now if it runs; kept in order while it
    restarts (at most ``down_mailbox`` a child, the newest beyond dropped)
    and told once it is back; dropped if it is stopped or unknown. Drops
    are counted (SupervisorStats.dropped) and logged."""

    child_id: str
    message: Any


@dataclass(frozen=True)
class StartChild:
    """Add and start a child after the ones already there; answers its ref
    (None if its start declined: it is kept, stopped). A failed start
    raises ChildStartFailed and the spec is not kept (OTP's start_child)."""

    spec: ChildSpec


@dataclass(frozen=True)
class StopChild:
    """Stop a child for good (within its shutdown time), run its cleanup
    and forget it, as OTP's terminate_child and delete_child; answers
    whether there was such a child."""

    child_id: str


@dataclass(frozen=True)
class TerminateChild:
    """Stop a child and keep its spec, stopped (a temporary child's spec
    is deleted), as OTP's terminate_child; ChildNotFound if none."""

    child_id: str


@dataclass(frozen=True)
class RestartChild:
    """Start a stopped child again from its spec (OTP's restart_child):
    answers its ref (None if it declined); ChildRunning if it runs or
    restarts, ChildNotFound if none, ChildStartFailed if its start fails
    (it stays stopped)."""

    child_id: str


@dataclass(frozen=True)
class DeleteChild:
    """Forget a stopped child's spec (OTP's delete_child); ChildRunning if
    it runs or restarts, ChildNotFound if none."""

    child_id: str


@dataclass(frozen=True)
class WhichChildren:
    """Ask for a ChildInfo per child, in start order (OTP's which_children)."""


@dataclass(frozen=True)
class CountChildren:
    """Ask for ChildCounts (OTP's count_children)."""


@dataclass(frozen=True)
class ChildInfo:
    id: str
    #: The running incarnation; None unless ``state`` is running.
    ref: pykka.ActorRef[Any] | None
    restart: Restart
    state: ChildState
    significant: bool = False


@dataclass(frozen=True)
class ChildCounts:
    #: Children the supervisor knows of (running or not).
    specs: int
    #: Children running now.
    active: int
    #: Children that are Supervisors / other actors (running or last run).
    supervisors: int
    workers: int


@dataclass(frozen=True)
class GetSupervisorStats:
    pass


@dataclass(frozen=True)
class SupervisorStats:
    children: tuple[str, ...]
    running: tuple[str, ...]
    restarts: int
    gave_up: bool
    #: The name it was started with.
    name: str = ""
    #: TellChild messages dropped: a child's down mailbox full, or a child
    #: stopped or unknown.
    dropped: int = 0


# -- sent by the supervisor to itself -------------------------------------------


@dataclass(frozen=True)
class _RestartDue:
    """A restart's backoff is over: restart the child, if it is still
    that failed incarnation."""

    child_id: str
    incarnation: int


@dataclass(frozen=True)
class _StartRetry:
    """A restart's start failed: count it and try again, through the inbox
    (OTP's try_again_restart) so that other messages are not held up."""

    child_id: str
    incarnation: int
    reason: BaseException


@dataclass(frozen=True)
class _CheckLiveness:
    """Time to look for children that died without a word."""
