"""The pytest kit's ActorSystem finds a child's incarnation without
polling: at once while it runs, after a restart when asked for the next
one, and with a clear failure when there is none."""

from __future__ import annotations

from typing import Any

import pytest

from actors.supervision import Crash, Supervised, Watch, terminate_child
from actors.testing import ActorSystem


class Echo(Supervised):
    def on_receive(self, message: Any) -> Any:
        if message == "ping":
            return "pong"
        return super().on_receive(message)


def echo(watch: Watch) -> Any:
    return Echo.start(watch=watch)


@pytest.mark.timeout(30)
def test_current_waits_for_the_next_incarnation_after_a_crash(
    actor_system: ActorSystem,
) -> None:
    first = actor_system.start("echo", echo, max_restarts=3)
    assert actor_system.current("echo") == first
    first.tell(Crash())
    again = actor_system.current("echo", not_=first)
    assert again != first and again.ask("ping", timeout=5) == "pong"
    assert not first.is_alive()


@pytest.mark.timeout(30)
def test_current_fails_clearly_for_a_stopped_child_or_no_restart(
    actor_system: ActorSystem,
) -> None:
    running = actor_system.start("echo", echo)
    with pytest.raises(AssertionError, match="was not restarted in 0.2 s"):
        actor_system.current("echo", timeout=0.2, not_=running)
    terminate_child(actor_system._homes["echo"], "echo")
    with pytest.raises(AssertionError, match="'echo' is not running"):
        actor_system.current("echo", timeout=5)
