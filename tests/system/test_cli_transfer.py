"""`spinnactors read` and `write` as a user runs them: real processes, a
lossy board process, real UDP."""

from __future__ import annotations

import io
import logging
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from actors.app.cli import main
from tests.system.conftest import run_cli as run
from tests.system.conftest import start_board, stop_board
from transport import FaultPlan, VirtualBoard

#: Chip (1, 1)'s user SDRAM.
ADDRESS = 0x6000_0000
SIZE = 8 << 20


def one_error_line(result: subprocess.CompletedProcess[bytes]) -> str:
    """The stderr of a failed command: exactly one line, no traceback."""
    text = result.stderr.decode()
    assert "Traceback" not in text, text
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


@pytest.fixture(scope="module")
def lossy_board() -> Iterator[tuple[str, int]]:
    process, address = start_board("--drop", "0.05", "--dup", "0.05", "--seed", "7")
    try:
        yield address
    finally:
        assert stop_board(process) == 0


@pytest.mark.timeout(60)
def test_eight_mib_round_trip_over_a_lossy_board(
    lossy_board: tuple[str, int], tmp_path: Path
) -> None:
    host, port = lossy_board
    link = ("--host", host, "--port", str(port), "--timeout", "0.2")
    data = os.urandom(SIZE)
    source = tmp_path / "source.bin"
    source.write_bytes(data)

    wrote = run("write", "1", "1", hex(ADDRESS), "-i", str(source), *link)
    assert wrote.returncode == 0, wrote.stderr.decode()
    assert wrote.stdout == b""
    assert b"Traceback" not in wrote.stderr

    copy = tmp_path / "copy.bin"
    to_file = run("read", "1", "1", hex(ADDRESS), str(SIZE), "-o", str(copy), *link)
    assert to_file.returncode == 0, to_file.stderr.decode()
    assert to_file.stdout == b""
    assert copy.read_bytes() == data

    to_stdout = run("read", "0x1", "1", str(ADDRESS), hex(SIZE), *link)
    assert to_stdout.returncode == 0, to_stdout.stderr.decode()
    assert to_stdout.stdout == data


@pytest.mark.timeout(30)
def test_write_from_stdin_and_verbose_summary(lossy_board: tuple[str, int]) -> None:
    host, port = lossy_board
    link = ("--host", host, "--port", str(port), "--timeout", "0.2")
    data = os.urandom(4097)
    wrote = run("write", "2", "3", "0x60000003", "-p", "1", "-v", *link, stdin=data)
    assert wrote.returncode == 0, wrote.stderr.decode()
    assert wrote.stdout == b""
    summary = wrote.stderr.decode().strip().splitlines()
    assert len(summary) == 1 and "cli.write" in summary[0], summary
    assert "bytes=4097" in summary[0] and "mb_per_s=" in summary[0]
    back = run("read", "2", "3", "0x60000003", "4097", "-p", "1", *link)
    assert back.returncode == 0, back.stderr.decode()
    assert back.stdout == data


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "args",
    [
        ("read",),
        ("read", "1", "1", "0x60000000"),
        ("read", "256", "0", "0", "4"),
        ("read", "0", "0", "0x1_0000_0000", "4"),
        ("read", "0", "0", "0xffffffff", "2"),
        ("read", "0", "0", "0", "-1"),
        ("read", "0", "0", "0", "ten"),
        ("read", "0", "0", "0", "4", "-p", "18"),
        ("read", "0", "0", "0", "4", "--window", "0"),
        ("read", "0", "0", "0", "4", "--window", "65536"),
        ("read", "0", "0", "0", "4", "--timeout", "0"),
        ("read", "0", "0", "0", "4", "--retries", "-1"),
        ("read", "0", "0", "0", "4", "--port", "70000"),
        ("write",),
        ("write", "0", "0"),
        ("write", "0", "0", "0", "5"),
        ("write", "0", "x", "0"),
        ("write", "0", "0", "0x1_0000_0000"),
        ("write", "0", "0", "0", "-p", "-1"),
        ("write", "0", "0", "0", "--timeout", "soon"),
        ("write", "0", "0", "0", "-i"),
        ("version", "--window", "0"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(args: tuple[str, ...]) -> None:
    result = run(*args, stdin=b"")
    assert result.returncode == 2, result
    assert "error:" in one_error_line(result)
    assert result.stdout == b""


@pytest.mark.timeout(30)
def test_read_from_a_dead_port_is_a_one_line_error(tmp_path: Path) -> None:
    copy = tmp_path / "never.bin"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))  # nobody answers on this port
        port = silent.getsockname()[1]
        to_stdout = run(
            "read",
            "0",
            "0",
            "0x60000000",
            "1000",
            "--port",
            str(port),
            "--timeout",
            "0.05",
            "--retries",
            "2",
        )
        to_file = run(
            "read",
            "0",
            "0",
            "0x60000000",
            "1000",
            "--port",
            str(port),
            "--timeout",
            "0.05",
            "--retries",
            "2",
            "-o",
            str(copy),
        )
    for result in (to_stdout, to_file):
        assert result.returncode == 1
        line = one_error_line(result)
        assert line.startswith("spinnactors read: error:"), line
        assert f"no reply from 127.0.0.1:{port} after 3 tries in " in line, line
        assert "check the address" in line, line
        assert result.stdout == b""
    assert not copy.exists()


@pytest.mark.timeout(30)
def test_board_errors_and_bad_files_are_one_line_errors(
    lossy_board: tuple[str, int], tmp_path: Path
) -> None:
    host, port = lossy_board
    link = ("--host", host, "--port", str(port), "--timeout", "0.2")
    outside = run("read", "200", "0", "0x60000000", "16", *link)
    assert outside.returncode == 1
    assert "RC_ROUTE" in one_error_line(outside)
    assert outside.stdout == b""

    missing = run(
        "write", "0", "0", "0x60000000", "-i", str(tmp_path / "missing.bin"), *link
    )
    assert missing.returncode == 1
    assert one_error_line(missing).startswith("spinnactors write: error:")

    nowhere = run(
        "read",
        "0",
        "0",
        "0x60000000",
        "16",
        "-o",
        str(tmp_path / "no" / "such" / "dir.bin"),
        *link,
    )
    assert nowhere.returncode == 1
    assert one_error_line(nowhere).startswith("spinnactors read: error:")

    too_long = run("write", "0", "0", "0xfffffff0", *link, stdin=bytes(32))
    assert too_long.returncode == 2  # a bad argument, as read says
    assert one_error_line(too_long) == (
        "spinnactors write: error: the input runs past the end of 32-bit "
        "memory: at most 16 bytes fit from 0xfffffff0 (see: spinnactors write "
        "--help)"
    )

    unknown = run("read", "0", "0", "0", "4", "--host", "no-such-host.invalid")
    assert unknown.returncode == 1
    assert "cannot resolve host" in one_error_line(unknown)


@pytest.fixture
def saved_logging() -> Iterator[None]:
    """main() configures logging for the process: put it back after."""
    config = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    pykka_log = logging.getLogger("pykka")
    filters = list(pykka_log.filters)
    try:
        yield
    finally:
        structlog.configure(**config)
        root.handlers = handlers
        root.setLevel(level)
        pykka_log.filters = filters


@pytest.mark.timeout(30)
def test_main_streams_through_given_binary_streams(saved_logging: None) -> None:
    data = os.urandom(100_003)
    plan = FaultPlan(drop=0.05, duplicate=0.05, seed=9)
    with VirtualBoard(4, 4, faults=plan) as board:
        link = ["--port", str(board.address[1]), "--timeout", "0.2"]
        text = io.StringIO()
        assert (
            main(
                ["write", "3", "2", "0x60000005", *link],
                out=text,
                binary_in=io.BytesIO(data),
            )
            == 0
        )
        assert text.getvalue() == ""
        back = io.BytesIO()
        assert (
            main(
                ["read", "3", "2", "0x60000005", str(len(data)), *link],
                out=text,
                binary_out=back,
            )
            == 0
        )
        assert back.getvalue() == data
        assert main(["version", "3", "2", "1", *link], out=text) == 0
        assert text.getvalue() == "SARK 4.0.0 on Virtual at 3,2,1\n"
        empty = io.BytesIO()
        assert main(["read", "0", "0", "0", "0", *link], binary_out=empty) == 0
        assert empty.getvalue() == b""
