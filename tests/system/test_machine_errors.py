"""Machine: its errors name the board they are about, whether the board
is served in this process or by a worker, lost or closed."""

from __future__ import annotations

import os
import signal
import socket
import time

import pytest

from actors.errors import RequestTimeout, ShutDown, at_board
from actors.placement.links import GroupLink, GroupLost
from actors.placement.machine import Machine
from actors.placement.wire import GroupSpec
from actors.protocol.jobs import ReadJob
from messages.errors import InvalidArgumentError, UnexpectedResponseCodeError
from messages.scp import SCPResult
from tests.system import machine_kit
from tests.system.machine_kit import BASE
from transport import VirtualBoard

#: The kit's fixtures: three boards a module, and no worker left behind.
boards = machine_kit.boards
no_stray_workers = machine_kit.no_stray_workers

# -- errors name their board ---------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("workers", [1, 0])
def test_a_machines_errors_name_the_board(
    boards: list[VirtualBoard], workers: int
) -> None:
    """A Machine's caller has many boards: each error says which one
    (its name, and host:port once), for timeouts and board error codes
    alike, in a worker or in-process; the exception keeps its type."""
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    dead = "{}:{}".format(*silent.getsockname())
    alive = "{}:{}".format(*boards[0].address)
    try:
        with Machine(
            {"dead": silent.getsockname(), "alive": boards[0]},
            workers=workers,
            timeout=0.05,
            retries=1,
        ) as machine:
            with pytest.raises(RequestTimeout) as timeout:
                machine.version("dead")
            text = str(timeout.value)
            assert text.startswith("board 'dead': GetVersion(0,0,0) seq=0: no reply")
            assert f"no reply from {dead} after 2 tries" in text
            assert text.count(dead) == 1

            with pytest.raises(UnexpectedResponseCodeError) as code:
                machine.read("alive", 9, 9, BASE, 4)  # a 2x2 board
            assert str(code.value).startswith(
                f"board 'alive' at {alive}: read at 0x60000000 on 9,9,0: "
                "read memory (CMD_READ) failed: board answered RC_ROUTE (no route"
            )
            assert code.value.result == SCPResult.RC_ROUTE

            (outcome,) = machine.submit([("alive", ReadJob("k", 9, 9, 0, BASE, 4))])
            assert str(outcome.error).startswith(f"board 'alive' at {alive}: ")
            assert machine.version("alive").name == "SC&MP"  # still serves
    finally:
        silent.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("workers", [1, 0])
def test_a_closed_machines_shutdown_names_the_board(
    boards: list[VirtualBoard], workers: int
) -> None:
    """A call on one board of a closed Machine says which board; a batch
    over several boards says only that the machine is closed."""
    address = "{}:{}".format(*boards[0].address)
    machine = Machine({"a": boards[0], "b": boards[1]}, workers=workers)
    machine.version("a")
    machine.close()
    for call in (
        lambda: machine.version("a"),
        lambda: machine.read("a", 0, 0, BASE, 4),
        lambda: machine.board("a").write(0, 0, BASE, b"abcd"),
    ):
        with pytest.raises(ShutDown) as closed:
            call()
        assert str(closed.value).startswith(f"board 'a' at {address}: ")
        assert "closed" in str(closed.value)
    with pytest.raises(ShutDown, match="^the machine is closed$"):
        machine.submit(
            [
                ("a", ReadJob("x", 0, 0, 0, BASE, 4)),
                ("b", ReadJob("y", 0, 0, 0, BASE, 4)),
            ]
        )


@pytest.mark.timeout(90)
def test_health_does_not_wait_for_a_stopped_worker(boards: list[VirtualBoard]) -> None:
    """A worker that cannot answer (stopped) makes its boards
    "unresponsive" within health's timeout, while the other group's
    boards say they serve; once it runs again, they serve too."""
    with Machine(
        {"a": boards[0], "b": boards[1]}, workers=2, heartbeat_deadline=60
    ) as machine:
        assert machine.version("a") and machine.version("b")
        pid = machine.worker_pids[0]
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            health = machine.health(timeout=5)
            waited = time.monotonic() - started
        finally:
            os.kill(pid, signal.SIGCONT)
        assert health["a"].state == "unresponsive", health["a"]
        assert "did not answer in time" in health["a"].reason
        assert not health["a"].up
        assert health["b"].state == "serving", health["b"]
        # Not a timing test: the point is that it does not take the 30 s
        # a question to a group may wait.
        assert waited < 20
        assert machine.health(timeout=30)["a"].state == "serving"


@pytest.mark.timeout(60)
def test_a_lost_groups_errors_name_the_board(boards: list[VirtualBoard]) -> None:
    """Errors made in the parent (a group that could not start) name the
    board of each job too."""

    def never_ready(spec: GroupSpec) -> GroupLink:
        raise GroupLost(f"worker {spec.name} did not start within 30 s")

    address = "{}:{}".format(*boards[1].address)
    machine = Machine({"b": boards[1]}, workers=1, start_link=never_ready)
    try:
        with pytest.raises(GroupLost) as lost:
            machine.read("b", 0, 0, BASE, 256)
        assert str(lost.value).startswith(
            f"board 'b' at {address}: group 'group-0' could not start"
        )
    finally:
        machine.close()


def test_naming_keeps_type_and_leaves_argument_errors() -> None:
    """at_board remakes an error of the same type, once; the caller's
    argument errors, and errors of another shape, are left as they are."""
    named = at_board(RequestTimeout("no reply after 2 tries"), 3, ("h", 1))
    assert type(named) is RequestTimeout
    assert str(named) == "board 3 at h:1: no reply after 2 tries"
    assert at_board(named, 3, ("h", 1)) is named
    bad = InvalidArgumentError("length", -1, "must be positive")
    assert at_board(bad, 3, ("h", 1)) is bad
    odd = OSError(2, "gone")
    assert at_board(odd, 3) is odd
