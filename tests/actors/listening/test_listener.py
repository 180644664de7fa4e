"""ConnectionListener: real pykka actors over in-memory links (and UDP).

Every test synchronises on events, conditions and thread joins; the only
timed waits are bounded checks that something has *not* happened yet.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, cast

import pykka
import pytest

import actors.supervision.child
import actors.supervision.messages
import transport
from actors import ConnectionListener
from actors.listening.callbacks import CallbackStats
from messages import SDPMessage
from messages.errors import InvalidArgumentError
from transport import ConnectionClosed, SDPConnection, UDPConnection

WAIT = 10.0
Ref = pykka.ActorRef[Any]


@contextlib.contextmanager
def captured_events() -> Iterator[list[dict[str, Any]]]:
    """The structlog events our loggers hand to stdlib logging."""
    events: list[dict[str, Any]] = []

    standard = set(vars(logging.makeLogRecord({})))

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            extra = {
                key: value for key, value in vars(record).items() if key not in standard
            }
            events.append(
                {"event": record.getMessage(), "level": record.levelname, **extra}
            )

    root, handler = logging.getLogger(), Keep(logging.DEBUG)
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield events
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


COUNTER = struct.Struct("<I")
#: Padding, then an SDP header that expects no reply, from tag 1.
_HEAD = b"\0\0" + bytes([0x07, 1, 0xFF, (1 << 5) | 1, 0, 0, 0, 0])


def numbered(number: int) -> bytes:
    return _HEAD + COUNTER.pack(number) + bytes(12)


def number_of(message: Any) -> int:
    if isinstance(message, SDPMessage):
        return int(COUNTER.unpack_from(message.payload)[0])
    if isinstance(message, (bytes, bytearray)):
        return int(message.split(b"-")[1])
    return int(message)


@pytest.fixture(autouse=True)
def stop_actors() -> Iterator[None]:
    try:
        yield
    finally:
        pykka.ActorRegistry.stop_all()


class Link:
    """An SDPConnection for the listener and an endpoint that feeds it."""

    def __init__(self, queue_limit: int = 4096) -> None:
        self.network = transport.MemoryNetwork(queue_limit)
        self.connection = SDPConnection(
            endpoint=self.network.endpoint(), remote_host=None
        )
        self.sender = self.network.endpoint()

    def send(self, *numbers: int) -> None:
        for number in numbers:
            self.raw(numbered(number))

    def raw(self, data: bytes) -> None:
        self.sender.send_to(data, self.connection.endpoint.address)

    def close(self) -> None:
        self.sender.close()
        self.connection.close()


@pytest.fixture
def link() -> Iterator[Link]:
    made = Link()
    try:
        yield made
    finally:
        made.close()


class Recorder:
    """A callback that records message numbers and the thread it ran on.

    With ``block_at`` it stops at that message (after recording it) until
    ``gate`` is set; ``entered`` says it got there.
    """

    def __init__(
        self, block_at: int | None = None, raise_on: Callable[[int], bool] | None = None
    ) -> None:
        self.numbers: list[int] = []
        self.threads: set[threading.Thread] = set()
        self.block_at = block_at
        self.raise_on = raise_on
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.raised = 0
        self._changed = threading.Condition()

    def __call__(self, message: Any) -> None:
        number = number_of(message)
        with self._changed:
            self.numbers.append(number)
            self.threads.add(threading.current_thread())
            self._changed.notify_all()
        if number == self.block_at:
            self.entered.set()
            assert self.gate.wait(WAIT), "gate never opened"
        if self.raise_on is not None and self.raise_on(number):
            self.raised += 1
            raise RuntimeError(f"callback fails on {number}")

    def wait_for(self, count: int, timeout: float = WAIT) -> list[int]:
        """The numbers, once there are at least ``count`` of them."""
        with self._changed:
            assert self._changed.wait_for(
                lambda: len(self.numbers) >= count, timeout
            ), f"only {len(self.numbers)} of {count}: {self.numbers[-5:]}"
            return list(self.numbers)

    @property
    def thread(self) -> threading.Thread:
        assert len(self.threads) == 1
        return next(iter(self.threads))


def where_is(supervisor: pykka.ActorRef[Any] | None, child_id: str) -> Ref:
    """The ref of the listener's running child ``child_id``."""
    assert supervisor is not None
    ref = supervisor.ask(actors.supervision.messages.WhereIs(child_id), timeout=5)
    assert ref is not None, f"{child_id} is not running"
    return cast(Ref, ref)


def close_quietly(listener: ConnectionListener[Any]) -> None:
    with contextlib.suppress(Exception):
        listener.close()


# -- the facade's arguments --------------------------------------------------


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_processes": 0},
        {"n_processes": -1},
        {"n_processes": 1.5},
        {"n_processes": True},
        {"timeout": 0},
        {"timeout": -1},
        {"timeout": "1"},
    ],
)
def test_bad_arguments_raise_invalid_argument_error(
    link: Link, kwargs: dict[str, Any]
) -> None:
    with pytest.raises(InvalidArgumentError):
        ConnectionListener(link.connection, **kwargs)


@pytest.mark.timeout(20)
def test_add_callback_rejects_what_is_not_callable(link: Link) -> None:
    listener = ConnectionListener(link.connection)
    with pytest.raises(InvalidArgumentError):
        listener.add_callback("not callable")  # type: ignore[arg-type]


@pytest.mark.timeout(20)
def test_no_stats_before_start_and_start_only_once(link: Link) -> None:
    listener = ConnectionListener(link.connection, timeout=0.2)
    assert listener.stats() is None
    listener.start()
    try:
        with pytest.raises(RuntimeError):
            listener.start()
        stats = listener.stats()
        assert stats is not None and stats.received == 0
    finally:
        listener.close()


# -- delivery and order -------------------------------------------------------


@pytest.mark.timeout(20)
def test_callbacks_added_before_start_get_every_message_in_order(link: Link) -> None:
    listener = ConnectionListener(link.connection, n_processes=4, timeout=0.2)
    recorders = [Recorder() for _ in range(6)]
    for recorder in recorders:
        listener.add_callback(recorder)
    listener.start()
    try:
        for start in range(0, 1000, 100):  # bursts, so batches form
            link.send(*range(start, start + 100))
        for recorder in recorders:
            assert recorder.wait_for(1000) == list(range(1000))
        stats = listener.stats()
        assert stats is not None
        assert (stats.received, stats.dropped, stats.malformed) == (1000, 0, 0)
        assert stats.delivered == 1000 * 4
    finally:
        listener.close()
    for recorder in recorders:
        assert recorder.numbers == list(range(1000))


@pytest.mark.timeout(20)
def test_callback_added_after_start_gets_what_arrives_from_then_on(link: Link) -> None:
    listener = ConnectionListener(link.connection, n_processes=2, timeout=0.2)
    first, second = Recorder(), Recorder()
    listener.add_callback(first)  # slot 0
    listener.start()
    try:
        listener.add_callback(second)  # slot 1
        link.send(*range(10))
        first.wait_for(10)
        second.wait_for(10)
        late, later = Recorder(), Recorder()
        listener.add_callback(late)  # slot 0, with ``first``
        listener.add_callback(later)  # slot 1, with ``second``
        link.send(*range(10, 30))
        assert first.wait_for(30) == list(range(30))
        assert second.wait_for(30) == list(range(30))
        assert late.wait_for(20) == list(range(10, 30))
        assert later.wait_for(20) == list(range(10, 30))
        assert late.thread is first.thread
        assert later.thread is second.thread
        assert late.thread is not later.thread
    finally:
        listener.close()


@pytest.mark.timeout(20)
def test_callback_added_after_start_gets_no_earlier_messages(link: Link) -> None:
    listener = ConnectionListener(link.connection, n_processes=2, timeout=0.2)
    first = Recorder()
    behind = Recorder(block_at=0)
    listener.add_callback(first)  # slot 0
    listener.add_callback(behind)  # slot 1
    listener.start()
    try:
        link.send(*range(10))
        assert behind.entered.wait(WAIT)
        first.wait_for(10)  # so slot 1 has been handed 0..9 as well
        late = Recorder()
        listener.add_callback(Recorder())  # slot 0
        listener.add_callback(late)  # slot 1, behind on 1..9
        behind.gate.set()
        link.send(*range(10, 20))
        assert behind.wait_for(20) == list(range(20))
        assert late.wait_for(10) == list(range(10, 20))
    finally:
        behind.gate.set()
        listener.close()


@pytest.mark.timeout(20)
def test_callbacks_are_spread_round_robin_over_n_processes(link: Link) -> None:
    listener = ConnectionListener(link.connection, n_processes=3, timeout=0.2)
    recorders = [Recorder() for _ in range(7)]
    for recorder in recorders:
        listener.add_callback(recorder)
    listener.start()
    try:
        link.send(*range(50))
        for recorder in recorders:
            assert recorder.wait_for(50) == list(range(50))
    finally:
        listener.close()
    threads = [recorder.thread for recorder in recorders]
    assert len(set(threads)) == 3
    for i, thread in enumerate(threads):
        assert thread.name.startswith("CallbackActor")
        for j, other in enumerate(threads):
            assert (thread is other) == (i % 3 == j % 3)
    assert threading.current_thread() not in threads


@pytest.mark.timeout(20)
def test_one_process_runs_every_callback_on_one_thread_in_order(link: Link) -> None:
    listener = ConnectionListener(link.connection, n_processes=1, timeout=0.2)
    order: list[tuple[str, int]] = []
    done = threading.Event()

    def named(name: str) -> Callable[[Any], None]:
        def callback(message: Any) -> None:
            order.append((name, number_of(message)))
            if name == "b" and number_of(message) == 4:
                done.set()

        return callback

    listener.add_callback(named("a"))
    listener.add_callback(named("b"))
    listener.start()
    try:
        link.send(*range(5))
        assert done.wait(WAIT)
    finally:
        listener.close()
    assert order == [(name, n) for n in range(5) for name in ("a", "b")]


# -- failing and slow callbacks ---------------------------------------------


@pytest.mark.timeout(20)
def test_raising_callback_is_logged_and_disturbs_nothing(link: Link) -> None:
    with captured_events() as logs:
        listener = ConnectionListener(link.connection, n_processes=2, timeout=0.2)
        raiser = Recorder(raise_on=lambda n: n % 3 == 0)
        beside = Recorder()  # same callback actor as the raiser
        elsewhere = Recorder()  # the other callback actor
        listener.add_callback(raiser)
        listener.add_callback(elsewhere)
        listener.add_callback(beside)
        listener.start()
        try:
            link.send(*range(60))
            for recorder in (raiser, beside, elsewhere):
                assert recorder.wait_for(60) == list(range(60))
            assert beside.thread is raiser.thread
            # Still listening after all of that.
            link.send(60, 61)
            for recorder in (raiser, beside, elsewhere):
                assert recorder.wait_for(62) == list(range(62))
            stats = listener.stats()
            assert stats is not None and stats.received == 62
            ref = where_is(listener._supervisor, "callback-0")
            counts = ref.ask(CallbackStats(0, 0), timeout=5)
            assert counts == CallbackStats(handled=62, errors=21)
        finally:
            listener.close()
    errors = [entry for entry in logs if entry["event"] == "callback.error"]
    assert raiser.raised == 21
    assert len(errors) == 21
    assert all("callback fails on" in entry["error"] for entry in errors)
    assert not any(entry["event"] == "actor.restart" for entry in logs)


@pytest.mark.timeout(20)
def test_slow_callback_holds_up_neither_listener_nor_other_actors(link: Link) -> None:
    listener = ConnectionListener(link.connection, n_processes=3, timeout=0.2)
    slow = Recorder(block_at=0)
    others = [Recorder(), Recorder()]
    listener.add_callback(slow)
    for recorder in others:
        listener.add_callback(recorder)
    listener.start()
    try:
        link.send(0)
        assert slow.entered.wait(WAIT)
        link.send(*range(1, 500))
        for recorder in others:
            assert recorder.wait_for(500) == list(range(500))
        assert not slow.gate.is_set()
        assert slow.numbers == [0]
        stats = listener.stats()
        assert stats is not None
        assert stats.received == 500 and stats.dropped == 0
        assert stats.backlogs[0] == 500  # all waiting for the slow one
        slow.gate.set()
        assert slow.wait_for(500) == list(range(500))
    finally:
        slow.gate.set()
        listener.close()


@pytest.mark.timeout(20)
def test_backpressure_drops_overflow_counts_it_and_keeps_order(link: Link) -> None:
    listener = ConnectionListener(
        link.connection, n_processes=2, timeout=0.2, backlog=5
    )
    blocked = Recorder(block_at=0)
    pacer = Recorder()
    listener.add_callback(blocked)  # slot 0
    listener.add_callback(pacer)  # slot 1
    listener.start()
    try:
        # One at a time, so the pacer's own backlog never overflows.
        for number in range(30):
            link.send(number)
            pacer.wait_for(number + 1)
            if number == 0:
                assert blocked.entered.wait(WAIT)
        stats = listener.stats()
        assert stats is not None
        assert stats.received == 30
        assert stats.dropped == 25
        assert stats.backlogs[0] == 5
        assert stats.delivered == 30 + 5
        assert blocked.numbers == [0]
        blocked.gate.set()
        assert blocked.wait_for(5) == [0, 1, 2, 3, 4]
        # Room again: what comes next gets through, in order.
        for number in range(30, 35):
            link.send(number)
            pacer.wait_for(number + 1)
        assert blocked.wait_for(10) == [0, 1, 2, 3, 4, 30, 31, 32, 33, 34]
        assert pacer.numbers == list(range(35))
        stats = listener.stats()
        assert stats is not None and stats.dropped == 25
    finally:
        blocked.gate.set()
        listener.close()
    assert blocked.numbers == [0, 1, 2, 3, 4, 30, 31, 32, 33, 34]
    assert listener.lost == 0


# -- supervision -----------------------------------------------------------


@pytest.mark.timeout(20)
def test_dead_callback_actor_is_restarted_and_its_losses_counted(link: Link) -> None:
    listener = ConnectionListener(link.connection, n_processes=2, timeout=0.2)
    victim = Recorder(block_at=0)
    observer = Recorder()
    listener.add_callback(victim)  # slot 0: callback-0
    listener.add_callback(observer)  # slot 1
    listener.start()
    try:
        supervisor = listener._supervisor
        assert supervisor is not None
        link.send(0)
        assert victim.entered.wait(WAIT)
        old = where_is(supervisor, "callback-0")
        assert old is not None and old.is_alive()
        old.tell(actors.supervision.child.Crash())
        # These reach the old actor's mailbox behind the Crash: lost.
        link.send(1, 2, 3)
        observer.wait_for(4)  # so slot 0 has been handed them too
        victim.gate.set()
        victim.thread.join(WAIT)
        assert not victim.thread.is_alive()
        new = where_is(supervisor, "callback-0")
        assert new is not None and new.actor_urn != old.actor_urn
        assert new.ask(CallbackStats(0, 0), timeout=5) == CallbackStats(0, 0)
        assert listener.lost == 3
        link.send(*range(4, 10))
        assert observer.wait_for(10) == list(range(10))
        assert victim.wait_for(7) == [0, 4, 5, 6, 7, 8, 9]
        assert len(victim.threads) == 2  # the old actor's and the new one's
        stats = cast(
            actors.supervision.messages.SupervisorStats,
            supervisor.ask(actors.supervision.messages.GetSupervisorStats(), timeout=5),
        )
        assert stats.restarts == 1
        assert "callback-0" in stats.running
    finally:
        victim.gate.set()
        listener.close()
    assert listener.lost == 3


@pytest.mark.timeout(20)
def test_restart_accounting_does_not_race_the_listener(
    link: Link, monkeypatch: pytest.MonkeyPatch
) -> None:
    import actors.compat.connection_listener as facade
    from actors.listening.callbacks import CallbackActor

    starting = threading.Event()
    may_start = threading.Event()

    class LateStart(CallbackActor):
        """A restarted callback-0 whose thread gets going a bit late (as
        a busy machine's scheduler may do)."""

        def on_start(self) -> None:
            watch = self.watch
            if (
                watch is not None
                and watch.child_id == "callback-0"
                and watch.incarnation > 1
            ):
                starting.set()
                may_start.wait(WAIT)
            super().on_start()

    monkeypatch.setattr(facade, "CallbackActor", LateStart)
    listener = ConnectionListener(link.connection, n_processes=2, timeout=0.2)
    victim, observer = Recorder(), Recorder()
    listener.add_callback(victim)  # slot 0
    listener.add_callback(observer)  # slot 1
    listener.start()
    try:
        supervisor = listener._supervisor
        assert supervisor is not None
        link.send(0)
        victim.wait_for(1)
        old = where_is(supervisor, "callback-0")
        old.tell(actors.supervision.child.Crash())
        victim.thread.join(WAIT)
        assert starting.wait(WAIT)  # restarted; its on_start not yet run
        link.send(1)
        observer.wait_for(2)  # slot 0 has been handed message 1
        may_start.set()
        assert victim.wait_for(2) == [0, 1]
        stats = listener.stats()
        assert stats is not None
        assert listener.lost == 0, "a delivered message was counted lost"
        assert stats.backlogs[0] == 0
    finally:
        may_start.set()
        listener.close()


@pytest.mark.timeout(20)
def test_dead_callback_actor_with_nothing_waiting_loses_nothing(link: Link) -> None:
    listener = ConnectionListener(link.connection, n_processes=1, timeout=0.2)
    recorder = Recorder()
    listener.add_callback(recorder)
    listener.start()
    try:
        supervisor = listener._supervisor
        assert supervisor is not None
        link.send(0)
        recorder.wait_for(1)
        old = where_is(supervisor, "callback-0")
        old.tell(actors.supervision.child.Crash())
        recorder.thread.join(WAIT)
        new = where_is(supervisor, "callback-0")
        assert new is not None and new.actor_urn != old.actor_urn
        new.ask(CallbackStats(0, 0), timeout=5)
        link.send(1, 2)
        assert recorder.wait_for(3) == [0, 1, 2]
        assert listener.lost == 0
    finally:
        listener.close()


# -- closing -------------------------------------------------------------------


@pytest.mark.timeout(20)
def test_close_returns_once_the_pending_receive_does(link: Link) -> None:
    listener = ConnectionListener(link.connection, timeout=0.2)
    listener.add_callback(Recorder())
    listener.start()
    started = time.monotonic()
    listener.close()
    # Well before close's fallback of timeout + 10 s, however busy the machine.
    assert time.monotonic() - started < 0.2 + 5.0
    assert pykka.ActorRegistry.get_all() == []
    # The connection itself stays open (as in SpiNNMan).
    assert not link.connection.closed


@pytest.mark.timeout(20)
def test_close_before_start_and_twice_is_harmless(link: Link) -> None:
    listener = ConnectionListener(link.connection, timeout=0.2)
    listener.close()
    other = ConnectionListener(link.connection, timeout=0.2)
    other.start()
    other.close()
    other.close()
    assert pykka.ActorRegistry.get_all() == []


@pytest.mark.timeout(20)
def test_close_waits_for_the_running_callback_and_drops_the_queue(link: Link) -> None:
    listener = ConnectionListener(link.connection, n_processes=2, timeout=0.2)
    busy = Recorder(block_at=0)
    observer = Recorder()
    listener.add_callback(busy)
    listener.add_callback(observer)
    listener.start()
    closed = threading.Event()

    def close() -> None:
        listener.close()
        closed.set()

    closer = threading.Thread(target=close)
    try:
        link.send(*range(5))
        assert busy.entered.wait(WAIT)
        observer.wait_for(5)  # so the busy one has been handed all 5
        closer.start()
        assert not closed.wait(0.3), "close() did not wait for the running callback"
        busy.gate.set()
        closer.join(WAIT)
        assert closed.is_set()
        assert busy.numbers == [0]  # 1..4 were still queued: dropped
        assert observer.numbers == [0, 1, 2, 3, 4]
        assert listener.dropped_on_close == 4
        assert not listener.is_alive()
    finally:
        busy.gate.set()
        if closer.ident is not None:
            closer.join(WAIT)


@pytest.mark.timeout(20)
def test_run_on_a_thread_returns_when_close_is_called(link: Link) -> None:
    listener = ConnectionListener(link.connection, timeout=0.2)
    recorder = Recorder()
    listener.add_callback(recorder)
    runner = threading.Thread(target=listener.run)
    runner.start()
    try:
        link.send(0, 1)
        assert recorder.wait_for(2) == [0, 1]
        listener.close()
        runner.join(WAIT)
        assert not runner.is_alive()
    finally:
        if runner.is_alive():
            link.connection.close()
            runner.join(WAIT)
    assert pykka.ActorRegistry.get_all() == []


@pytest.mark.timeout(20)
def test_run_on_a_thread_returns_when_the_connection_closes(link: Link) -> None:
    listener = ConnectionListener(link.connection, timeout=0.2)
    recorder = Recorder()
    listener.add_callback(recorder)
    runner = threading.Thread(target=listener.run)
    runner.start()
    try:
        link.send(0, 1, 2)
        assert recorder.wait_for(3) == [0, 1, 2]
        link.connection.close()
        runner.join(WAIT)
        assert not runner.is_alive()
    finally:
        if runner.is_alive():
            listener.close()
            runner.join(WAIT)
    assert pykka.ActorRegistry.get_all() == []
    assert recorder.numbers == [0, 1, 2]
    listener.close()  # after run() ended: nothing to do, returns


@pytest.mark.timeout(20)
def test_when_the_connection_closes_run_drains_what_was_given(link: Link) -> None:
    listener = ConnectionListener(link.connection, n_processes=2, timeout=0.2)
    busy = Recorder(block_at=0)
    observer = Recorder()
    listener.add_callback(busy)
    listener.add_callback(observer)
    runner = threading.Thread(target=listener.run)
    runner.start()
    try:
        link.send(*range(5))
        assert busy.entered.wait(WAIT)
        observer.wait_for(5)
        link.connection.close()
        assert listener._finished.wait(WAIT)  # the listener actor has stopped
        runner.join(0.3)
        assert runner.is_alive(), "run() returned before the callbacks were done"
        busy.gate.set()
        runner.join(WAIT)
        assert not runner.is_alive()
        assert busy.numbers == [0, 1, 2, 3, 4]
        assert listener.dropped_on_close == 0
    finally:
        busy.gate.set()
        runner.join(WAIT)
    assert pykka.ActorRegistry.get_all() == []


@pytest.mark.timeout(20)
def test_close_while_run_drains_drops_the_rest(link: Link) -> None:
    listener = ConnectionListener(link.connection, n_processes=2, timeout=0.2)
    busy = Recorder(block_at=0)
    observer = Recorder()
    listener.add_callback(busy)
    listener.add_callback(observer)
    runner = threading.Thread(target=listener.run)
    runner.start()
    closed = threading.Event()

    def close() -> None:
        listener.close()
        closed.set()

    closer = threading.Thread(target=close)
    try:
        link.send(*range(5))
        assert busy.entered.wait(WAIT)
        observer.wait_for(5)
        link.connection.close()
        assert listener._finished.wait(WAIT)  # run() is draining now
        closer.start()
        assert not closed.wait(0.3), "close() did not wait for the running callback"
        busy.gate.set()
        closer.join(WAIT)
        assert closed.is_set()
        runner.join(WAIT)
        assert not runner.is_alive()
        assert busy.numbers == [0]
        assert listener.dropped_on_close == 4
    finally:
        busy.gate.set()
        runner.join(WAIT)
        if closer.ident is not None:
            closer.join(WAIT)
    assert pykka.ActorRegistry.get_all() == []


@pytest.mark.timeout(20)
def test_after_close_no_actor_or_thread_remains(link: Link) -> None:
    before = set(threading.enumerate())
    listener = ConnectionListener(link.connection, n_processes=4, timeout=0.2)
    recorders = [Recorder() for _ in range(5)]
    for recorder in recorders:
        listener.add_callback(recorder)
    listener.start()
    link.send(*range(20))
    for recorder in recorders:
        recorder.wait_for(20)
    assert len(pykka.ActorRegistry.get_all()) == 1 + 1 + 4
    listener.close()
    assert pykka.ActorRegistry.get_all() == []
    assert not listener.is_alive()
    left = [
        thread
        for thread in threading.enumerate()
        if thread not in before and thread is not listener
    ]
    names = sorted(thread.name.split("-")[0] for thread in left)
    for thread in left:
        thread.join(WAIT)  # exiting, not stuck
        assert not thread.is_alive(), thread.name
    assert all(
        name in ("CallbackActor", "ListenerActor", "Supervisor", "connection")
        for name in names
    ), names


# -- malformed input ----------------------------------------------------------


@pytest.mark.timeout(20)
def test_malformed_datagrams_are_counted_and_listening_goes_on(link: Link) -> None:
    listener = ConnectionListener(link.connection, n_processes=2, timeout=0.2)
    recorder = Recorder()
    listener.add_callback(recorder)
    listener.start()
    try:
        link.raw(b"\x00\x00\x07")  # 3 bytes
        link.send(0)
        link.raw(b"")  # nothing at all
        link.raw(b"\0\0" + bytes([0x55] * 8))  # unknown SDP flags
        link.send(1)
        link.raw(b"\x01\x02\x03")
        link.send(2)
        assert recorder.wait_for(3) == [0, 1, 2]
        stats = listener.stats()
        assert stats is not None
        assert stats.malformed == 4
        assert stats.received == 3
        assert stats.receive_errors == 0
    finally:
        listener.close()


# -- other Listenables ------------------------------------------------------


@pytest.fixture
def udp_pair() -> Iterator[tuple[UDPConnection, socket.socket]]:
    connection = UDPConnection(local_host="127.0.0.1")
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.bind(("127.0.0.1", 0))
    try:
        yield connection, sender
    finally:
        sender.close()
        connection.close()


@pytest.mark.timeout(20)
def test_plain_udp_connection_delivers_bytes(
    udp_pair: tuple[UDPConnection, socket.socket],
) -> None:
    connection, sender = udp_pair
    listener: ConnectionListener[bytes] = ConnectionListener(
        connection, n_processes=2, timeout=0.2
    )
    raw: list[Any] = []
    recorders = [Recorder(), Recorder(), Recorder()]
    listener.add_callback(raw.append)
    for recorder in recorders:
        listener.add_callback(recorder)
    listener.start()
    address = (connection.local_ip_address, connection.local_port)
    try:
        for start in range(0, 200, 20):
            for number in range(start, start + 20):
                sender.sendto(b"msg-%d" % number, address)
            recorders[0].wait_for(start + 20)  # loopback is not infinite
        for recorder in recorders:
            assert recorder.wait_for(200) == list(range(200))
        assert raw[:3] == [b"msg-0", b"msg-1", b"msg-2"]
        assert all(type(message) is bytes for message in raw)
    finally:
        listener.close()


@pytest.mark.timeout(20)
def test_plain_udp_run_returns_when_the_connection_closes(
    udp_pair: tuple[UDPConnection, socket.socket],
) -> None:
    connection, sender = udp_pair
    listener: ConnectionListener[bytes] = ConnectionListener(connection, timeout=0.2)
    recorder = Recorder()
    listener.add_callback(recorder)
    runner = threading.Thread(target=listener.run)
    runner.start()
    try:
        sender.sendto(b"msg-7", (connection.local_ip_address, connection.local_port))
        assert recorder.wait_for(1) == [7]
        connection.close()
        runner.join(WAIT)
        assert not runner.is_alive()
    finally:
        if runner.is_alive():
            listener.close()
            runner.join(WAIT)
    assert pykka.ActorRegistry.get_all() == []


@pytest.mark.timeout(20)
def test_foreign_datagram_does_not_stall_close(
    udp_pair: tuple[UDPConnection, socket.socket],
) -> None:
    _, peer = udp_pair
    connection = UDPConnection(
        local_host="127.0.0.1",
        remote_host="127.0.0.1",
        remote_port=peer.getsockname()[1],
    )
    foreign = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    foreign.bind(("127.0.0.1", 0))
    listener: ConnectionListener[bytes] = ConnectionListener(connection, timeout=0.2)
    recorder = Recorder()
    listener.add_callback(recorder)
    listener.start()
    address = (connection.local_ip_address, connection.local_port)
    closed = threading.Event()

    def close() -> None:
        listener.close()
        closed.set()

    closer = threading.Thread(target=close)
    try:
        peer.sendto(b"msg-0", address)
        assert recorder.wait_for(1) == [0]
        foreign.sendto(b"msg-1", address)
        peer.sendto(b"msg-2", address)
        assert recorder.wait_for(2) == [0, 2]  # the foreign one is skipped
        foreign.sendto(b"msg-3", address)
        closer.start()
        assert closed.wait(2.0), "close() is stuck behind a foreign datagram"
    finally:
        connection.close()  # wakes a stuck receive
        if closer.is_alive():
            closer.join(WAIT)
        else:
            listener.close()
        foreign.close()


class QueueListenable:
    """The smallest Listenable: any objects, handed out in order."""

    _END = object()

    def __init__(self) -> None:
        self._items: deque[Any] = deque()
        self._changed = threading.Condition()

    def put(self, item: Any) -> None:
        with self._changed:
            self._items.append(item)
            self._changed.notify_all()

    def is_ready_to_receive(self, timeout: float = 0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: bool(self._items), timeout)

    def get_receive_method(self) -> Callable[[], Any]:
        return self.receive

    def receive(self) -> Any:
        with self._changed:
            item = self._items.popleft()
        if item is self._END:
            raise ConnectionClosed("end of the queue")
        return item

    def end(self) -> None:
        self.put(self._END)


@pytest.mark.timeout(20)
def test_any_listenable_works_and_ends_with_connection_closed() -> None:
    source = QueueListenable()
    listener: ConnectionListener[int] = ConnectionListener(
        source, n_processes=2, timeout=0.2
    )
    recorders = [Recorder(), Recorder()]
    for recorder in recorders:
        listener.add_callback(recorder)
    runner = threading.Thread(target=listener.run)
    runner.start()
    try:
        for number in range(100):
            source.put(number)
        for recorder in recorders:
            assert recorder.wait_for(100) == list(range(100))
        source.end()
        runner.join(WAIT)
        assert not runner.is_alive()
    finally:
        if runner.is_alive():
            listener.close()
            runner.join(WAIT)
    assert pykka.ActorRegistry.get_all() == []
