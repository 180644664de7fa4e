"""Supervision after Erlang/OTP: restart what fails, give up when it keeps
failing, and let the parent decide.

A child spec is data: an id, a factory that starts the actor, a restart
type and a shutdown timeout. ``permanent`` children are always restarted,
``transient`` ones only after an abnormal exit, ``temporary`` ones never.
More than ``max_restarts`` restarts within ``period`` seconds (OTP's
default: 1 in 5) makes the supervisor stop all its children, in reverse
order, and fail itself, which its own parent sees as a child failing.
Children start in order and stop in reverse order, each given its shutdown
timeout. Optional backoff delays restarts (as Akka's backoff supervisor):
from a minimum doubling to a maximum, with random jitter, and reset once a
child has run cleanly for a while.

A child learns of its supervisor through the Watch it is started with; a
Supervised actor reports its exit through it (with the reason), whatever
ended it. Only children that are not Supervised are polled for liveness,
so a supervisor of Supervised children sleeps until something happens.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, cast

import pykka

from actors.supervision.child import (
    ChildExited,
    CrashInjected,
    Supervised,
    Watch,
    stop_and_join,
)
from actors.supervision.spec import Backoff, ChildSpec
from messages.errors import InvalidArgumentError
from transport.logs import get_logger

log = get_logger(__name__)

Strategy = Literal["one_for_one", "one_for_all", "rest_for_one"]
#: How often the supervisor checks that its children are alive, for
#: children that are not Supervised (a Supervised child reports its own
#: end, so a supervisor of only those never wakes up on its own).
CHILD_LIVENESS_CHECK = 0.05


# -- messages ----------------------------------------------------------------------


@dataclass(frozen=True)
class WhereIs:
    """Ask for the ActorRef of a running child (None while it restarts)."""

    child_id: str


class ChildLookup:
    """The running incarnation of one child of ``supervisor``, asked for
    (WhereIs) only when the one found last has died; None while it
    restarts, or once the supervisor is gone."""

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


@dataclass(frozen=True)
class StartChild:
    """Add and start a child after the ones already there."""

    spec: ChildSpec


@dataclass(frozen=True)
class StopChild:
    """Stop a child for good (within its shutdown time), run its cleanup
    and forget it, as OTP's terminate_child and delete_child; answers
    whether there was such a child."""

    child_id: str


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


@dataclass(frozen=True)
class _RestartDue:
    child_id: str
    incarnation: int


@dataclass(frozen=True)
class _CheckLiveness:
    pass


class SupervisorGaveUp(RuntimeError):
    """Children kept failing beyond the restart intensity."""


# -- the supervisor -----------------------------------------------------------------


@dataclass
class _Child:
    spec: ChildSpec
    ref: pykka.ActorRef[Any] | None = None
    incarnation: int = 0
    started_at: float = 0.0
    failures: int = 0
    #: Stopped on purpose: its exit report is expected, not a failure.
    stopping: bool = False
    #: The last incarnation whose exit was dealt with.
    handled: int = 0
    #: Its own restart intensity, when the supervisor counts per child.
    intensity: _Intensity | None = None


@dataclass
class _Intensity:
    max_restarts: int
    period: float
    times: deque[float] = field(default_factory=deque)

    def exceeded_after(self, now: float) -> bool:
        """Count a restart at ``now``; True if that is one too many."""
        self.times.append(now)
        while self.times and self.times[0] <= now - self.period:
            self.times.popleft()
        return len(self.times) > self.max_restarts


class Supervisor(Supervised):
    """Starts children from specs and keeps them running.

    Start it with ``Supervisor.start(specs, strategy=..., ...)``; nest it by
    giving a parent supervisor a ChildSpec whose start passes ``watch``.
    ``gave_up`` is set (and the actor fails) when the restart intensity is
    exceeded. With ``per_child`` (one_for_one only) each child has its own
    intensity instead, and one that exceeds it is given up on alone: it is
    stopped, cleaned up and forgotten while its siblings carry on, as if
    each had a supervisor of its own, at the cost of one thread for all.
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
        ids = [spec.id for spec in specs]
        if len(set(ids)) != len(ids):
            raise InvalidArgumentError("specs", ids, "child ids must differ")
        self._children = [_Child(spec) for spec in specs]
        self._strategy = strategy
        self._intensity = _Intensity(max_restarts, period)
        #: Count restarts per child and give up on a child alone (as Akka's
        #: OneForOneStrategy does), instead of on every child at once: for
        #: many independent children (a group's boards) under one thread.
        self._per_child = per_child
        self._backoff = backoff
        self._rng = random.Random(seed)
        self._clock = clock
        self._name = name
        self._restarts = 0
        self._timers: list[threading.Timer] = []
        self._closing = False
        self.gave_up = threading.Event()
        self._log = log.bind(actor="supervisor", supervisor=name)
        self._ticking = threading.Event()
        #: Started with the first child that cannot report its own end.
        self._ticker: threading.Thread | None = None

    # -- pykka hooks ---------------------------------------------------------

    def on_start(self) -> None:
        try:
            for child in self._children:
                self._start(child)
        except Exception as error:
            # pykka calls neither on_failure nor on_stop for a failed start:
            # stop what did start, and tell the parent.
            self._log.error("supervisor.start_failed", error=repr(error))
            self._closing = True
            self._stop_children([c for c in self._children if c.ref is not None])
            self.report_exit(error)
            raise

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, ChildExited):
            self._exited(message.child_id, message.incarnation, message.reason)
        elif isinstance(message, _RestartDue):
            child = self._find(message.child_id)
            if child is not None and child.incarnation == message.incarnation:
                self._restart_after_failure(child)
        elif isinstance(message, _CheckLiveness):
            self._check_liveness()
        elif isinstance(message, WhereIs):
            child = self._find(message.child_id)
            return None if child is None else child.ref
        elif isinstance(message, StopChild):
            child = self._find(message.child_id)
            if child is None:
                return False
            self._stop_child(child)
            self._children.remove(child)
            self._clean_up(child)
            return True
        elif isinstance(message, StartChild):
            if self._find(message.spec.id) is not None:
                raise InvalidArgumentError(
                    "spec", message.spec.id, "a child with this id exists"
                )
            child = _Child(message.spec)
            self._children.append(child)
            self._start(child)
            return child.ref
        elif isinstance(message, GetSupervisorStats):
            return SupervisorStats(
                children=tuple(c.spec.id for c in self._children),
                running=tuple(
                    c.spec.id
                    for c in self._children
                    if c.ref is not None and c.ref.is_alive()
                ),
                restarts=self._restarts,
                gave_up=self.gave_up.is_set(),
                name=self._name,
            )
        else:
            return super().on_receive(message)
        return None

    def on_stop(self) -> None:
        self._closing = True
        self._cancel_timers()
        self._stop_children(self._children)
        super().on_stop()

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._closing = True
        self._cancel_timers()
        self._stop_children(self._children)
        super().on_failure(exception_type, exception_value, traceback)

    # -- inside ------------------------------------------------------------------

    def _find(self, child_id: str) -> _Child | None:
        for child in self._children:
            if child.spec.id == child_id:
                return child
        return None

    def _start(self, child: _Child) -> None:
        child.incarnation += 1
        child.stopping = False
        watch = Watch(self.actor_ref, child.spec.id, child.incarnation)
        child.ref = child.spec.start(watch)
        child.started_at = self._clock()
        if self._ticker is None and not issubclass(child.ref.actor_class, Supervised):
            self._ticker = threading.Thread(
                target=self._tick, daemon=True, name=f"{self._name}-liveness"
            )
            self._ticker.start()
        self._log.debug(
            "actor.start", child=child.spec.id, incarnation=child.incarnation
        )

    def _stop_child(self, child: _Child) -> None:
        """Stop one child within its shutdown time, or give up on it."""
        ref, child.ref = child.ref, None
        child.stopping = True
        if ref is None or not ref.is_alive():
            return
        try:
            stop_and_join(ref, child.spec.shutdown)
        except pykka.Timeout:
            self._log.error(
                "actor.kill", child=child.spec.id, shutdown=child.spec.shutdown
            )
            pykka.ActorRegistry.unregister(ref)

    def _stop_children(self, children: Sequence[_Child]) -> None:
        for child in reversed(children):
            self._stop_child(child)
            if self._closing:
                self._clean_up(child)

    def _exited(
        self, child_id: str, incarnation: int, reason: BaseException | None
    ) -> None:
        child = self._find(child_id)
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
        if restart == "temporary" or (restart == "transient" and not abnormal):
            self._children.remove(child)
            self._clean_up(child)
            return
        now = self._clock()
        if self._per_child:
            if child.intensity is None:
                child.intensity = _Intensity(
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
                self._children.remove(child)
                self._clean_up(child)
                return
        elif self._intensity.exceeded_after(now):
            self._clean_up(child)
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
        self._schedule(delay, _RestartDue(child_id, incarnation))

    def _restart_after_failure(self, failed: _Child) -> None:
        """Restart as the strategy says."""
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
        for sibling in siblings:  # OTP: a temporary child never comes back
            if sibling.spec.restart == "temporary":
                self._children.remove(sibling)
                self._clean_up(sibling)
                again.remove(sibling)
        for child in again:
            self._start(child)
        self._log.warning(
            "actor.restart",
            child=failed.spec.id,
            strategy=self._strategy,
            restarted=[c.spec.id for c in again],
        )

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
        )

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

    def _clean_up(self, child: _Child) -> None:
        cleanup = child.spec.cleanup
        if cleanup is None:
            return
        try:
            cleanup()
        except Exception as error:  # noqa: BLE001 - logged, never fatal
            self._log.error(
                "actor.cleanup_failed", child=child.spec.id, error=repr(error)
            )

    def _schedule(self, delay: float, message: Any) -> None:
        if self._closing:
            return
        ref = self.actor_ref

        def fire() -> None:
            with contextlib.suppress(pykka.ActorDeadError):
                ref.tell(message)

        timer = threading.Timer(delay, fire)
        timer.daemon = True
        self._timers = [t for t in self._timers if t.is_alive()]
        self._timers.append(timer)
        timer.start()

    def _tick(self) -> None:
        """Ask for a liveness check now and then, until the end."""
        ref = self.actor_ref
        while not self._ticking.wait(CHILD_LIVENESS_CHECK):
            try:
                ref.tell(_CheckLiveness())
            except pykka.ActorDeadError:
                return

    def _cancel_timers(self) -> None:
        self._ticking.set()
        ticker = self._ticker
        if ticker is not None and ticker is not threading.current_thread():
            ticker.join(1)
        for timer in self._timers:
            timer.cancel()
        for timer in self._timers:
            if timer is not threading.current_thread():
                timer.join(1)
        self._timers.clear()
