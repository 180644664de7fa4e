"""Answers awaited together until one shared deadline (actors/answers.py),
asked of real pykka actors on their own threads: one that answers at
once, one that answers while the caller waits, one held until the test
ends, one that stops while asked."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pykka
import pytest

from actors.answers import Missing, answer_by, ask_now

#: Long enough that a loaded machine answers a prompt party well within
#: it, short enough that a test that waits for it stays quick.
DEADLINE = 2.0


class Party(pykka.ThreadingActor):
    """Answers each question with (its name, the question) once
    ``release`` is set; a told "fail" raises once released (a failure:
    the actor stops, and what it was still asked ends ActorDeadError)."""

    def __init__(self, name: str, release: threading.Event) -> None:
        super().__init__()
        self.name = name
        self.release = release

    def on_receive(self, message: Any) -> Any:
        assert self.release.wait(30), f"{self.name} was never released"
        if message == "fail":
            raise RuntimeError(f"{self.name} failed, as told")
        return (self.name, message)


@pytest.fixture
def held() -> Iterator[threading.Event]:
    """An event set when the test ends: parties waiting on it are held
    until then (a stuck actor), and then stop."""
    release = threading.Event()
    yield release
    release.set()


@pytest.fixture(autouse=True)
def _stop_parties() -> Iterator[None]:
    yield
    for ref in pykka.ActorRegistry.get_by_class(Party):
        ref.stop(block=False)


def party(name: str, release: threading.Event) -> pykka.ActorRef[Party]:
    return Party.start(name, release)


def released() -> threading.Event:
    event = threading.Event()
    event.set()
    return event


@pytest.mark.timeout(30)
def test_answers_in_the_order_asked_and_a_stuck_party_is_late(
    held: threading.Event,
) -> None:
    """Each party is asked before any is waited for; the stuck one is
    LATE, no sooner than the deadline; the one that answers while the
    caller waits, and the one whose answer is there once the deadline has
    passed, are taken; a party with no actor, or a stopped one, is GONE."""
    slow_release = threading.Event()
    stopped = party("stopped", released())
    stopped.stop()
    refs: list[tuple[str, pykka.ActorRef[Any] | None]] = [
        ("prompt", party("prompt", released())),
        ("slow", party("slow", slow_release)),
        ("stuck", party("stuck", held)),
        ("after", party("after", released())),
        ("stopped", stopped),
        ("none", None),
    ]
    asked = [(key, ask_now(ref, "q")) for key, ref in refs]
    deadline = time.monotonic() + DEADLINE
    # Released once asked, to answer while the caller waits on it (any
    # time well before the deadline will do).
    timer = threading.Timer(DEADLINE / 8, slow_release.set)
    timer.start()
    try:
        answers = [(key, answer_by(future, deadline)) for key, future in asked]
    finally:
        timer.cancel()
    assert time.monotonic() >= deadline
    assert answers == [
        ("prompt", ("prompt", "q")),
        ("slow", ("slow", "q")),
        ("stuck", Missing.LATE),
        ("after", ("after", "q")),
        ("stopped", Missing.GONE),
        ("none", Missing.GONE),
    ]


@pytest.mark.timeout(30)
def test_stuck_parties_share_one_deadline(held: threading.Event) -> None:
    """Three stuck parties are waited for until one deadline, not one
    timeout each: the wait ends about the deadline, well before three."""
    futures = [ask_now(party(f"stuck {n}", held), "q") for n in range(3)]
    started = time.monotonic()
    deadline = started + DEADLINE
    answers = [answer_by(future, deadline) for future in futures]
    took = time.monotonic() - started
    assert answers == [Missing.LATE] * 3
    assert DEADLINE <= took < 2 * DEADLINE


@pytest.mark.timeout(30)
def test_a_party_that_stops_while_asked_is_gone() -> None:
    """A party that fails (and so stops) before it comes to the question
    is GONE, at once, not LATE at the deadline."""
    release = threading.Event()
    ref = party("failing", release)
    ref.tell("fail")  # handled first, once released
    future = ask_now(ref, "q")
    assert future is not None
    release.set()
    started = time.monotonic()
    assert answer_by(future, started + 10 * DEADLINE) is Missing.GONE
    assert time.monotonic() - started < 5 * DEADLINE


@pytest.mark.timeout(30)
def test_an_error_of_the_party_is_raised() -> None:
    """An error the party raises in answer is the caller's, as pykka
    gives it: neither GONE nor LATE hides it."""
    future = ask_now(party("failing", released()), "fail")
    assert future is not None
    with pytest.raises(RuntimeError, match="failed, as told"):
        answer_by(future, time.monotonic() + DEADLINE)
