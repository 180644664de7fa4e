"""The `spinnactors` command as a user runs it: real processes, real UDP."""

from __future__ import annotations

import functools
import re
import signal
import socket

import pytest

from tests.system.conftest import run_cli, start_board, stop_board

run = functools.partial(run_cli, text=True)


@pytest.mark.parametrize(
    "args",
    [
        ("board", "--port", "70000"),
        ("board", "--port", "http"),
        ("board", "--drop", "1.5"),
        ("board", "--width", "0"),
        ("board", "--delay-ms", "-3"),
        ("board", "--seed", "x"),
        ("board", "--frobnicate"),
        ("version", "300"),
        ("version", "0", "0", "18"),
        ("version", "--timeout", "0"),
        ("teleport",),
        (),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(args: tuple[str, ...]) -> None:
    result = run(*args)
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0], result.stderr
    assert result.stdout == ""


def test_board_answers_version_and_stops_on_sigterm(
    board_process: tuple[str, int],
) -> None:
    host, port = board_process
    result = run("version", "1", "2", "3", "--host", host, "--port", str(port))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "SARK 4.0.0 on Virtual at 1,2,3"


def test_board_spinn5_serves_the_48_chip_shape() -> None:
    """`board --spinn5` is a booted SpiNN-5: the system variables say 8 x 8,
    its Ethernet chip says where it is, and (7, 0) is not one of its 48."""
    process, (host, port) = start_board("--spinn5")
    try:
        where = ("--host", host, "--port", str(port))
        dims = run_cli("read", "0", "0", "0xf5007f02", "2", "-o", "-", *where)
        assert dims.returncode == 0 and dims.stdout == bytes([8, 8]), dims
        ip = run_cli("read", "0", "0", "0xf5007ff0", "4", "-o", "-", *where)
        assert ip.stdout == socket.inet_aton(host), ip
        outside = run("version", "7", "0", "0", *where)
        assert outside.returncode == 1 and "RC_ROUTE" in outside.stderr, outside
        assert run("version", "7", "7", "0", *where).returncode == 0
    finally:
        assert stop_board(process) == 0
    shaped = run("board", "--spinn5", "--width", "4")
    assert shaped.returncode == 2 and "no --width or --height" in shaped.stderr


def test_board_stops_on_sigint() -> None:
    process, _ = start_board("--width", "2", "--height", "2")
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=10) == 0
    assert stop_board(process) == 0


def test_hex_coordinates_are_accepted(board_process: tuple[str, int]) -> None:
    host, port = board_process
    result = run("version", "0x1", "0x0", "--host", host, "--port", str(port))
    assert result.returncode == 0, result.stderr
    assert "at 1,0,0" in result.stdout


def test_version_of_a_dead_board_is_a_one_line_error() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))  # nobody answers on this port
        port = silent.getsockname()[1]
        result = run(
            "version", "--port", str(port), "--timeout", "0.05", "--retries", "1"
        )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert (
        result.stderr.strip().splitlines()[-1].startswith("spinnactors version: error:")
    )


def test_port_in_use_is_a_one_line_error() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        result = run("board", "--port", str(port))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert str(port) in result.stderr.strip().splitlines()[-1]


def test_demo_verifies_every_byte() -> None:
    result = run("demo", "--kib", "16")
    assert result.returncode == 0, result.stderr
    assert "all verified" in result.stdout
    assert "65536 bytes" in result.stdout


@pytest.mark.timeout(60)
def test_bench_measures_a_board_of_its_own() -> None:
    result = run("bench", "--mib", "0.5", "--rounds", "2")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("a virtual board at 127.0.0.1:")
    assert [line.split(":")[0] for line in lines[1:3]] == ["round 1", "round 2"]
    median = float(lines[-1].split()[1])
    assert median > 0
    # A clean link, but a busy machine may make a reply late: the summary
    # counts those resends rather than hide them. Each timeout is resent;
    # a late reply can also be overtaken and resent fast, with no timeout.
    counts = re.search(r"resent (\d+), timeouts (\d+)", lines[-1])
    assert counts is not None, lines[-1]
    assert int(counts.group(1)) >= int(counts.group(2))


@pytest.mark.timeout(60)
def test_bench_measures_a_given_board(board_process: tuple[str, int]) -> None:
    host, port = board_process
    result = run(
        "bench",
        "--host",
        host,
        "--port",
        str(port),
        "--mib",
        "0.25",
        "--rounds",
        "1",
        "--window",
        "4",
    )
    assert result.returncode == 0, result.stderr
    assert "virtual board" not in result.stdout
    assert "with window 4" in result.stdout
