"""Callers see our errors, never pykka's: a question to an actor of ours
that has stopped is ShutDown, one it does not answer in time NoAnswer."""

from __future__ import annotations

import threading
from typing import Any

import pykka
import pytest

from actors.errors import NoAnswer, RequestError, ShutDown, ask


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
