"""A supervisor's children's side: how a child reports its exit.

A child learns of its supervisor through the Watch it is started with; a
Supervised actor reports its exit through it, with the reason. Crash makes
one fail on purpose, for chaos tests. stop_and_join stops one and waits
for its thread; await_started waits for one's on_start (and says why it
failed); brutal_kill stops one without waiting.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import pykka
from pykka.messages import ProxyGetAttr

#: The thread each Supervised actor ran in, noted as it ends, for
#: stop_and_join (weak: an ended thread nobody joins is forgotten).
_threads: weakref.WeakValueDictionary[str, threading.Thread] = (
    weakref.WeakValueDictionary()
)
#: Why a Supervised actor's on_start failed, by actor urn, until
#: await_started asks (bounded: a start nobody awaits is forgotten).
_start_errors: OrderedDict[str, BaseException] = OrderedDict()
_start_errors_lock = threading.Lock()
_START_ERRORS_KEPT = 256
#: Set once a Supervised actor's on_start has returned or failed, by urn
#: (weak: kept as long as the actor): what await_started waits on.
_started_events: weakref.WeakValueDictionary[str, threading.Event] = (
    weakref.WeakValueDictionary()
)


class StartFailed(RuntimeError):
    """An actor's on_start failed (the cause says why) or did not finish
    in time."""


@dataclass(frozen=True)
class ChildExited:
    child_id: str
    incarnation: int
    #: None for a normal exit, else why it failed.
    reason: BaseException | None


@dataclass(frozen=True)
class Watch:
    """What a child needs to report to its supervisor: plain data."""

    supervisor: pykka.ActorRef[Any]
    child_id: str
    incarnation: int

    def exited(self, reason: BaseException | None) -> None:
        """Tell the supervisor this incarnation ended (None: normally)."""
        # The supervisor gone (ActorDeadError): nobody left to tell.
        with contextlib.suppress(pykka.ActorDeadError):
            self.supervisor.tell(ChildExited(self.child_id, self.incarnation, reason))


@dataclass(frozen=True)
class Crash:
    """Make a Supervised actor fail on purpose (for chaos tests)."""

    reason: str = "crash on request"


class CrashInjected(RuntimeError):
    """The failure a Crash message causes."""


class Supervised(pykka.ThreadingActor):
    """An actor that reports its exit to its supervisor, with the reason.

    Whatever ends it (a stop, a failure, a failed on_start, which pykka
    reports to no hook) is reported exactly once, from its own thread as
    it ends, so a supervisor never has to poll for it. Subclasses that
    override on_stop or on_failure call super() last.
    Its thread is a daemon: a script that never stops it still exits (and
    actors/lifetime.py stops what is still open at exit).
    """

    use_daemon_thread = True

    def __init__(self, *, watch: Watch | None = None) -> None:
        super().__init__()
        self.watch = watch
        self._exit_reported = False
        self._started = threading.Event()
        _started_events[self.actor_urn] = self._started

    def report_exit(self, reason: BaseException | None) -> None:
        """Tell the supervisor this actor is ending (None: normally); only
        the first report counts."""
        if self.watch is not None and not self._exit_reported:
            self._exit_reported = True
            self.watch.exited(reason)

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Crash):
            raise CrashInjected(message.reason)
        return super().on_receive(message)

    def on_stop(self) -> None:
        _threads[self.actor_urn] = threading.current_thread()
        self.report_exit(None)

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        _threads[self.actor_urn] = threading.current_thread()
        self.report_exit(exception_value or RuntimeError("failed"))

    def _actor_loop_setup(self) -> None:
        # pykka's setup, keeping why on_start failed for await_started and
        # the exit report (pykka itself calls no hook for it).
        try:
            self.on_start()
        except Exception as error:  # noqa: BLE001 - reported, as pykka does
            with _start_errors_lock:
                _start_errors[self.actor_urn] = error
                while len(_start_errors) > _START_ERRORS_KEPT:
                    _start_errors.popitem(last=False)
            self._handle_failure(*sys.exc_info())
            _threads[self.actor_urn] = threading.current_thread()
            self.report_exit(error)
        finally:
            self._started.set()

    def _actor_loop(self) -> None:
        # pykka's loop; then, if no hook reported why it ended (on_start
        # failed, or a hook itself raised), say so now.
        try:
            super()._actor_loop()
        finally:
            self.report_exit(RuntimeError("ended without a word"))


def stop_and_join(ref: pykka.ActorRef[Any], timeout: float) -> None:
    """Stop an actor and wait for its thread to end, both within
    ``timeout``: pykka's stop(block=True) returns once on_stop has run,
    while the thread is still winding down, and whoever closes a client
    promises that its threads have ended. An actor already dead is no
    error; one that does not stop in time raises pykka.Timeout. Only a
    Supervised actor's thread is known, and so waited for."""
    deadline = time.monotonic() + timeout
    with contextlib.suppress(pykka.ActorDeadError):
        ref.stop(block=True, timeout=timeout)
    thread = _threads.pop(ref.actor_urn, None)
    if thread is not None and thread is not threading.current_thread():
        thread.join(max(deadline - time.monotonic(), 0.0))


def await_started(ref: pykka.ActorRef[Any], timeout: float) -> None:
    """Return once ``ref``'s on_start has finished; raise StartFailed (with
    on_start's error as the cause, for a Supervised actor) if it failed or
    took more than ``timeout``. A Supervised actor says so itself, before
    it handles any message; another pykka actor is asked an attribute,
    answered once it handles its first message."""
    started = _started_events.get(ref.actor_urn)
    if started is None:
        _probe(ref, timeout)
        return
    if not started.wait(timeout):
        raise StartFailed(f"{ref} did not finish on_start in {timeout} s")
    with _start_errors_lock:
        error = _start_errors.pop(ref.actor_urn, None)
    if error is not None:
        raise StartFailed(f"{ref} failed in on_start: {error!r}") from error


def _probe(ref: pykka.ActorRef[Any], timeout: float) -> None:
    try:
        ref.ask(ProxyGetAttr(attr_path=("actor_urn",)), timeout=timeout)
    except pykka.ActorDeadError:
        raise StartFailed(f"{ref} ended before it had started") from None
    except pykka.Timeout:
        raise StartFailed(f"{ref} did not finish on_start in {timeout} s") from None


def brutal_kill(ref: pykka.ActorRef[Any]) -> None:
    """Stop an actor without waiting (OTP's brutal_kill, as near as threads
    allow): it accepts no message from now on, handles none after the one
    it may be busy with, and its thread then ends; on_stop runs only if it
    was idle. Nothing is joined: the caller goes on at once."""
    with contextlib.suppress(pykka.ActorDeadError):
        ref.stop(block=False)  # wakes it if idle
    ref.actor_stopped.set()
    pykka.ActorRegistry.unregister(ref)
