"""A `spinnactors board` process on an ephemeral loopback port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


#: Runs the command under an address-space cap (RLIMIT_AS) of {0} bytes.
_CAPPED = (
    "import resource, sys; resource.setrlimit(resource.RLIMIT_AS, ({0}, {0})); "
    "from actors.app.cli import main; sys.exit(main())"
)


def run_cli(
    *args: str,
    stdin: bytes | None = None,
    text: bool = False,
    timeout: float = 30,
    home: Path | None = None,
    memory: int | None = None,
    stdout_closed: bool = False,
) -> subprocess.CompletedProcess[Any]:
    """Run ``spinnactors ARGS`` as a process of its own, as a user would,
    on this checkout's code; its output as bytes (str with ``text``).
    ``memory`` caps its address space (a machine short of memory);
    ``stdout_closed`` runs it as ``spinnactors ARGS >&-`` would."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if home is not None:
        env["HOME"] = str(home)
    command = [sys.executable, "-m", "actors.app.cli", *args]
    if memory is not None:
        command = [sys.executable, "-c", _CAPPED.format(memory), *args]
    if stdout_closed:
        command = ["sh", "-c", 'exec "$@" >&-', "sh", *command]
    return subprocess.run(
        command,
        input=stdin,
        capture_output=True,
        text=text,
        env=env,
        timeout=timeout,
    )


def start_board(*args: str) -> tuple[subprocess.Popen[str], tuple[str, int]]:
    """Start a board process and wait for its `listening on` line."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "actors.app.cli", "board", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("listening on "):
        process.kill()
        raise AssertionError(
            f"board did not start: {line!r} {process.communicate()[1]}"
        )
    host, port = line.split()[-1].rsplit(":", 1)
    return process, (host, int(port))


def stop_board(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()


@pytest.fixture
def board_process() -> Iterator[tuple[str, int]]:
    process, address = start_board()
    try:
        yield address
    finally:
        assert stop_board(process) == 0


@pytest.fixture
def spinnman_setup() -> Iterator[None]:
    """SpiNNMan's test configuration for a SpiNN-5, install() undone after
    (spinnman_kit's; imported here only by the tests that ask for it)."""
    from tests.system.spinnman_kit import spinnman_configured

    with spinnman_configured():
        yield
