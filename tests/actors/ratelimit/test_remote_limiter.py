"""RemoteLimiter: a group's stand-in for the parent's rate limiter.

The parent's side is played by the test: it takes the LeaseAsks the
limiter sends and answers them (by hand, or from a real RateLimiterActor).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, cast

import pykka
import pytest

from actors.ratelimit.lease import RateLimit
from actors.ratelimit.limiter import Lease, LeaseRequest, RateLimiterActor
from actors.ratelimit.remote import LeaseAsk, LeaseGrant, RemoteLimiter
from messages.errors import InvalidArgumentError


class Parent:
    """Where a group's asks go: a queue the test reads."""

    def __init__(self) -> None:
        self.asks: queue.SimpleQueue[LeaseAsk] = queue.SimpleQueue()
        self.limiter = RemoteLimiter(self.asks.put)

    def next_ask(self) -> LeaseAsk:
        return self.asks.get(timeout=5)


def in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """Run ``call`` on a thread; its result or exception lands in the list."""
    result: list[Any] = []

    def run() -> None:
        try:
            result.append(call())
        except Exception as error:  # noqa: BLE001 - the test looks at it
            result.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


@pytest.mark.timeout(10)
def test_an_ask_crosses_as_a_lease_ask_and_returns_the_grant() -> None:
    parent = Parent()
    thread, result = in_thread(lambda: parent.limiter.ask(LeaseRequest(32), timeout=5))
    ask = parent.next_ask()
    assert ask.tokens == 32
    parent.limiter.answer(LeaseGrant(ask.ticket, Lease(20, 0.0)))
    thread.join(5)
    assert result == [Lease(20, 0.0)]
    assert parent.limiter.waiting == 0


@pytest.mark.timeout(10)
def test_concurrent_asks_each_get_their_own_answer() -> None:
    parent = Parent()
    threads = [
        in_thread(
            lambda n=n: parent.limiter.ask(  # type: ignore[misc]
                LeaseRequest(n), timeout=5
            )
        )
        for n in (1, 2, 3)
    ]
    asks = [parent.next_ask() for _ in threads]
    for ask in reversed(asks):  # answered out of order
        parent.limiter.answer(LeaseGrant(ask.ticket, Lease(ask.tokens, 0.0)))
    for (thread, result), n in zip(threads, (1, 2, 3), strict=True):
        thread.join(5)
        assert result == [Lease(n, 0.0)]


@pytest.mark.timeout(10)
def test_no_answer_in_time_is_a_timeout_and_a_late_one_is_dropped() -> None:
    parent = Parent()
    with pytest.raises(pykka.Timeout):
        parent.limiter.ask(LeaseRequest(8), timeout=0.05)
    ask = parent.next_ask()
    assert parent.limiter.waiting == 0
    parent.limiter.answer(LeaseGrant(ask.ticket, Lease(8, 0.0)))  # dropped
    assert parent.limiter.waiting == 0


@pytest.mark.timeout(10)
def test_a_limiter_that_has_gone_is_an_actor_dead_error() -> None:
    parent = Parent()
    thread, result = in_thread(lambda: parent.limiter.ask(LeaseRequest(8), timeout=5))
    ask = parent.next_ask()
    parent.limiter.answer(LeaseGrant(ask.ticket, None, "the rate limiter has stopped"))
    thread.join(5)
    (error,) = result
    assert isinstance(error, pykka.ActorDeadError)
    assert "has stopped" in str(error)


@pytest.mark.timeout(10)
def test_close_wakes_waiting_asks_and_refuses_new_ones() -> None:
    parent = Parent()
    thread, result = in_thread(lambda: parent.limiter.ask(LeaseRequest(8), timeout=5))
    parent.next_ask()
    parent.limiter.close()
    thread.join(5)
    assert isinstance(result[0], pykka.ActorDeadError)
    with pytest.raises(pykka.ActorDeadError):
        parent.limiter.ask(LeaseRequest(8), timeout=5)


@pytest.mark.timeout(10)
def test_only_lease_requests_are_asked() -> None:
    with pytest.raises(InvalidArgumentError, match="LeaseRequest"):
        Parent().limiter.ask("tokens please", timeout=1)


@pytest.fixture
def shared() -> Iterator[pykka.ActorRef[Any]]:
    ref = RateLimiterActor.start(10, 1e-6)  # ten tokens, next to no refill
    yield ref
    ref.stop()


@pytest.mark.timeout(10)
def test_rate_limits_over_remote_limiters_share_one_bucket(
    shared: pykka.ActorRef[Any],
) -> None:
    """Two groups' purses, each over its own RemoteLimiter, answered by
    one RateLimiterActor as a parent does: together they get its ten
    tokens and no more."""
    parents = [Parent(), Parent()]
    stop = threading.Event()

    def serve(parent: Parent) -> None:
        while not stop.is_set():
            try:
                ask = parent.asks.get(timeout=0.05)
            except queue.Empty:
                continue
            lease = cast(
                "Lease | None", shared.ask(LeaseRequest(ask.tokens), timeout=5)
            )
            parent.limiter.answer(LeaseGrant(ask.ticket, lease))

    servers = [
        threading.Thread(target=serve, args=(parent,), daemon=True)
        for parent in parents
    ]
    for server in servers:
        server.start()
    try:
        purses = [RateLimit(parent.limiter, lease_size=4) for parent in parents]
        taken = 0
        for now in range(6):
            for purse in purses:
                taken += purse.take(5, float(now))
        assert taken == 10
    finally:
        stop.set()
        for server in servers:
            server.join(5)
