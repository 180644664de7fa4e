"""Supervision after Erlang/OTP: restart what fails, give up when it keeps
failing, and let the parent decide.

A child spec is data: an id, a factory that starts the actor, a restart
type and a shutdown timeout. ``permanent`` children are always restarted,
``transient`` ones only after an abnormal exit, ``temporary`` ones never.
More than ``max_restarts`` restarts within ``period`` seconds (OTP's
default: 1 in 5) makes the supervisor stop all its children, in reverse
order, and fail itself, which its own parent sees as a child failing.
Children start one after another (each one's on_start finished before the
next starts) and stop in reverse order, each given its shutdown timeout.
A start that fails is a failure like any other: retried under the restart
intensity, past it the supervisor fails with the start error as cause;
while the supervisor itself starts, one failed start fails the supervisor.
Optional backoff delays restarts (as Akka's backoff supervisor): from a
minimum doubling to a maximum, with random jitter, and reset once a child
has run cleanly for a while. Significant children (OTP 24) may end the
supervisor when their work is done, as ``auto_shutdown`` says.

A child learns of its supervisor through the Watch it is started with; a
Supervised actor reports its exit through it (with the reason), whatever
ended it. Only children that are not Supervised are polled for liveness,
so a supervisor of Supervised children sleeps until something happens.

What a supervisor is asked, and answers, is in messages.py; the functions
that ask it are in api.py. What it keeps of each child (waiters, the
mailbox kept while it restarts) is a ChildRecord (record.py); its backoff
timers and liveness tick are in timers.py. This module keeps the rules:
when to start, stop, restart, give up (a little over 600 lines: the OTP
rules read best together, case beside case).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Literal

import pykka

from actors.supervision.child import (
    ChildExited,
    CrashInjected,
    StartFailed,
    Supervised,
    Watch,
    await_started,
    brutal_kill,
    stop_and_join,
)
from actors.supervision.errors import (
    ChildNotFound,
    ChildRunning,
    ChildStartFailed,
)
from actors.supervision.messages import (
    AwaitChild,
    ChildCounts,
    CountChildren,
    DeleteChild,
    GetSupervisorStats,
    RestartChild,
    StartChild,
    StopChild,
    SupervisorStats,
    TellChild,
    TerminateChild,
    WhereIs,
    WhichChildren,
    _CheckLiveness,
    _RestartDue,
    _StartRetry,
)
from actors.supervision.record import ChildRecord, Intensity
from actors.supervision.spec import BRUTAL_KILL, IGNORE, Backoff, ChildSpec
from actors.supervision.timers import Timers
from messages.errors import InvalidArgumentError
from transport.logs import get_logger

log = get_logger(__name__)

Strategy = Literal["one_for_one", "one_for_all", "rest_for_one"]
#: When a supervisor ends itself because significant children ended (OTP 24).
AutoShutdown = Literal["never", "any_significant", "all_significant"]
#: How often the supervisor checks that its children are alive, for
#: children that are not Supervised (a Supervised child reports its own
#: end, so a supervisor of only those never wakes up on its own).
CHILD_LIVENESS_CHECK = 0.05
#: Tells for one child kept while it restarts (TellChild), by default.
DOWN_MAILBOX = 1000


class SupervisorGaveUp(RuntimeError):
    """Children kept failing beyond the restart intensity (the cause is the
    last failure, e.g. a start error)."""


# -- the supervisor -----------------------------------------------------------------


class Supervisor(Supervised):
    """Starts children from specs and keeps them running.

    Start it with ``Supervisor.start(specs, strategy=..., ...)``; nest it by
    giving a parent supervisor a ChildSpec whose start passes ``watch``.
    ``gave_up`` is set (and the actor fails) when the restart intensity is
    exceeded. With ``per_child`` (one_for_one only) each child has its own
    intensity instead, and one that exceeds it is given up on alone: it is
    stopped, cleaned up and forgotten while its siblings carry on, as if
    each had a supervisor of its own, at the cost of one thread for all.
    ``auto_shutdown`` (with significant children) ends the supervisor
    normally once any / all of its significant children have ended on
    their own. ``down_mailbox`` bounds the TellChild messages kept for a
    child while it restarts.
    """

    def __init__(
        self,
        specs: Sequence[ChildSpec] = (),
        *,
        strategy: Strategy = "one_for_one",
        max_restarts: int = 1,
        period: float = 5.0,
        backoff: Backoff | None = None,
        name: str = "supervisor",
        watch: Watch | None = None,
        seed: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        per_child: bool = False,
        auto_shutdown: AutoShutdown = "never",
        down_mailbox: int = DOWN_MAILBOX,
    ) -> None:
        super().__init__(watch=watch)
        if per_child and strategy != "one_for_one":
            raise InvalidArgumentError(
                "per_child", per_child, "needs the one_for_one strategy"
            )
        if strategy not in ("one_for_one", "one_for_all", "rest_for_one"):
            raise InvalidArgumentError(
                "strategy", strategy, "must be one_for_one, one_for_all or rest_for_one"
            )
        if max_restarts < 0 or period <= 0:
            raise InvalidArgumentError(
                "max_restarts/period",
                (max_restarts, period),
                "need max_restarts >= 0 and period > 0",
            )
        if auto_shutdown not in ("never", "any_significant", "all_significant"):
            raise InvalidArgumentError(
                "auto_shutdown",
                auto_shutdown,
                "must be never, any_significant or all_significant",
            )
        if down_mailbox < 0:
            raise InvalidArgumentError("down_mailbox", down_mailbox, "must be >= 0")
        ids = [spec.id for spec in specs]
        if len(set(ids)) != len(ids):
            raise InvalidArgumentError("specs", ids, "child ids must differ")
        self._auto_shutdown = auto_shutdown
        for spec in specs:
            self._check_significant(spec)
        self._children = [ChildRecord(spec) for spec in specs]
        self._by_id = {child.spec.id: child for child in self._children}
        self._strategy = strategy
        self._intensity = Intensity(max_restarts, period)
        #: Count restarts per child and give up on a child alone (as Akka's
        #: OneForOneStrategy does), instead of on every child at once: for
        #: many independent children (a group's boards) under one thread.
        self._per_child = per_child
        self._backoff = backoff
        self._rng = random.Random(seed)
        self._clock = clock
        self._name = name
        self._down_mailbox = down_mailbox
        self._restarts = 0
        self._dropped = 0
        self._closing = False
        self.gave_up = threading.Event()
        self._log = log.bind(actor="supervisor", supervisor=name)
        self._timers = Timers(self.actor_ref, name)

    def _check_significant(self, spec: ChildSpec) -> None:
        if spec.significant and self._auto_shutdown == "never":
            # OTP refuses these too: a significant child would mean nothing.
            raise InvalidArgumentError(
                "significant", spec.id, "needs auto_shutdown other than never"
            )

    # -- pykka hooks ---------------------------------------------------------

    def on_start(self) -> None:
        for child in self._children:
            try:
                self._start(child)
            except ChildStartFailed as error:
                # pykka calls neither on_failure nor on_stop for a failed
                # start: stop what did start, in reverse, and tell the parent
                # which child failed and why.
                self._log.error(
                    "supervisor.start_failed",
                    child=child.spec.id,
                    error=repr(error.reason),
                )
                self._closing = True
                self._stop_children(self._children)
                for started in self._children:
                    started.fail_waiters("its supervisor failed to start")
                self.report_exit(error)
                raise

    def on_receive(self, message: Any) -> Any:
        match message:
            case ChildExited(child_id, incarnation, reason):
                self._exited(child_id, incarnation, reason)
            case _RestartDue(child_id, incarnation):
                if (child := self._still_restarting(child_id, incarnation)) is not None:
                    self._restart_after_failure(child)
            case _StartRetry(child_id, incarnation, reason):
                if (child := self._still_restarting(child_id, incarnation)) is not None:
                    self._failed(child, reason)
            case _CheckLiveness():
                self._check_liveness()
            case TellChild():
                self._deliver(message)
            case WhereIs(child_id):
                child = self._by_id.get(child_id)
                return None if child is None or child.state != "running" else child.ref
            case AwaitChild(child_id):
                return self._get(child_id).await_running()
            case StopChild(child_id):
                return self._stop_for_good(child_id)
            case TerminateChild(child_id):
                self._terminate(self._get(child_id))
            case RestartChild(child_id):
                return self._restart_child(self._get(child_id))
            case DeleteChild(child_id):
                self._delete(self._get(child_id))
            case StartChild(spec):
                return self._start_child(spec)
            case WhichChildren():
                return tuple(child.info() for child in self._children)
            case CountChildren():
                return self._count_children()
            case GetSupervisorStats():
                return self._stats()
            case _:
                return super().on_receive(message)
        return None

    def on_stop(self) -> None:
        self._end()
        super().on_stop()

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._end()
        super().on_failure(exception_type, exception_value, traceback)

    def _end(self) -> None:
        self._closing = True
        self._timers.cancel()
        self._stop_children(self._children)
        for child in self._children:
            child.fail_waiters("its supervisor has stopped")

    # -- the API's work ------------------------------------------------------------

    def _get(self, child_id: str) -> ChildRecord:
        child = self._by_id.get(child_id)
        if child is None:
            raise ChildNotFound(child_id)
        return child

    def _still_restarting(self, child_id: str, incarnation: int) -> ChildRecord | None:
        """The child a timer or a retry was for, if it is still that
        incarnation, restarting, and the supervisor is not closing (else
        the message is old news)."""
        child = self._by_id.get(child_id)
        if (
            child is not None
            and child.incarnation == incarnation
            and child.state == "restarting"
            and not self._closing
        ):
            return child
        return None

    def _stop_for_good(self, child_id: str) -> bool:
        child = self._by_id.get(child_id)
        if child is None:
            return False
        self._stop_child(child)
        self._remove(child, "it was stopped")
        return True

    def _delete(self, child: ChildRecord) -> None:
        if child.state != "stopped":
            raise ChildRunning(child.spec.id, child.state)
        self._remove(child, "it was deleted")

    def _count_children(self) -> ChildCounts:
        supervisors = sum(1 for c in self._children if c.supervisor)
        return ChildCounts(
            specs=len(self._children),
            active=sum(1 for c in self._children if c.state == "running"),
            supervisors=supervisors,
            workers=len(self._children) - supervisors,
        )

    def _stats(self) -> SupervisorStats:
        return SupervisorStats(
            children=tuple(c.spec.id for c in self._children),
            running=tuple(
                c.spec.id
                for c in self._children
                if c.state == "running" and c.ref is not None and c.ref.is_alive()
            ),
            restarts=self._restarts,
            gave_up=self.gave_up.is_set(),
            name=self._name,
            dropped=self._dropped,
        )

    def _start_child(self, spec: ChildSpec) -> pykka.ActorRef[Any] | None:
        if spec.id in self._by_id:
            raise InvalidArgumentError("spec", spec.id, "a child with this id exists")
        self._check_significant(spec)
        child = ChildRecord(spec)
        self._children.append(child)
        self._by_id[spec.id] = child
        try:
            self._start(child)
        except ChildStartFailed:
            self._children.remove(child)
            del self._by_id[spec.id]
            raise
        return child.ref

    def _terminate(self, child: ChildRecord) -> None:
        self._stop_child(child)
        child.state = "stopped"
        child.fail_waiters("it was terminated")
        self._clean_up(child)
        if child.spec.restart == "temporary":  # OTP: its spec goes too
            self._remove(child, "it was terminated")

    def _restart_child(self, child: ChildRecord) -> pykka.ActorRef[Any] | None:
        if child.state != "stopped":
            raise ChildRunning(child.spec.id, child.state)
        self._start(child)
        return child.ref

    def _deliver(self, message: TellChild) -> None:
        child = self._by_id.get(message.child_id)
        why = (
            "it is not there"
            if child is None
            else child.tell(message.message, self._down_mailbox)
        )
        if why is not None:
            self._dropped += 1
            self._log.warning("actor.message_dropped", child=message.child_id, why=why)

    # -- inside ------------------------------------------------------------------

    def _start(self, child: ChildRecord) -> None:
        """Start one child and wait for its on_start (as its spec says);
        ChildStartFailed if that fails. A declined start leaves it
        stopped."""
        child.incarnation += 1
        child.stopping = False
        child.cleaned = False
        spec = child.spec
        watch = Watch(self.actor_ref, spec.id, child.incarnation)
        child.started_at = self._clock()
        try:
            started = spec.start(watch)
        except Exception as error:
            child.handled = child.incarnation
            child.ref = None
            raise ChildStartFailed(spec.id, error) from error
        if started == IGNORE:
            child.handled = child.incarnation
            child.ref = None
            child.state = "stopped"
            child.fail_waiters("its start declined (ignore)")
            self._log.info("actor.ignored", child=spec.id)
            return
        if not isinstance(started, pykka.ActorRef):
            child.handled = child.incarnation
            child.ref = None
            error = TypeError(f"start returned {started!r}, not an ActorRef or IGNORE")
            raise ChildStartFailed(spec.id, error) from error
        ref = started
        child.ref = ref
        child.supervisor = issubclass(ref.actor_class, Supervisor)
        if spec.start_timeout is not None:
            try:
                await_started(ref, spec.start_timeout)
            except StartFailed as error:
                child.handled = child.incarnation
                child.ref = None
                child.stopping = True
                if ref.is_alive():  # it overran: not waited for further
                    brutal_kill(ref)
                reason = error.__cause__ or error
                raise ChildStartFailed(spec.id, reason) from reason
        child.state = "running"
        if not issubclass(ref.actor_class, Supervised):
            self._timers.tick(CHILD_LIVENESS_CHECK, _CheckLiveness())
        self._log.debug("actor.start", child=spec.id, incarnation=child.incarnation)
        self._dropped += child.back(ref)

    def _stop_child(self, child: ChildRecord) -> None:
        """Stop one child within its shutdown time, or give up on it."""
        ref, child.ref = child.ref, None
        child.stopping = True
        if ref is None or not ref.is_alive():
            return
        shutdown = child.spec.shutdown
        if shutdown == BRUTAL_KILL:
            brutal_kill(ref)
            return
        try:
            stop_and_join(ref, shutdown)
        except pykka.Timeout:
            # pykka cannot kill a thread: the child is abandoned. It gets no
            # more messages (unregistered), its late exit report is ignored,
            # and its thread ends when its on_stop returns; a Supervised
            # child's thread is a daemon, so it cannot hold the interpreter.
            daemon = getattr(ref.actor_class, "use_daemon_thread", True)
            self._log.error(
                "actor.kill", child=child.spec.id, shutdown=shutdown, daemon=daemon
            )
            pykka.ActorRegistry.unregister(ref)

    def _stop_children(self, children: Sequence[ChildRecord]) -> None:
        for child in reversed(children):
            self._stop_child(child)
            if self._closing:
                child.state = "stopped"
                self._clean_up(child)

    def _remove(self, child: ChildRecord, why: str) -> None:
        """Forget a child (its cleanup run if not yet)."""
        if child in self._children:
            self._children.remove(child)
        self._by_id.pop(child.spec.id, None)
        child.state = "stopped"
        child.fail_waiters(why)
        self._dropped += child.drop_mailbox()
        self._clean_up(child)

    def _exited(
        self, child_id: str, incarnation: int, reason: BaseException | None
    ) -> None:
        child = self._by_id.get(child_id)
        if (
            child is None
            or child.incarnation != incarnation
            or child.handled == incarnation
            or child.stopping
            or self._closing
        ):
            return  # old news, already dealt with, or a stop we asked for
        child.handled = incarnation
        abnormal = reason is not None
        child.ref = None
        # (an injected crash was asked for: worth a word, not an error)
        loud = abnormal and not isinstance(reason, CrashInjected)
        self._log.log(
            40 if loud else 20, "actor.exit", child=child_id, reason=repr(reason)
        )
        restart = child.spec.restart
        if restart == "temporary":
            self._remove(child, "it ended (temporary)")
            self._significant_ended(child)
            return
        if restart == "transient" and not abnormal:
            # OTP keeps its spec: restart_child may start it again.
            child.state = "stopped"
            child.fail_waiters("it ended normally (transient)")
            self._clean_up(child)
            self._significant_ended(child)
            return
        self._failed(child, reason)

    def _failed(self, child: ChildRecord, reason: BaseException | None) -> None:
        """Count a failure (an exit or a failed start) and restart as the
        strategy says, now or after a backoff; or give up."""
        child.state = "restarting"
        child.ref = None
        child_id = child.spec.id
        now = self._clock()
        if self._per_child:
            if child.intensity is None:
                child.intensity = Intensity(
                    self._intensity.max_restarts, self._intensity.period
                )
            if child.intensity.exceeded_after(now):
                self._log.error(
                    "actor.gave_up",
                    child=child_id,
                    reason=repr(reason),
                    max_restarts=self._intensity.max_restarts,
                    period=self._intensity.period,
                )
                self._remove(child, "its supervisor gave up on it")
                return
        elif self._intensity.exceeded_after(now):
            self._remove(child, "its supervisor gave up")
            self._give_up(child_id, reason)
            return
        backoff = self._backoff
        if backoff is None:
            self._restart_after_failure(child)
            return
        if now - child.started_at >= backoff.reset_after:
            child.failures = 0
        child.failures += 1
        delay = backoff.delay(child.failures, self._rng)
        self._log.info("actor.backoff", child=child_id, delay=delay)
        if not self._closing:
            self._timers.after(delay, _RestartDue(child_id, child.incarnation))

    def _restart_after_failure(self, failed: ChildRecord) -> None:
        """Restart as the strategy says; a start that fails counts as a
        failure of that child (retried through the inbox, as OTP's
        try_again_restart, so other messages are not held up)."""
        self._restarts += 1
        index = self._children.index(failed)
        if self._strategy == "one_for_one":
            again = [failed]
        elif self._strategy == "one_for_all":
            again = list(self._children)
        else:
            again = self._children[index:]
        siblings = [c for c in again if c is not failed]
        self._stop_children(siblings)
        for sibling in siblings:
            if sibling.spec.restart == "temporary":  # OTP: never comes back
                self._remove(sibling, "a sibling failed (temporary)")
                again.remove(sibling)
            elif sibling.state == "stopped":
                again.remove(sibling)  # not running: nothing to restart
            else:
                sibling.state = "restarting"
        for position, child in enumerate(again):
            try:
                self._start(child)
            except ChildStartFailed as error:
                self._log.error(
                    "actor.start_failed", child=child.spec.id, error=repr(error.reason)
                )
                for later in again[position:]:
                    later.state = "restarting"
                self.actor_ref.tell(
                    _StartRetry(child.spec.id, child.incarnation, error.reason)
                )
                return
        self._log.warning(
            "actor.restart",
            child=failed.spec.id,
            strategy=self._strategy,
            restarted=[c.spec.id for c in again],
        )

    def _significant_ended(self, child: ChildRecord) -> None:
        """A significant child ended on its own: end the supervisor (a
        normal exit) if auto_shutdown says so."""
        if not child.spec.significant or self._closing:
            return
        if self._auto_shutdown == "all_significant" and any(
            c.spec.significant and c.state != "stopped" for c in self._children
        ):
            return
        self._log.info("supervisor.auto_shutdown", child=child.spec.id)
        self._closing = True
        self.stop()

    def _give_up(self, child_id: str, reason: BaseException | None) -> None:
        self._log.error(
            "supervisor.gave_up",
            child=child_id,
            reason=repr(reason),
            max_restarts=self._intensity.max_restarts,
            period=self._intensity.period,
        )
        self.gave_up.set()
        raise SupervisorGaveUp(
            f"{self._name}: child {child_id!r} failed more than "
            f"{self._intensity.max_restarts} times in "
            f"{self._intensity.period} s (last: {reason!r})"
        ) from reason

    def _check_liveness(self) -> None:
        """Children that are not Supervised and died (they cannot say so)
        count as failed."""
        for child in list(self._children):
            ref = child.ref
            if (
                ref is None
                or child.stopping
                or issubclass(ref.actor_class, Supervised)
                or ref.is_alive()
            ):
                continue
            self._exited(
                child.spec.id, child.incarnation, RuntimeError("died without a word")
            )

    def _clean_up(self, child: ChildRecord) -> None:
        cleanup = child.spec.cleanup
        if cleanup is None or child.cleaned:
            return
        child.cleaned = True
        try:
            cleanup()
        except Exception as error:  # noqa: BLE001 - logged, never fatal
            self._log.error(
                "actor.cleanup_failed", child=child.spec.id, error=repr(error)
            )
