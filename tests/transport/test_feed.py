"""MessageFeed: a Listenable fed from another thread (a worker process's
reader, in a Machine), alone and under a real ConnectionListener."""

from __future__ import annotations

import threading
import time

import pytest

from actors.compat.connection_listener import ConnectionListener
from actors.placement.feed import MessageFeed
from transport.errors import ConnectionClosed, ReceiveTimeout


@pytest.mark.timeout(10)
def test_messages_come_out_in_the_order_they_went_in() -> None:
    feed: MessageFeed[int] = MessageFeed()
    feed.add([1, 2])
    feed.add([])
    feed.add(iter([3, 4, 5]))
    assert [feed.receive(0) for _ in range(5)] == [1, 2, 3, 4, 5]
    assert feed.dropped == 0
    assert feed.get_receive_method() is not None
    feed.add([6])
    assert feed.get_receive_method()() == 6


@pytest.mark.timeout(10)
def test_beyond_the_limit_messages_are_dropped_and_counted() -> None:
    feed: MessageFeed[int] = MessageFeed(limit=3)
    feed.add(range(5))
    assert feed.dropped == 2
    feed.add([99])
    assert feed.dropped == 3
    assert [feed.receive(0) for _ in range(3)] == [0, 1, 2]  # the first kept
    # Room again: taken, not dropped.
    feed.add([7, 8])
    assert feed.dropped == 3
    assert [feed.receive(0), feed.receive(0)] == [7, 8]


@pytest.mark.timeout(10)
def test_receive_times_out_with_receive_timeout() -> None:
    feed: MessageFeed[int] = MessageFeed()
    with pytest.raises(ReceiveTimeout):
        feed.receive(0)
    begun = time.monotonic()
    with pytest.raises(ReceiveTimeout):
        feed.receive(0.05)
    assert time.monotonic() - begun >= 0.04
    assert not feed.is_ready_to_receive()
    assert not feed.is_ready_to_receive(0.01)


@pytest.mark.timeout(10)
def test_close_drains_what_waits_then_raises_connection_closed() -> None:
    feed: MessageFeed[str] = MessageFeed()
    feed.add(["a", "b"])
    feed.close()
    assert feed.is_ready_to_receive()
    assert feed.receive(0) == "a"
    assert feed.receive() == "b"  # None: would wait for ever, but closed
    with pytest.raises(ConnectionClosed):
        feed.receive(0)
    with pytest.raises(ConnectionClosed):
        feed.receive(None)
    # A closed feed is "ready": a reader finds out at once that it closed.
    assert feed.is_ready_to_receive(5)
    feed.add(["late", "later"])
    assert feed.dropped == 2
    with pytest.raises(ConnectionClosed):
        feed.receive(0)
    feed.close()  # twice is fine


@pytest.mark.timeout(10)
def test_a_waiting_receive_wakes_for_an_add_from_another_thread() -> None:
    feed: MessageFeed[int] = MessageFeed()
    got: list[int] = []
    waiting = threading.Event()

    def reader() -> None:
        waiting.set()
        got.append(feed.receive(None))

    thread = threading.Thread(target=reader)
    thread.start()
    assert waiting.wait(5)
    feed.add([42])
    thread.join(5)
    assert got == [42]


@pytest.mark.timeout(10)
def test_a_waiting_receive_wakes_for_close() -> None:
    feed: MessageFeed[int] = MessageFeed()
    raised: list[BaseException] = []
    ready: list[bool] = []
    waiting = threading.Event()

    def reader() -> None:
        waiting.set()
        ready.append(feed.is_ready_to_receive(30))
        try:
            feed.receive(30)
        except ConnectionClosed as error:
            raised.append(error)

    thread = threading.Thread(target=reader)
    thread.start()
    assert waiting.wait(5)
    begun = time.monotonic()
    feed.close()
    thread.join(5)
    assert not thread.is_alive()
    assert time.monotonic() - begun < 5  # woken, not timed out
    assert ready == [True]
    assert len(raised) == 1


@pytest.mark.timeout(20)
def test_a_connection_listener_hears_everything_in_order() -> None:
    feed: MessageFeed[int] = MessageFeed()
    listener: ConnectionListener[int] = ConnectionListener(feed, n_processes=2)
    total = 5000
    heard: dict[str, list[int]] = {"one": [], "two": [], "three": []}
    done = {name: threading.Event() for name in heard}

    def callback(name: str) -> object:
        def hear(message: int) -> None:
            heard[name].append(message)
            if len(heard[name]) == total:
                done[name].set()

        return hear

    for name in heard:
        listener.add_callback(callback(name))  # type: ignore[arg-type]
    listener.start()

    def producer() -> None:
        # In batches of varying size, as a worker's reader hands them on.
        sent = 0
        size = 1
        while sent < total:
            batch = list(range(sent, min(total, sent + size)))
            feed.add(batch)
            sent += len(batch)
            size = size % 97 + 1

    thread = threading.Thread(target=producer)
    thread.start()
    thread.join(10)
    try:
        for name, event in done.items():
            assert event.wait(10), f"{name} heard {len(heard[name])}"
        for messages in heard.values():
            assert messages == list(range(total))
        assert feed.dropped == 0
        stats = listener.stats()
        assert stats is not None and stats.received == total
        assert stats.dropped == 0
    finally:
        listener.close()


@pytest.mark.timeout(20)
def test_closing_the_feed_ends_a_running_listener() -> None:
    feed: MessageFeed[str] = MessageFeed()
    listener: ConnectionListener[str] = ConnectionListener(feed, n_processes=1)
    heard: list[str] = []
    got = threading.Event()

    def hear(message: str) -> None:
        heard.append(message)
        got.set()

    listener.add_callback(hear)
    threads_before = set(threading.enumerate())
    runner = threading.Thread(target=listener.run)
    runner.start()
    feed.add(["first"])
    assert got.wait(5)
    feed.add(["last"])
    feed.close()
    runner.join(10)  # run() returns once the feed has closed
    assert not runner.is_alive()
    assert heard == ["first", "last"]
    for thread in set(threading.enumerate()) - threads_before:
        thread.join(5)
        assert not thread.is_alive(), thread.name
    listener.close()  # after run(): nothing left to do
