"""The registry of what is closed at exit (actors/lifetime.py), on its own
instance: closing the process's registry here would close every other
test's clients."""

from __future__ import annotations

import gc
import threading
import weakref

import pytest

from actors.lifetime import Closables


class Closable:
    """Something to close: records the order of closes in ``log``."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log
        self.closed = threading.Event()

    def close(self) -> None:
        self.log.append(self.name)
        self.closed.set()


class Failing(Closable):
    def close(self) -> None:
        super().close()
        raise OSError("the socket was gone already")


class Hanging(Closable):
    """A close that waits until ``release`` is set."""

    def __init__(self, name: str, log: list[str]) -> None:
        super().__init__(name, log)
        self.release = threading.Event()

    def close(self) -> None:
        super().close()
        self.release.wait(30)


def test_closes_newest_first_and_only_once() -> None:
    log: list[str] = []
    registry = Closables()
    things = [Closable(name, log) for name in ("client", "machine", "listener")]
    for thing in things:
        registry.track(thing.close)
    assert registry.tracked() == [thing.close for thing in reversed(things)]
    assert registry.close_open() is True
    assert log == ["listener", "machine", "client"]
    assert registry.tracked() == []
    assert registry.close_open() is True
    assert log == ["listener", "machine", "client"]


def test_tracking_keeps_nothing_alive_and_a_collected_object_is_not_closed() -> None:
    log: list[str] = []
    registry = Closables()
    kept, dropped = Closable("kept", log), Closable("dropped", log)
    registry.track(kept.close)
    registry.track(dropped.close)
    gone = weakref.ref(dropped)
    del dropped
    gc.collect()
    assert gone() is None
    assert registry.tracked() == [kept.close]
    assert registry.close_open() is True
    assert log == ["kept"]


def test_dead_references_are_swept_out() -> None:
    registry = Closables()
    for index in range(1000):
        registry.track(Closable(str(index), []).close)  # collected at once
    assert len(registry._open) < 100


def test_a_close_that_raises_does_not_stop_the_others() -> None:
    log: list[str] = []
    registry = Closables()
    first, failing = Closable("first", log), Failing("failing", log)
    registry.track(first.close)
    registry.track(failing.close)
    assert registry.close_open() is True
    assert log == ["failing", "first"]


def test_a_close_that_hangs_is_left_behind_when_the_budget_is_spent() -> None:
    log: list[str] = []
    registry = Closables()
    oldest, hanging, newest = (
        Closable("oldest", log),
        Hanging("hanging", log),
        Closable("newest", log),
    )
    for thing in (oldest, hanging, newest):
        registry.track(thing.close)
    # Returns although a close still hangs (else this test would hang).
    assert registry.close_open(budget=0.2) is False
    assert log[:2] == ["newest", "hanging"]
    # The closes go on (on a daemon thread) once the hanging one returns.
    hanging.release.set()
    assert oldest.closed.wait(30)
    assert log == ["newest", "hanging", "oldest"]


def test_the_closes_run_on_a_daemon_thread() -> None:
    registry = Closables()
    seen: list[threading.Thread] = []

    class Recorder:
        def close(self) -> None:
            seen.append(threading.current_thread())

    recorder = Recorder()
    registry.track(recorder.close)
    assert registry.close_open() is True
    (thread,) = seen
    assert thread is not threading.current_thread()
    assert thread.daemon


def test_where_no_thread_can_start_the_closes_run_here(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Python 3.12.0 and 3.12.1 refuse a new thread in an atexit hook.
    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't create new thread at interpreter shutdown")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    log: list[str] = []
    registry = Closables()
    things = [Closable("oldest", log), Failing("failing", log)]
    for thing in things:  # (tracked weakly: kept here)
        registry.track(thing.close)
    assert registry.close_open() is True
    assert log == ["failing", "oldest"]
    late = Closable("late", log)
    registry.track(late.close)
    # Spent before it begins: nothing more is begun.
    assert registry.close_open(budget=0.0) is False
    assert not late.closed.is_set()
