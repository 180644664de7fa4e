"""OTP's supervisor API as typed functions on a Supervisor's ref, and a
handle that talks to one child through its restarts (with the lookup of a
child's running incarnation that it is built on).

Each function asks the supervisor and raises what it answers (the errors
in actors.supervision.errors); ``timeout`` bounds the wait for the answer
(a start waits for the child's on_start).
"""

from __future__ import annotations

import contextlib
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, cast

import pykka

from actors.supervision.errors import ChildNotRunning
from actors.supervision.messages import (
    AwaitChild,
    ChildCounts,
    ChildInfo,
    CountChildren,
    DeleteChild,
    RestartChild,
    StartChild,
    TellChild,
    TerminateChild,
    WhereIs,
    WhichChildren,
)
from actors.supervision.spec import ChildSpec

Ref = pykka.ActorRef[Any]
#: How long the functions wait for the supervisor's answer, by default.
TIMEOUT = 10.0


def start_child(
    supervisor: Ref, spec: ChildSpec, timeout: float = TIMEOUT
) -> Ref | None:
    """Add and start a child (None: its start declined, kept stopped)."""
    return cast("Ref | None", supervisor.ask(StartChild(spec), timeout=timeout))


def terminate_child(supervisor: Ref, child_id: str, timeout: float = TIMEOUT) -> None:
    """Stop a child, keeping its spec (a temporary child's goes)."""
    supervisor.ask(TerminateChild(child_id), timeout=timeout)


def restart_child(
    supervisor: Ref, child_id: str, timeout: float = TIMEOUT
) -> Ref | None:
    """Start a stopped child again (None: its start declined)."""
    return cast("Ref | None", supervisor.ask(RestartChild(child_id), timeout=timeout))


def delete_child(supervisor: Ref, child_id: str, timeout: float = TIMEOUT) -> None:
    """Forget a stopped child's spec."""
    supervisor.ask(DeleteChild(child_id), timeout=timeout)


def which_children(supervisor: Ref, timeout: float = TIMEOUT) -> tuple[ChildInfo, ...]:
    """Every child, in start order: id, ref or None, restart type, state."""
    return cast(
        "tuple[ChildInfo, ...]", supervisor.ask(WhichChildren(), timeout=timeout)
    )


def count_children(supervisor: Ref, timeout: float = TIMEOUT) -> ChildCounts:
    return cast(ChildCounts, supervisor.ask(CountChildren(), timeout=timeout))


class ChildLookup:
    """The running incarnation of one child of ``supervisor``, asked for
    (WhereIs) only when the one found last has died; None while it
    restarts, or once the supervisor is gone. ``wait`` waits for it."""

    def __init__(
        self, supervisor: pykka.ActorRef[Any], child_id: str, timeout: float = 10.0
    ) -> None:
        self._supervisor = supervisor
        self._child_id = child_id
        self._timeout = timeout
        self._ref: pykka.ActorRef[Any] | None = None

    def __call__(self) -> pykka.ActorRef[Any] | None:
        ref = self._ref
        if ref is not None and ref.is_alive():
            return ref
        try:
            ref = cast(
                "pykka.ActorRef[Any] | None",
                self._supervisor.ask(WhereIs(self._child_id), timeout=self._timeout),
            )
        except (pykka.ActorDeadError, pykka.Timeout):
            ref = None
        self._ref = ref
        return ref

    def wait(self, timeout: float) -> pykka.ActorRef[Any]:
        """The running incarnation, waiting up to ``timeout`` while the
        child restarts; ChildNotRunning if it is not back by then, or is
        stopped, unknown, or its supervisor is gone. Never a stale ref."""
        ref = self._ref
        if ref is not None and ref.is_alive():
            return ref
        self._ref = ref = await_child(self._supervisor, self._child_id, timeout)
        return ref


def await_child(
    supervisor: pykka.ActorRef[Any], child_id: str, timeout: float
) -> pykka.ActorRef[Any]:
    """``child_id``'s running ref, waiting up to ``timeout`` while it
    restarts (see ChildLookup.wait)."""
    deadline = time.monotonic() + timeout
    try:
        future = cast(
            "Future[pykka.ActorRef[Any]]",
            supervisor.ask(AwaitChild(child_id), timeout=timeout),
        )
    except pykka.ActorDeadError:
        raise ChildNotRunning(child_id, "its supervisor is gone") from None
    except pykka.Timeout:
        raise ChildNotRunning(
            child_id, f"its supervisor did not answer in {timeout} s"
        ) from None
    try:
        return future.result(max(deadline - time.monotonic(), 0.0))
    except FutureTimeout:  # (not the builtin TimeoutError before 3.11)
        future.cancel()
        raise ChildNotRunning(child_id, f"still restarting after {timeout} s") from None


class ChildHandle:
    """One child of a supervisor, reached whatever incarnation runs.

    ``tell`` never raises for a child that is down (it may wait for the
    supervisor's answer to where the child is): while the child runs it
    goes straight to it; while it restarts the
    supervisor keeps it (in order, up to the supervisor's ``down_mailbox``
    for that child, newer ones beyond dropped and counted) and tells it to
    the next incarnation; to a stopped or unknown child it is dropped and
    counted. A tell already in the inbox of an incarnation that dies is
    lost with it, as a message to a dead process is in OTP.

    ``ask`` waits for a running incarnation (up to ``timeout``; else
    ChildNotRunning, so never a stale ref) and asks it within what is left
    of ``timeout``: at most once, since not every message is safe to send
    twice. If that incarnation dies before it answers, the ask raises
    pykka's ActorDeadError.
    """

    def __init__(self, supervisor: Ref, child_id: str) -> None:
        self._supervisor = supervisor
        self.child_id = child_id
        self._lookup = ChildLookup(supervisor, child_id)
        self._ref: Ref | None = None

    def tell(self, message: Any) -> None:
        ref = self._ref
        if ref is None or not ref.is_alive():
            # (None while it restarts; a WhereIs is answered after any
            # TellChild sent before it, so this caller's order holds.)
            ref = self._ref = self._lookup()
        if ref is not None:
            try:
                ref.tell(message)
            except pykka.ActorDeadError:
                self._ref = None
            else:
                return
        with contextlib.suppress(pykka.ActorDeadError):  # no supervisor: lost
            self._supervisor.tell(TellChild(self.child_id, message))

    def current(self, timeout: float) -> Ref:
        """The running incarnation, waiting up to ``timeout`` while the
        child restarts; ChildNotRunning if it is not back by then."""
        self._ref = ref = self._lookup.wait(timeout)
        return ref

    def ask(self, message: Any, timeout: float = TIMEOUT) -> Any:
        deadline = time.monotonic() + timeout
        ref = self.current(timeout)
        return ref.ask(message, timeout=max(deadline - time.monotonic(), 0.0))
