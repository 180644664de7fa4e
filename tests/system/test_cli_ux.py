"""The command line as a newcomer meets it: help, versions, where options
go, and errors that say where and what next. Real processes, real UDP."""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import re
import signal
import socket
import struct
import subprocess
import sys
import termios
from collections.abc import Iterator

import pyte
import pytest

from actors.app.parser import build_parser
from tests.system.conftest import ROOT, start_board

#: The bar's glyph, and what every console log line has.
BAR = "━"
LOG_LINE = re.compile(r"\[(debug|info|warning|error|critical) *\]")


def run(*args: str, module: str = "actors.app.cli") -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def closed_port() -> int:
    """A local UDP port nothing listens on (the host answers ICMP refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as gone:
        gone.bind(("127.0.0.1", 0))
        return int(gone.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A bound UDP port that never answers (no ICMP either)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        yield int(silent.getsockname()[1])


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no subcommands")


@pytest.mark.timeout(30)
@pytest.mark.parametrize("module", ["actors.app.cli", "actors"])
def test_version_and_python_m_actors(module: str) -> None:
    result = run("--version", module=module)
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"spinnactors \d+\.\d+\.\d+\S*", result.stdout.strip())


@pytest.mark.timeout(30)
def test_every_command_and_option_is_described_with_an_example() -> None:
    commands = subcommands()
    assert set(commands) == {
        "board",
        "version",
        "read",
        "write",
        "demo",
        "bench",
        "dissector",
        "replay",
        "boot",
        "power",
        "sensors",
        "discover",
    }
    for name, parser in commands.items():
        assert parser.description, name
        assert parser.epilog and f"spinnactors {name}" in parser.epilog, name
        for action in parser._actions:
            assert action.help, f"{name}: {action.dest} has no help"
        text = parser.format_help()
        assert "(default: (default" not in text and "(default: None)" not in text
    read_help = commands["read"].format_help()
    for shown in ("(default: 8)", "(default: 1.0)", "(default: 10)", "(default: 0)"):
        assert shown in read_help, shown


@pytest.mark.timeout(30)
def test_usage_errors_are_one_line_pointing_at_help() -> None:
    result = run("read", "0", "q", "0", "1")
    assert result.returncode == 2
    assert result.stderr == (
        "spinnactors read: error: argument y: 'q' is not a chip y "
        "(see: spinnactors read --help)\n"
    )
    top = run("teleport")
    assert top.returncode == 2
    assert top.stderr.strip().endswith("(see: spinnactors --help)")


@pytest.mark.timeout(30)
def test_common_options_go_before_or_after_the_command(
    board_process: tuple[str, int],
) -> None:
    host, port = board_process
    before = run("--log-format", "json", "-v", "--port", str(port), "version")
    after = run("version", "--log-format", "json", "-v", "--port", str(port))
    for result in (before, after):
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "SC&MP 4.0.0 on Virtual at 0,0,0"
    # After the command wins over before it.
    mixed = run("--port", "1", "version", "--host", host, "--port", str(port))
    assert mixed.returncode == 0, mixed.stderr


@pytest.mark.timeout(30)
def test_a_closed_port_is_refused_at_once_naming_the_board() -> None:
    port = closed_port()
    result = run("version", "--port", str(port))  # default: 10 retries, 1 s each
    assert result.returncode == 1
    assert result.stderr == (
        f"spinnactors version: error: 127.0.0.1:{port} refused: nothing listens "
        f"on that port (ICMP port unreachable); check the address, or that a "
        f"board is there (spinnactors board serves a virtual one)\n"
    )


@pytest.mark.timeout(30)
def test_a_silent_board_says_one_try_where_and_how_long(silent_port: int) -> None:
    result = run("version", "--port", str(silent_port), "--retries", "0")
    assert result.returncode == 1
    assert re.fullmatch(
        rf"spinnactors version: error: GetVersion\(0,0,0\) seq=0: no reply from "
        rf"127\.0\.0\.1:{silent_port} after 1 try in \d+\.\d s; check the "
        rf"address, or that a board answers there \(spinnactors board serves a "
        rf"virtual one\); a board not booted yet is silent: boot it with "
        rf"spinnactors boot 127\.0\.0\.1 --port {silent_port}\n",
        result.stderr,
    ), result.stderr


@pytest.mark.timeout(30)
def test_an_error_code_gets_a_plain_sentence(board_process: tuple[str, int]) -> None:
    _, port = board_process
    result = run("read", "9", "9", "0x60000000", "16", "--port", str(port))
    assert result.returncode == 1
    assert result.stderr == (
        "spinnactors read: error: read at 0x60000000 on 9,9,0: read memory (CMD_READ) "
        "failed: board answered RC_ROUTE (no route to that chip: is it on this "
        "board?)\n"
    )


@pytest.mark.timeout(30)
def test_read_will_not_write_binary_to_a_terminal(
    board_process: tuple[str, int],
) -> None:
    _, port = board_process
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    primary, secondary = pty.openpty()
    try:
        command = [sys.executable, "-m", "actors", "read", "0", "0", "0x60000000"]
        refused = subprocess.run(
            [*command, "16", "--port", str(port)],
            stdout=secondary,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            timeout=30,
        )
        insisted = subprocess.run(
            [*command, "16", "--port", str(port), "-o", "-"],
            stdout=secondary,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            timeout=30,
        )
    finally:
        os.close(secondary)
        os.close(primary)
    assert refused.returncode == 2
    assert refused.stderr == (
        "spinnactors read: error: will not write binary data to a terminal: "
        "give -o FILE, pipe it on, or say -o - to write it here anyway "
        "(see: spinnactors read --help)\n"
    )
    assert insisted.returncode == 0, insisted.stderr


@pytest.mark.timeout(30)
def test_the_board_says_what_it_did_when_it_stops() -> None:
    process, (_, port) = start_board("--width", "2", "--height", "2")
    try:
        asked = run("version", "1", "1", "--port", str(port))
        assert asked.returncode == 0, asked.stderr
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=20)
    assert process.returncode == 0
    assert re.fullmatch(
        rf"stopped 127\.0\.0\.1:{port} after \d+\.\d s: 1 requests, 1 replies "
        r"\(0 with an error code\), 0 malformed, 0 dropped when full, 0 busy "
        r"answers",
        out.strip().splitlines()[-1],
    ), out


@pytest.mark.timeout(60)
def test_bench_and_demo_with_only_a_port_use_that_board_on_this_host(
    board_process: tuple[str, int],
) -> None:
    _, port = board_process
    bench = run("bench", "--port", str(port), "--mib", "0.1", "--rounds", "1")
    assert bench.returncode == 0, bench.stderr
    assert "virtual board" not in bench.stdout
    demo = run("demo", "--port", str(port), "--kib", "16")
    assert demo.returncode == 0, demo.stderr
    assert demo.stdout.startswith(f"board 127.0.0.1:{port}: SC&MP")


def screen_of(*args: str, columns: int = 120, rows: int = 400) -> tuple[int, list[str]]:
    """Run the command on a pseudo-terminal; its exit status and the lines
    a terminal of that size shows at the end (pyte emulates it)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS=str(columns))
    pid, fd = pty.fork()
    if pid == 0:  # the child: the command, on the terminal
        os.execve(sys.executable, [sys.executable, "-m", "actors", *args], env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    screen = pyte.Screen(columns, rows)
    stream = pyte.ByteStream(screen)
    try:
        while True:
            try:
                data = os.read(fd, 1 << 16)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            stream.feed(data)
    finally:
        os.close(fd)
        _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), [
        line.rstrip() for line in screen.display if line.strip()
    ]


@pytest.mark.timeout(60)
def test_the_demo_on_a_terminal_keeps_logs_above_its_bars_and_explains() -> None:
    status, lines = screen_of("demo", "--kib", "1024", "-v")
    text = "\n".join(lines)
    assert status == 0, text
    bars = [line for line in lines if BAR in line and "MiB" in line]
    logs = [line for line in lines if LOG_LINE.search(line)]
    assert len(bars) == 2 and logs, text  # write and read, and some log lines
    for line in lines:
        assert not (BAR in line and LOG_LINE.search(line)), line
    # It says what it will do, marks the crash as planned, shows the restart.
    assert "drops 1% of the datagrams each way and duplicates 1%" in " ".join(lines)
    assert any("half-way: killing the connection actor (planned" in x for x in lines)
    assert any(x.startswith("restarted: a new connection actor") for x in lines)
    assert not any("[error" in x for x in logs), text
    # And ends with a table that explains each figure.
    for figure in ("written", "verified", "resends", "duplicates", "restarts"):
        assert any(re.match(rf"│ {figure} +│", x) for x in lines), figure
    assert "caused by the board's injected 1% drops" in text
    assert lines[-1] == "verified 4194304 bytes: all verified"
