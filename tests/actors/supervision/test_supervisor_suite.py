"""The Supervisor against the cases OTP's supervisor_SUITE pins (and
Pekko's BackoffSupervisorSpec for the backoff), grouped as that suite is:
start, stop, restart types x exit reasons for each strategy, intensity and
escalation, shutdown races, significant children, dynamic children,
messages to a child that is down, backoff.

Children record what happens to them in one queue (see test_supervisor.py),
so each test waits for events and futures, never for time; the restart
intensity runs on a FakeClock. The whole module takes a few seconds.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any, cast

import pykka
import pytest

from actors.supervision import (
    BRUTAL_KILL,
    IGNORE,
    Backoff,
    ChildCounts,
    ChildHandle,
    ChildInfo,
    ChildNotFound,
    ChildNotRunning,
    ChildRunning,
    ChildSpec,
    ChildStartFailed,
    Crash,
    Supervised,
    Supervisor,
    SupervisorGaveUp,
    Watch,
    await_child,
    await_started,
    count_children,
    delete_child,
    restart_child,
    start_child,
    terminate_child,
    which_children,
)
from actors.supervision.child import StartFailed
from actors.supervision.messages import AwaitChild, _RestartDue
from actors.supervision.spec import Ignore
from actors.testing import FakeClock
from messages.errors import InvalidArgumentError
from tests.actors.supervision.test_supervisor import (
    WAIT,
    Child,
    Events,
    Parent,
    Ref,
    child,
    fails,
    start_supervisor,
    stats,
    without_fails,
)

pytestmark = pytest.mark.timeout(20)


@pytest.fixture(autouse=True)
def stop_actors() -> Iterator[None]:
    try:
        yield
    finally:
        pykka.ActorRegistry.stop_all(timeout=10)


@pytest.fixture
def events() -> Events:
    return Events()


def states(supervisor: Ref) -> dict[str, str]:
    return {info.id: info.state for info in which_children(supervisor)}


def ref_of(supervisor: Ref, child_id: str) -> Ref:
    ref = {info.id: info.ref for info in which_children(supervisor)}[child_id]
    assert ref is not None, f"{child_id} is not running"
    return ref


class Noting(Child):
    """A Child that records ("got", name, x) for each ("note", x)."""

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, tuple) and message[:1] == ("note",):
            self.events.put("got", self.name, message[1])
            return message[1]
        return super().on_receive(message)


def noting(name: str, events: Events, **spec: Any) -> ChildSpec:
    def start(watch: Watch) -> Ref:
        ref = Noting.start(name, events, watch=watch)
        events.refs[name] = ref
        events.put("start", name, watch.incarnation)
        return ref

    return ChildSpec(name, start, **spec)


def failing_start(name: str, events: Events, error: Exception) -> ChildSpec:
    def start(watch: Watch) -> Ref:
        events.put("start", name, watch.incarnation)
        raise error

    return ChildSpec(name, start)


class StartFails(Supervised):
    """Fails in on_start from the incarnation ``from_`` on."""

    def __init__(self, incarnation: int, from_: int, *, watch: Watch) -> None:
        super().__init__(watch=watch)
        self.incarnation, self.from_ = incarnation, from_

    def on_start(self) -> None:
        if self.incarnation >= self.from_:
            raise OSError(f"no socket for incarnation {self.incarnation}")


def fails_on_start(name: str, events: Events, from_: int = 1) -> ChildSpec:
    def start(watch: Watch) -> Ref:
        ref = StartFails.start(watch.incarnation, from_, watch=watch)
        events.refs[name] = ref
        events.put("start", name, watch.incarnation)
        return ref

    return ChildSpec(name, start)


# -- start (OTP: sup_start) -----------------------------------------------------


class TestStart:
    def test_start_ignore_keeps_the_spec_not_running(self, events: Events) -> None:
        calls = []

        def declining(watch: Watch) -> Any:
            calls.append(watch.incarnation)
            return IGNORE if watch.incarnation == 1 else child("i", events).start(watch)

        sup = Supervisor.start([child("a", events), ChildSpec("i", declining)])
        assert events.next() == ("start", "a", 1)
        assert states(sup) == {"a": "running", "i": "stopped"}
        assert count_children(sup) == ChildCounts(
            specs=2, active=1, supervisors=0, workers=2
        )
        with pytest.raises(ChildNotRunning, match="stopped"):
            await_child(sup, "i", WAIT)
        ref = restart_child(sup, "i")
        assert ref is not None and ref.ask("ping", timeout=WAIT) == "i"
        assert events.next() == ("start", "i", 2)
        assert states(sup) == {"a": "running", "i": "running"}
        assert calls == [1, 2]

    def test_start_error_stops_those_started_in_reverse_and_says_which(
        self, events: Events
    ) -> None:
        parent = Parent.start(events)
        sup = Supervisor.start(
            [
                child("a", events),
                child("b", events),
                failing_start("bad", events, OSError("no port")),
                child("never", events),
            ],
            watch=Watch(parent, "top", 1),
        )
        assert events.take(3) == [
            ("start", "a", 1),
            ("start", "b", 1),
            ("start", "bad", 1),
        ]
        happened = events.take(3)
        assert happened[:2] == [("stop", "b"), ("stop", "a")]
        kind, child_id, reason = happened[2]
        assert (kind, child_id) == ("exited", "top")
        assert isinstance(reason, ChildStartFailed) and reason.child_id == "bad"
        assert isinstance(reason.reason, OSError) and "no port" in str(reason)
        assert sup.actor_stopped.wait(WAIT)
        # The caller of Supervisor.start learns the same from await_started.
        with pytest.raises(StartFailed) as failed:
            await_started(sup, WAIT)
        assert isinstance(failed.value.__cause__, ChildStartFailed)
        assert events.pending() == []

    def test_on_start_failing_at_supervisor_start_fails_it(
        self, events: Events
    ) -> None:
        sup = Supervisor.start([child("a", events), fails_on_start("f", events)])
        assert events.take(3) == [("start", "a", 1), ("start", "f", 1), ("stop", "a")]
        with pytest.raises(StartFailed) as failed:
            await_started(sup, WAIT)
        cause = failed.value.__cause__
        assert isinstance(cause, ChildStartFailed) and cause.child_id == "f"
        assert isinstance(cause.reason, OSError)

    def test_children_start_one_after_another(self, events: Events) -> None:
        """b's factory runs only once a's on_start has returned (OTP's init
        returning before the next child starts)."""
        b_started = threading.Event()
        overlapped: list[bool] = []

        class SlowStart(Supervised):
            def on_start(self) -> None:
                # Concurrent starts would run b's factory meanwhile.
                overlapped.append(b_started.wait(0.2))
                events.put("on_start done", "a")

        def start_a(watch: Watch) -> Ref:
            return SlowStart.start(watch=watch)

        def start_b(watch: Watch) -> Ref:
            b_started.set()
            events.put("start", "b", watch.incarnation)
            return Child.start("b", events, watch=watch)

        Supervisor.start([ChildSpec("a", start_a), ChildSpec("b", start_b)])
        assert events.take(2) == [("on_start done", "a"), ("start", "b", 1)]
        assert overlapped == [False]

    def test_on_start_overrunning_its_start_timeout_is_a_failed_start(
        self, events: Events
    ) -> None:
        release = threading.Event()

        class Stuck(Supervised):
            def on_start(self) -> None:
                events.put("stuck")
                release.wait(4 * WAIT)

        def start(watch: Watch) -> Ref:
            return Stuck.start(watch=watch)

        try:
            sup = Supervisor.start([ChildSpec("s", start, start_timeout=0.2)])
            assert events.next() == ("stuck",)
            with pytest.raises(StartFailed) as failed:
                await_started(sup, WAIT)
            cause = failed.value.__cause__
            assert isinstance(cause, ChildStartFailed) and "0.2" in str(cause)
        finally:
            release.set()

    def test_start_child_error_is_not_kept(self, events: Events) -> None:
        sup = Supervisor.start([child("a", events)])
        events.next()
        with pytest.raises(ChildStartFailed, match="nope"):
            start_child(sup, failing_start("bad", events, ValueError("nope")))
        assert events.next() == ("start", "bad", 1)
        assert states(sup) == {"a": "running"}
        with pytest.raises(ChildStartFailed):
            start_child(sup, fails_on_start("f", events))
        assert events.next() == ("start", "f", 1)
        assert states(sup) == {"a": "running"}
        with pytest.raises(ChildStartFailed, match="not an ActorRef"):
            start_child(sup, ChildSpec("none", lambda watch: None))  # type: ignore[arg-type,return-value]
        assert states(sup) == {"a": "running"}
        assert sup.is_alive()


# -- stop (OTP: sup_stop) ---------------------------------------------------------


class TestStop:
    def test_stop_in_reverse_order(self, events: Events) -> None:
        sup = Supervisor.start([child(n, events) for n in "abc"])
        events.take(3)
        start_child(sup, child("d", events))
        events.next()
        assert sup.stop(block=True, timeout=WAIT)
        assert events.take(4) == [("stop", n) for n in "dcba"]

    def test_child_overrunning_its_shutdown_is_abandoned_not_waited_for(
        self, events: Events
    ) -> None:
        """pykka cannot kill a thread: after its shutdown time the child is
        unregistered and left to end on its own; its thread is a daemon
        (it cannot hold the interpreter) and the supervisor's own thread
        has ended."""
        hold = threading.Event()
        threads: list[threading.Thread] = []

        class Slow(Child):
            def on_stop(self) -> None:
                threads.append(threading.current_thread())
                super().on_stop()

        def start(watch: Watch) -> Ref:
            return Slow.start("slow", events, watch=watch, hold_stop=hold)

        sup = Supervisor.start(
            [child("a", events), ChildSpec("slow", start, shutdown=0.2)]
        )
        events.next()
        slow = ref_of(sup, "slow")
        try:
            assert sup.stop(block=True, timeout=WAIT)
            assert events.take(2) == [("stopping", "slow"), ("stop", "a")]
            assert threads[0].daemon and threads[0].is_alive()
            assert slow not in pykka.ActorRegistry.get_all()
        finally:
            hold.set()
        assert events.next() == ("stop", "slow")
        threads[0].join(WAIT)
        assert not threads[0].is_alive()

    def test_brutal_kill_does_not_wait_for_a_busy_child(self, events: Events) -> None:
        busy, release = threading.Event(), threading.Event()
        threads: list[threading.Thread] = []

        class Busy(Child):
            def on_receive(self, message: Any) -> Any:
                if message == "work":
                    threads.append(threading.current_thread())
                    busy.set()
                    release.wait(4 * WAIT)
                    events.put("worked")
                    return None
                return super().on_receive(message)

        def start(watch: Watch) -> Ref:
            ref = Busy.start("k", events, watch=watch)
            events.refs["k"] = ref
            return ref

        sup = Supervisor.start([ChildSpec("k", start, shutdown=BRUTAL_KILL)])
        killed = ref_of(sup, "k")
        killed.tell("work")
        killed.tell("work")  # never handled
        assert busy.wait(WAIT)
        try:
            assert sup.stop(block=True, timeout=WAIT)
            assert not killed.is_alive()
            with pytest.raises(pykka.ActorDeadError):
                killed.tell("ping")
        finally:
            release.set()
        assert events.next() == ("worked",)
        threads[0].join(WAIT)
        assert not threads[0].is_alive()
        assert events.pending() == []  # no second work, no on_stop

    def test_children_exiting_on_their_own_while_it_stops(self, events: Events) -> None:
        """OTP's shutdown race: children that end themselves while the
        supervisor stops the others are not restarted, and nothing is left."""
        hold = threading.Event()
        sup = Supervisor.start(
            [
                child("a", events),
                child("b", events),
                child("c", events, hold_stop=hold),
            ],
            max_restarts=10,
        )
        events.take(3)
        a, b = ref_of(sup, "a"), ref_of(sup, "b")
        stopping = sup.stop(block=False)
        assert events.next() == ("stopping", "c")
        a.tell(Crash())  # while the supervisor waits for c
        b.tell("exit")
        hold.set()
        assert stopping.get(timeout=WAIT)
        seen = events.take(3)
        assert ("stop", "c") in seen and ("stop", "b") in seen
        assert fails(seen) == [("fail", "a", "CrashInjected")]
        assert [e for e in events.pending() if e[0] == "start"] == []
        assert pykka.ActorRegistry.get_all() == []

    def test_stop_while_backing_off_starts_nothing(self, events: Events) -> None:
        sup = Supervisor.start(
            [child("a", events)],
            max_restarts=5,
            backoff=Backoff(minimum=60, maximum=60, jitter=0),
        )
        events.next()
        ref_of(sup, "a").tell(Crash())
        assert events.next() == ("fail", "a", "CrashInjected")
        assert states(sup) == {"a": "restarting"}
        assert sup.stop(block=True, timeout=WAIT)
        assert events.pending() == []


# -- restart types x exit reasons, each strategy -------------------------------------

STRATEGIES = ["one_for_one", "one_for_all", "rest_for_one"]
RESTARTS = ["permanent", "transient", "temporary"]
#: normal: it stops itself; shutdown: stopped by someone else (a normal end
#: too); abnormal: it crashes.
REASONS = ["normal", "shutdown", "abnormal"]


def restarted_expected(restart: str, reason: str) -> bool:
    return restart == "permanent" or (restart == "transient" and reason == "abnormal")


class TestRestartMatrix:
    @pytest.mark.parametrize("reason", REASONS)
    @pytest.mark.parametrize("restart", RESTARTS)
    @pytest.mark.parametrize("strategy", STRATEGIES)
    def test_exit(
        self, events: Events, strategy: str, restart: str, reason: str
    ) -> None:
        sup = Supervisor.start(
            [child("a", events), child("x", events, restart), child("c", events)],
            strategy=strategy,
            max_restarts=5,
        )
        events.take(3)
        x = ref_of(sup, "x")
        if reason == "normal":
            x.tell("exit")
        elif reason == "shutdown":
            x.stop(block=False)
        else:
            x.tell(Crash())
        if not restarted_expected(restart, reason):
            end = (
                ("fail", "x", "CrashInjected")
                if reason == "abnormal"
                else ("stop", "x")
            )
            assert events.next() == end
            want = {"a": "running", "c": "running"}
            if restart == "transient":
                want["x"] = "stopped"  # its spec is kept (OTP)
            assert states(sup) == want
            assert stats(sup).restarts == 0
            assert events.pending() == []
            return
        again = {
            "one_for_one": ["x"],
            "one_for_all": ["a", "x", "c"],
            "rest_for_one": ["x", "c"],
        }[strategy]
        stopped = [n for n in reversed(again) if n != "x"]
        happened = events.take(1 + len(stopped) + len(again))
        ended = [e for e in happened if e[1] == "x" and e[0] in ("stop", "fail")]
        assert len(ended) == 1
        assert [e for e in happened if e not in ended] == [
            ("stop", n) for n in stopped
        ] + [("start", n, 2) for n in again]
        assert states(sup) == {"a": "running", "x": "running", "c": "running"}
        assert stats(sup).restarts == 1
        assert events.pending() == []


# -- restart intensity and escalation -------------------------------------------------


class TestIntensity:
    @pytest.mark.parametrize(
        ("last_at", "gives_up"), [(9.999, True), (10.0, False), (10.001, False)]
    )
    def test_failures_just_inside_and_just_outside_the_period(
        self, events: Events, last_at: float, gives_up: bool
    ) -> None:
        clock = FakeClock(1000.0)
        sup, actor = start_supervisor(
            [child("a", events)], max_restarts=2, period=10, clock=clock
        )
        events.next()
        for at, incarnation in ((0.0, 2), (5.0, 3)):
            clock.advance(at - (clock() - 1000.0))
            ref_of(sup, "a").tell(Crash())
            assert without_fails(events.take(2)) == [("start", "a", incarnation)]
        clock.advance(last_at - 5.0)
        ref_of(sup, "a").tell(Crash())
        if gives_up:
            assert sup.actor_stopped.wait(WAIT)
            assert actor.gave_up.is_set()
        else:
            assert without_fails(events.take(2)) == [("start", "a", 4)]
            assert not actor.gave_up.is_set()

    def test_zero_restarts_gives_up_at_the_first_failure(self, events: Events) -> None:
        parent = Parent.start(events)
        sup = Supervisor.start(
            [child("a", events), child("b", events)],
            max_restarts=0,
            watch=Watch(parent, "top", 1),
        )
        events.take(2)
        ref_of(sup, "b").tell("raise")
        happened = without_fails(events.take(3))
        assert happened[0] == ("stop", "a")
        reason = happened[1][2]
        assert isinstance(reason, SupervisorGaveUp)
        assert isinstance(reason.__cause__, ValueError)

    def test_restart_start_failures_count_and_escalate_with_the_cause(
        self, events: Events
    ) -> None:
        parent = Parent.start(events)
        sup, actor = start_supervisor(
            [fails_on_start("f", events, from_=2)],
            max_restarts=3,
            period=30,
            watch=Watch(parent, "top", 1),
        )
        assert events.next() == ("start", "f", 1)
        events.refs["f"].tell(Crash())
        assert events.take(3) == [("start", "f", n) for n in (2, 3, 4)]
        kind, _, reason = events.next()
        assert kind == "exited" and isinstance(reason, SupervisorGaveUp)
        assert isinstance(reason.__cause__, OSError)
        assert "incarnation 4" in str(reason.__cause__)
        assert actor.gave_up.is_set()

    def test_a_restart_whose_start_fails_once_recovers(self, events: Events) -> None:
        starts: list[int] = []

        def flaky(watch: Watch) -> Ref | Ignore:
            starts.append(watch.incarnation)
            if watch.incarnation == 2:
                raise OSError("flaky")
            return child("f", events).start(watch)

        sup = Supervisor.start([ChildSpec("f", flaky)], max_restarts=5)
        assert events.next() == ("start", "f", 1)
        ref_of(sup, "f").tell(Crash())
        assert without_fails(events.take(2)) == [("start", "f", 3)]
        assert starts == [1, 2, 3]
        assert states(sup) == {"f": "running"}

    def test_escalation_restarts_the_child_supervisor_afresh(
        self, events: Events
    ) -> None:
        def sub(watch: Watch) -> Ref:
            events.put("start", "sub", watch.incarnation)
            return Supervisor.start(
                [child("g", events)], max_restarts=0, watch=watch, name="sub"
            )

        top = Supervisor.start([ChildSpec("sub", sub)], max_restarts=1)
        assert events.take(2) == [("start", "sub", 1), ("start", "g", 1)]
        assert count_children(top).supervisors == 1
        first = ref_of(top, "sub")
        ref_of(first, "g").tell(Crash())
        assert without_fails(events.take(3)) == [
            ("start", "sub", 2),
            ("start", "g", 1),
        ]
        assert first.actor_stopped.is_set()
        assert states(ref_of(top, "sub")) == {"g": "running"}


# -- significant children and auto_shutdown (OTP 24) -----------------------------------


class TestSignificant:
    def test_any_significant_ends_the_supervisor_normally(self, events: Events) -> None:
        parent = Parent.start(events)
        sup = Supervisor.start(
            [
                child("a", events),
                ChildSpec(
                    "job",
                    child("job", events).start,
                    "temporary",
                    significant=True,
                ),
                child("c", events),
            ],
            auto_shutdown="any_significant",
            watch=Watch(parent, "group", 1),
        )
        events.take(3)
        ref_of(sup, "job").tell("exit")
        assert events.take(4) == [
            ("stop", "job"),
            ("stop", "c"),
            ("stop", "a"),
            ("exited", "group", None),
        ]
        assert sup.actor_stopped.wait(WAIT)

    def test_all_significant_waits_for_the_last(self, events: Events) -> None:
        sup = Supervisor.start(
            [
                child("a", events),
                ChildSpec(
                    "t1", child("t1", events).start, "transient", significant=True
                ),
                ChildSpec(
                    "t2", child("t2", events).start, "temporary", significant=True
                ),
            ],
            auto_shutdown="all_significant",
            max_restarts=5,
        )
        events.take(3)
        ref_of(sup, "t1").tell(Crash())  # abnormal: restarted, not an end
        assert without_fails(events.take(2)) == [("start", "t1", 2)]
        ref_of(sup, "t1").tell("exit")
        assert events.next() == ("stop", "t1")
        assert states(sup) == {"a": "running", "t1": "stopped", "t2": "running"}
        ref_of(sup, "t2").tell("exit")
        assert events.take(2) == [("stop", "t2"), ("stop", "a")]
        assert sup.actor_stopped.wait(WAIT)

    def test_terminate_child_does_not_trigger_auto_shutdown(
        self, events: Events
    ) -> None:
        sup = Supervisor.start(
            [
                child("a", events),
                ChildSpec("t", child("t", events).start, "transient", significant=True),
            ],
            auto_shutdown="any_significant",
        )
        events.take(2)
        terminate_child(sup, "t")
        assert events.next() == ("stop", "t")
        assert states(sup) == {"a": "running", "t": "stopped"}
        assert sup.is_alive()

    def test_significant_needs_auto_shutdown_and_a_non_permanent_child(
        self, events: Events
    ) -> None:
        with pytest.raises(InvalidArgumentError, match="significant"):
            ChildSpec("p", child("p", events).start, significant=True)
        spec = ChildSpec("t", child("t", events).start, "transient", significant=True)
        with pytest.raises(InvalidArgumentError, match="auto_shutdown"):
            Supervisor.start([spec])
        sup = Supervisor.start([])
        with pytest.raises(InvalidArgumentError, match="auto_shutdown"):
            start_child(sup, spec)
        with pytest.raises(InvalidArgumentError, match="auto_shutdown"):
            Supervisor.start([], auto_shutdown="sometimes")
        assert events.pending() == []


# -- dynamic children -------------------------------------------------------------------


class TestDynamic:
    def test_terminate_restart_delete(self, events: Events) -> None:
        cleaned: list[str] = []
        base = child("b", events)
        sup = Supervisor.start(
            [
                child("a", events),
                ChildSpec("b", base.start, cleanup=lambda: cleaned.append("b")),
            ]
        )
        events.take(2)
        old = ref_of(sup, "b")
        terminate_child(sup, "b")
        assert events.next() == ("stop", "b")
        assert not old.is_alive() and cleaned == ["b"]
        info = which_children(sup)
        assert info[1] == ChildInfo("b", None, "permanent", "stopped")
        with pytest.raises(ChildRunning):
            delete_child(sup, "a")
        with pytest.raises(ChildRunning):
            restart_child(sup, "a")
        new = restart_child(sup, "b")
        assert events.next() == ("start", "b", 2)
        assert new is not None and new != old and new.ask("ping", timeout=WAIT) == "b"
        terminate_child(sup, "b")
        assert events.next() == ("stop", "b")
        delete_child(sup, "b")
        assert cleaned == ["b", "b"]  # once per start, not again on delete
        assert [i.id for i in which_children(sup)] == ["a"]
        for call in (terminate_child, restart_child, delete_child):
            with pytest.raises(ChildNotFound):
                call(sup, "b")
        assert stats(sup).restarts == 0

    def test_terminating_a_temporary_child_deletes_it(self, events: Events) -> None:
        sup = Supervisor.start([child("t", events, "temporary")])
        events.next()
        terminate_child(sup, "t")
        assert events.next() == ("stop", "t")
        assert which_children(sup) == ()

    def test_a_transient_child_ending_normally_keeps_its_spec(
        self, events: Events
    ) -> None:
        sup = Supervisor.start([child("t", events, "transient")])
        events.next()
        ref_of(sup, "t").tell("exit")
        assert events.next() == ("stop", "t")
        assert states(sup) == {"t": "stopped"}
        assert restart_child(sup, "t") is not None
        assert events.next() == ("start", "t", 2)

    def test_which_and_count_children(self, events: Events) -> None:
        def sub(watch: Watch) -> Ref:
            return Supervisor.start([], watch=watch, name="sub")

        sup = Supervisor.start(
            [child("w", events), ChildSpec("sub", sub), child("t", events, "transient")]
        )
        events.take(2)
        assert count_children(sup) == ChildCounts(
            specs=3, active=3, supervisors=1, workers=2
        )
        terminate_child(sup, "t")
        events.next()
        infos = which_children(sup)
        assert [(i.id, i.restart, i.state) for i in infos] == [
            ("w", "permanent", "running"),
            ("sub", "permanent", "running"),
            ("t", "transient", "stopped"),
        ]
        assert infos[0].ref == events.refs["w"]
        assert count_children(sup).active == 2

    def test_while_restarting_which_children_says_so_and_waits_are_bounded(
        self, events: Events
    ) -> None:
        sup = Supervisor.start(
            [child("a", events)],
            max_restarts=5,
            backoff=Backoff(minimum=60, maximum=60, jitter=0),
        )
        events.next()
        ref_of(sup, "a").tell(Crash())
        assert events.next() == ("fail", "a", "CrashInjected")
        assert which_children(sup) == (ChildInfo("a", None, "permanent", "restarting"),)
        with pytest.raises(ChildNotRunning, match="still restarting"):
            await_child(sup, "a", 0.05)
        with pytest.raises(ChildNotFound):
            await_child(sup, "nobody", WAIT)
        # A waiter whose child is terminated meanwhile hears why at once.
        waiting = cast("Future[Ref]", sup.ask(AwaitChild("a"), timeout=WAIT))
        assert not waiting.done()
        terminate_child(sup, "a")
        with pytest.raises(ChildNotRunning, match="terminated"):
            waiting.result(timeout=WAIT)

    def test_a_waiter_gets_the_new_incarnation(self, events: Events) -> None:
        gate = threading.Event()

        def gated(watch: Watch) -> Ref | Ignore:
            if watch.incarnation > 1:
                gate.wait(WAIT)  # the restart is under way meanwhile
            return child("a", events).start(watch)

        sup = Supervisor.start([ChildSpec("a", gated)], max_restarts=5)
        old = ref_of(sup, "a")
        handle = ChildHandle(sup, "a")
        assert handle.current(WAIT) == old
        old.tell(Crash())
        assert events.next()[0] == "start"
        assert events.next() == ("fail", "a", "CrashInjected")
        gate.set()
        new = handle.current(WAIT)
        assert new != old and new.ask("ping", timeout=WAIT) == "a"


# -- messages to a child that is down ------------------------------------------------


class TestMessagesWhileDown:
    def test_tells_while_restarting_are_kept_in_order_and_delivered(
        self, events: Events
    ) -> None:
        sup, actor = start_supervisor(
            [noting("n", events)],
            max_restarts=5,
            backoff=Backoff(minimum=60, maximum=60, jitter=0),
        )
        assert events.next() == ("start", "n", 1)
        handle = ChildHandle(sup, "n")
        handle.tell(("note", 0))
        assert events.next() == ("got", "n", 0)
        ref_of(sup, "n").tell(Crash())
        assert events.next() == ("fail", "n", "CrashInjected")
        for number in (1, 2, 3):
            handle.tell(("note", number))
        assert stats(sup).dropped == 0
        # Restart now rather than in a minute (as the backoff timer would).
        sup.tell(_RestartDue("n", actor._by_id["n"].incarnation))  # noqa: SLF001
        assert events.take(4) == [("start", "n", 2)] + [
            ("got", "n", k) for k in (1, 2, 3)
        ]
        handle.tell(("note", 4))
        assert events.next() == ("got", "n", 4)

    def test_the_down_mailbox_is_bounded_and_drops_are_counted(
        self, events: Events
    ) -> None:
        sup = Supervisor.start(
            [noting("n", events)],
            max_restarts=5,
            backoff=Backoff(minimum=60, maximum=60, jitter=0),
            down_mailbox=2,
        )
        events.next()
        ref_of(sup, "n").tell(Crash())
        assert events.next() == ("fail", "n", "CrashInjected")
        handle = ChildHandle(sup, "n")
        for number in range(5):
            handle.tell(("note", number))
        assert stats(sup).dropped == 3
        ChildHandle(sup, "nobody").tell("lost")
        assert stats(sup).dropped == 4

    def test_ask_waits_for_the_child_or_says_it_is_not_back(
        self, events: Events
    ) -> None:
        sup = Supervisor.start(
            [noting("n", events)],
            max_restarts=5,
            backoff=Backoff(minimum=60, maximum=60, jitter=0),
        )
        events.next()
        handle = ChildHandle(sup, "n")
        assert handle.ask(("note", 1), timeout=WAIT) == 1
        assert events.next() == ("got", "n", 1)
        ref_of(sup, "n").tell(Crash())
        assert events.next() == ("fail", "n", "CrashInjected")
        with pytest.raises(ChildNotRunning, match="still restarting"):
            handle.ask(("note", 2), timeout=0.05)
        assert events.pending() == []  # never sent to a stale ref


# -- backoff --------------------------------------------------------------------------


class TestBackoff:
    @pytest.mark.parametrize(
        "failures", [1, 2, 10, 1023, 1024, 2**20, 2**31 - 1, 2**31]
    )
    def test_delays_are_capped_at_the_maximum_at_any_count(self, failures: int) -> None:
        import random

        backoff = Backoff(minimum=0.1, maximum=30.0, jitter=0.0)
        rng = random.Random(1)
        expected = min(0.1 * 2 ** (min(failures, 64) - 1), 30.0)
        assert backoff.delay(failures, rng) == pytest.approx(expected)
        jittery = Backoff(minimum=0.1, maximum=30.0, jitter=0.5)
        assert 30.0 <= jittery.delay(2**31, rng) <= 45.0

    def test_delays_never_shrink_as_failures_grow(self) -> None:
        import random

        backoff = Backoff(minimum=0.001, maximum=5.0, jitter=0.0)
        rng = random.Random(1)
        delays = [backoff.delay(2**k, rng) for k in range(32)]
        assert delays == sorted(delays) and delays[-1] == 5.0
        assert Backoff(minimum=0, maximum=0).delay(2**31, rng) == 0


# -- scale (figures: bench/supervisor_scale.py) -----------------------------------------


class Quiet(Supervised):
    def on_receive(self, message: Any) -> Any:
        return "pong" if message == "ping" else super().on_receive(message)


def quiet(watch: Watch) -> Ref:
    return Quiet.start(watch=watch)


class TestScale:
    def test_many_children_cost_only_their_own_threads(self) -> None:
        children = 300
        before = set(threading.enumerate())
        sup = Supervisor.start(
            [ChildSpec(f"c{i}", quiet) for i in range(children)], name="many"
        )
        counts = count_children(sup)
        assert counts == ChildCounts(
            specs=children, active=children, supervisors=0, workers=children
        )
        # The children's threads and the supervisor's: nothing per child.
        new = [t.name.split("-")[0] for t in set(threading.enumerate()) - before]
        assert sorted(set(new)) == ["Quiet", "Supervisor"]
        assert new.count("Quiet") == children and new.count("Supervisor") == 1
        handle = ChildHandle(sup, "c150")
        old = handle.current(WAIT)
        old.tell(Crash())
        assert old.actor_stopped.wait(WAIT)
        current = handle.current(WAIT)
        assert current != old and current.ask("ping", timeout=WAIT) == "pong"
        assert stats(sup).restarts == 1
        assert sup.stop(block=True, timeout=4 * WAIT)
        assert pykka.ActorRegistry.get_all() == []

    def test_a_supervisor_gone_is_a_clear_error_for_waiters(self) -> None:
        sup = Supervisor.start([ChildSpec("c", quiet)])
        handle = ChildHandle(sup, "c")
        handle.current(WAIT)
        assert sup.stop(block=True, timeout=WAIT)
        with pytest.raises(ChildNotRunning, match="supervisor is gone"):
            handle.current(WAIT)
        handle.tell("lost")  # nobody to keep it: no error


ABANDONED = """
import sys, threading
from actors.supervision import ChildSpec, Supervised, Supervisor, stop_and_join

forever = threading.Event()

class Stubborn(Supervised):
    def on_stop(self):
        print("stopping", flush=True)
        forever.wait()  # never returns

sup = Supervisor.start([ChildSpec("s", lambda w: Stubborn.start(watch=w), shutdown=0.2)])
stop_and_join(sup, 10)
print("LAST", flush=True)
"""


class TestAbandoned:
    @pytest.mark.timeout(60)
    def test_a_child_stuck_in_on_stop_does_not_hold_the_interpreter(self) -> None:
        """The supervisor stops within the child's shutdown, and the
        process exits though the child's thread never ends."""
        import subprocess
        import sys

        done = subprocess.run(
            [sys.executable, "-c", ABANDONED],
            capture_output=True,
            text=True,
            timeout=45,
            check=False,
        )
        assert done.stdout.split() == ["stopping", "LAST"], done.stderr
        assert done.returncode == 0, done.stderr
