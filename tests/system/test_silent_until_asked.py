"""Nothing is printed unless the host sets logging up (issue 14).

Each test runs a script in a fresh interpreter, as a user's program would
be: a real VirtualBoard on 127.0.0.1, a real client, a connection actor
crashed and restarted (or a Machine's worker process killed). Without
logging set up the child's stderr stays empty; with `logging.basicConfig`
the same events reach the host's handler, so the quiet case is not quiet
merely because nothing was logged.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

CRASH_AND_RESTART = """
import logging
{setup}
from actors import connect
from actors.supervision.child import Crash
from transport import VirtualBoard

with VirtualBoard(width=2, height=2) as board:
    host, port = board.address
    with connect(host, port) as client:
        client.write(1, 1, 0x60000000, b"\\x5a" * 4)
        first = client.connection_actor
        first.tell(Crash())
        assert first.actor_stopped.wait(30)
        back = client.read(1, 1, 0x60000000, 4)
        again = client.connection_actor
        print("read after restart:", back.hex(), again.actor_urn != first.actor_urn)
"""
CRASH_OUTPUT = "read after restart: 5a5a5a5a True\n"

KILLED_WORKER = """
import logging, os, signal
{setup}
from actors.placement import Machine
from transport import VirtualBoard

with VirtualBoard(width=2, height=2) as board:
    with Machine([board.address], workers=1) as machine:
        before = machine.version(0).name
        (pid,) = machine.worker_pids
        os.kill(pid, signal.SIGKILL)
        print("version before and after a killed worker:", before, machine.version(0).name)
"""
WORKER_OUTPUT = "version before and after a killed worker: SC&MP SC&MP\n"

HOST_SETS_UP = "logging.basicConfig(level=logging.INFO, format='%(name)s %(message)s')"


def run(script: str, setup: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script.format(setup=setup)],
        capture_output=True,
        text=True,
        timeout=50,
    )


@pytest.mark.timeout(60)
def test_a_crashed_and_restarted_connection_prints_nothing() -> None:
    result = run(CRASH_AND_RESTART)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout == CRASH_OUTPUT


@pytest.mark.timeout(60)
def test_the_same_events_reach_a_hosts_handler() -> None:
    result = run(CRASH_AND_RESTART, HOST_SETS_UP)
    assert result.returncode == 0, result.stderr
    assert result.stdout == CRASH_OUTPUT
    lines = result.stderr.splitlines()
    # (an injected crash, as this one is, is logged as such, not as a failure)
    for event in ("connection.crash_injected", "actor.exit", "actor.restart"):
        assert any(line.startswith("actors.") and event in line for line in lines), (
            event,
            result.stderr,
        )


@pytest.mark.timeout(60)
def test_a_killed_and_restarted_worker_prints_nothing() -> None:
    result = run(KILLED_WORKER)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout == WORKER_OUTPUT


@pytest.mark.timeout(60)
def test_a_workers_records_reach_a_hosts_handler() -> None:
    """The worker's records cross to the parent and propagate past the
    library's NullHandler to the root handler the host set up; so do the
    parent's own."""
    result = run(KILLED_WORKER, HOST_SETS_UP)
    assert result.returncode == 0, result.stderr
    assert result.stdout == WORKER_OUTPUT
    lines = result.stderr.splitlines()
    for expected in (
        "actors.placement.worker group.started",
        "actors.placement.parent group.lost",
        "actors.supervision.supervisor actor.restart",
    ):
        assert expected in lines, (expected, result.stderr)
    assert lines.count("actors.placement.worker group.started") == 2
