"""RateLimiterActor and RateLimit: real actors, fake clock.

The actor reads the fake clock from its own thread; the tests only move the
clock between synchronous asks, so every outcome is deterministic.
"""

from __future__ import annotations

import math
import pickle
import random
import threading
from collections.abc import Iterator
from typing import Any

import pykka
import pytest

from actors.ratelimit.lease import RateLimit
from actors.ratelimit.limiter import (
    Lease,
    LeaseRequest,
    LimiterCounters,
    LimiterStats,
    RateLimiterActor,
)
from actors.testing import FakeClock
from messages.errors import InvalidArgumentError


@pytest.fixture(autouse=True)
def stop_actors() -> Iterator[None]:
    try:
        yield
    finally:
        pykka.ActorRegistry.stop_all()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(500.0)


def start(clock: FakeClock, tokens: float, fill_rate: float) -> pykka.ActorRef[Any]:
    return RateLimiterActor.start(tokens, fill_rate, clock=clock)


def lease(ref: pykka.ActorRef[Any], tokens: int) -> Lease:
    answer = ref.ask(LeaseRequest(tokens), timeout=5)
    assert isinstance(answer, Lease)
    return answer


def stats(ref: pykka.ActorRef[Any]) -> LimiterCounters:
    answer = ref.ask(LimiterStats(), timeout=5)
    assert isinstance(answer, LimiterCounters)
    return answer


# --- the actor ----------------------------------------------------------------


@pytest.mark.timeout(10)
def test_actor_grants_refuses_and_says_when(clock: FakeClock) -> None:
    ref = start(clock, 10, 2)
    assert lease(ref, 4) == Lease(4, 0.0)
    assert lease(ref, 100) == Lease(6, 0.0)  # capped to what is there
    refused = lease(ref, 1)
    assert refused.granted == 0
    assert refused.retry_after == pytest.approx(0.5)  # one token at 2/s
    clock.advance(0.5)
    assert lease(ref, 8) == Lease(1, 0.0)
    assert stats(ref) == LimiterCounters(leases_asked=4, tokens_granted=11, refusals=1)


@pytest.mark.timeout(10)
def test_actor_refills_correctly_after_idle(clock: FakeClock) -> None:
    ref = start(clock, 10, 1)
    clock.advance(3600)
    assert lease(ref, 10) == Lease(10, 0.0)
    assert lease(ref, 10).granted == 0  # not a second bucketful
    clock.advance(3)
    assert lease(ref, 10) == Lease(3, 0.0)


@pytest.mark.timeout(10)
def test_actor_with_no_refill_refuses_forever_without_blocking(
    clock: FakeClock,
) -> None:
    ref = start(clock, 2, 0)
    assert lease(ref, 5) == Lease(2, 0.0)
    assert lease(ref, 1) == Lease(0, math.inf)
    assert ref.is_alive()


@pytest.mark.timeout(10)
@pytest.mark.parametrize(("tokens", "fill_rate"), [(0, 1), (-1, 1), (10, -1), ("x", 1)])
def test_bad_limiter_arguments_raise_from_start(
    clock: FakeClock, tokens: Any, fill_rate: Any
) -> None:
    with pytest.raises(InvalidArgumentError):
        RateLimiterActor.start(tokens, fill_rate, clock=clock)
    assert pykka.ActorRegistry.get_by_class(RateLimiterActor) == []


@pytest.mark.timeout(10)
@pytest.mark.parametrize("tokens", [0, -3, 1.5, "1", True])
def test_bad_lease_request_cannot_be_built(tokens: Any) -> None:
    with pytest.raises(InvalidArgumentError):
        LeaseRequest(tokens)


@pytest.mark.timeout(10)
def test_unknown_message_is_answered_and_does_not_kill_the_limiter(
    clock: FakeClock,
) -> None:
    ref = start(clock, 3, 1)
    ref.tell("nonsense")
    assert ref.ask(object(), timeout=5) is None
    assert lease(ref, 1) == Lease(1, 0.0)


@pytest.mark.timeout(10)
def test_messages_are_plain_picklable_frozen_data() -> None:
    for message in (
        LeaseRequest(7),
        Lease(3, 0.25),
        Lease(0, math.inf),
        LimiterStats(),
        LimiterCounters(1, 2, 3),
    ):
        assert pickle.loads(pickle.dumps(message)) == message
    with pytest.raises(AttributeError):
        Lease(1, 0.0).granted = 2  # type: ignore[misc]


# --- RateLimit ------------------------------------------------------------------


@pytest.mark.timeout(10)
def test_rate_limit_spends_its_lease_before_asking_again(clock: FakeClock) -> None:
    ref = start(clock, 10, 1)
    limit = RateLimit(ref, lease_size=4)
    now = clock()
    assert limit.take(3, now) == 3  # asks once, holds 1
    assert limit.held == 1
    assert limit.next_ready(now) is None
    assert stats(ref).leases_asked == 1
    assert limit.take(1, now) == 1  # from the purse
    assert stats(ref).leases_asked == 1
    assert limit.take(6, now) == 4  # one new lease of 4
    assert limit.held == 0
    assert stats(ref) == LimiterCounters(2, 8, 0, tokens=2.0)  # 10 less 8 granted
    assert limit.take(0, now) == 0  # wanting nothing asks nothing
    assert stats(ref).leases_asked == 2


@pytest.mark.timeout(10)
def test_rate_limit_waits_out_a_refusal_without_asking(clock: FakeClock) -> None:
    ref = start(clock, 4, 2)
    limit = RateLimit(ref, lease_size=4)
    assert limit.take(4, clock()) == 4
    assert limit.take(1, clock()) == 0  # refused: 1 token at 2/s
    assert limit.blocked_until == pytest.approx(clock() + 0.5)
    assert limit.next_ready(clock()) == pytest.approx(clock() + 0.5)
    asked = stats(ref).leases_asked
    clock.advance(0.25)
    assert limit.take(1, clock()) == 0  # still blocked: no ask
    assert stats(ref).leases_asked == asked
    clock.advance(0.25)
    assert limit.next_ready(clock()) == pytest.approx(clock())
    assert limit.take(3, clock()) == 1  # the one token that is in
    assert stats(ref) == LimiterCounters(3, 5, 1)


@pytest.mark.timeout(10)
def test_lease_larger_than_capacity_is_capped_not_refused(clock: FakeClock) -> None:
    ref = start(clock, 5, 10)
    limit = RateLimit(ref, lease_size=1000)
    assert limit.take(1000, clock()) == 5
    clock.advance(0.3)
    assert limit.take(1000, clock()) == 3


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("lease_size", "ask_timeout"),
    [(0, 1.0), (-1, 1.0), (2.5, 1.0), (4, 0), (4, -1), (4, math.nan)],
)
def test_bad_rate_limit_arguments_raise(
    clock: FakeClock, lease_size: Any, ask_timeout: Any
) -> None:
    ref = start(clock, 5, 1)
    with pytest.raises(InvalidArgumentError):
        RateLimit(ref, lease_size=lease_size, ask_timeout=ask_timeout)


@pytest.mark.timeout(10)
def test_rate_limit_bad_wanted_raises(clock: FakeClock) -> None:
    limit = RateLimit(start(clock, 5, 1))
    with pytest.raises(InvalidArgumentError):
        limit.take(-1, clock())


def _simulate(
    clock: FakeClock,
    limits: list[RateLimit],
    seconds: float,
    step: float,
    capacity: float,
    rate: float,
    seed: int,
) -> list[int]:
    """Drive the limits in turn; check the running total against the bound."""
    rng = random.Random(seed)
    start_time = clock()
    totals = [0] * len(limits)
    while clock() - start_time < seconds:
        for index, limit in enumerate(limits):
            totals[index] += limit.take(rng.randint(0, 20), clock())
            elapsed = clock() - start_time
            assert sum(totals) <= capacity + rate * elapsed + 1e-6, elapsed
        clock.advance(step)
    return totals


@pytest.mark.timeout(10)
def test_one_user_never_exceeds_capacity_plus_refill(clock: FakeClock) -> None:
    capacity, rate, seconds = 16, 50.0, 20.0
    ref = start(clock, capacity, rate)
    totals = _simulate(
        clock,
        [RateLimit(ref, lease_size=8)],
        seconds,
        step=0.01,
        capacity=capacity,
        rate=rate,
        seed=1,
    )
    # The bound holds and the user is not starved either.
    assert sum(totals) >= 0.9 * rate * seconds


@pytest.mark.timeout(10)
def test_users_sharing_one_limiter_never_exceed_it_together(clock: FakeClock) -> None:
    capacity, rate, seconds = 32, 200.0, 10.0
    ref = start(clock, capacity, rate)
    limits = [RateLimit(ref, lease_size=size) for size in (4, 8, 16, 64)]
    totals = _simulate(
        clock, limits, seconds, step=0.01, capacity=capacity, rate=rate, seed=2
    )
    assert all(total > 0 for total in totals)
    assert sum(totals) >= 0.9 * rate * seconds
    assert stats(ref).tokens_granted >= sum(totals)


@pytest.mark.timeout(10)
def test_users_on_their_own_threads_never_exceed_a_fixed_budget(
    clock: FakeClock,
) -> None:
    budget = 3000
    ref = start(clock, budget, 0)  # no refill: a fixed budget
    totals: list[int] = []
    lock = threading.Lock()
    go = threading.Barrier(6)

    def user() -> None:
        limit = RateLimit(ref, lease_size=7)
        mine = 0
        go.wait()
        while True:
            got = limit.take(5, clock())
            if got == 0 and limit.next_ready(clock()) == math.inf:
                break
            mine += got
        with lock:
            totals.append(mine)

    threads = [threading.Thread(target=user) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=8)
        assert not thread.is_alive()
    assert sum(totals) == budget


@pytest.mark.timeout(10)
def test_rate_limit_treats_a_silent_limiter_as_a_refusal(clock: FakeClock) -> None:
    release = threading.Event()

    class Stuck(pykka.ThreadingActor):
        def on_receive(self, message: Any) -> Any:
            release.wait(timeout=8)
            return Lease(1, 0.0)

    ref = Stuck.start()
    try:
        limit = RateLimit(ref, lease_size=4, ask_timeout=0.05)
        assert limit.take(1, clock()) == 0
        assert limit.blocked_until == pytest.approx(clock() + 0.05)
    finally:
        release.set()


@pytest.mark.timeout(10)
def test_rate_limit_fails_loudly_when_the_limiter_is_gone(clock: FakeClock) -> None:
    ref = start(clock, 5, 1)
    limit = RateLimit(ref)
    ref.stop()
    with pytest.raises(pykka.ActorDeadError):
        limit.take(1, clock())
