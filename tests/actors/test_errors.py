"""Callers see our errors, never pykka's: a question to an actor of ours
that has stopped is ShutDown, one it does not answer in time NoAnswer. A
RequestTimeout's facts go wherever it goes."""

from __future__ import annotations

import pickle
import threading
from typing import Any

import pykka
import pytest

from actors.errors import (
    NoAnswer,
    RequestError,
    RequestTimeout,
    ShutDown,
    ask,
    at_board,
)


class Held(pykka.ThreadingActor):
    use_daemon_thread = True

    def __init__(self, release: threading.Event) -> None:
        super().__init__()
        self.release = release

    def on_receive(self, message: Any) -> Any:
        if message == "hold":
            self.release.wait(10)
        return message


@pytest.mark.timeout(20)
def test_ask_answers_or_raises_only_our_errors() -> None:
    release = threading.Event()
    ref = Held.start(release)
    try:
        assert ask(ref, "ping", timeout=5, what="held") == "ping"
        ref.tell("hold")
        with pytest.raises(NoAnswer, match=r"held: no answer within 0.05 s"):
            ask(ref, "ping", timeout=0.05, what="held")
        assert isinstance(NoAnswer("x"), (RequestError, TimeoutError))
    finally:
        release.set()
        ref.stop()
    with pytest.raises(ShutDown, match="held: it has stopped"):
        ask(ref, "ping", timeout=5, what="held")


@pytest.mark.timeout(10)
def test_a_timeouts_facts_pickle_and_survive_naming_its_board() -> None:
    """Its sends, time waited and board address, read by those that must
    say them in their own words (SpiNNMan's exception), cross a process
    boundary and a Machine's naming of the board."""
    error = RequestTimeout(
        "no reply from 127.0.0.1:17893 after 1 try in 0.006 s",
        sends=1,
        waited=0.006,
        address=("127.0.0.1", 17893),
    )
    for again in (pickle.loads(pickle.dumps(error)), at_board(error, "a")):
        assert type(again) is RequestTimeout
        assert (again.sends, again.waited, again.address) == (
            1,
            0.006,
            ("127.0.0.1", 17893),
        )
    assert str(at_board(error, "a")) == f"board 'a': {error}"
    bare = RequestTimeout("no reply after 3 tries")
    assert (bare.sends, bare.waited, bare.address) == (None, None, None)
