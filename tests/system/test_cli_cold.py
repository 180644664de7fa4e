"""``spinnactors board --unbooted --boards N --bmp HOST``: cold boards and
their BMP from the command line, as a process of its own."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from messages.bmp import PowerCommand, ReadCANStatus, SetPower
from messages.scp import GetVersion
from tests.system.conftest import ROOT, run_cli, stop_board
from tests.transport.loopback import BOOT_PORT, first_free
from transport import (
    BMPConnection,
    BootConnection,
    IPAddressesConnection,
    SCAMPConnection,
)
from transport.connections.call import call
from transport.errors import ReceiveTimeout

pytestmark = pytest.mark.timeout(30)


def free_run(start: int, length: int) -> int:
    """The last byte of the first 127.0.0.x, from ``start``, after which
    ``length`` addresses have port 54321 free (checked, then let go)."""
    for first in range(start, 250 - length):
        sockets = []
        try:
            for n in range(1, length + 1):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sockets.append(sock)
                sock.bind((f"127.0.0.{first + n}", BOOT_PORT))
            return first
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no run of loopback addresses with port 54321 free")


Frame = tuple[subprocess.Popen[str], list[str], IPAddressesConnection]


def start_frame(bmp: int, hello_to: str) -> tuple[subprocess.Popen[str], list[str]]:
    """``spinnactors board`` serving two cold boards after a BMP on
    127.0.0.``bmp``; the process and its first five lines (empty if it
    could not start)."""
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "actors.app.cli", "board", "--unbooted"),
            *("--bmp", f"127.0.0.{bmp}:0", "--boards", "2", "--port", "0"),
            *("--hello", hello_to, "--hello-interval", "0.1"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1"),
    )
    assert process.stdout is not None
    return process, [process.stdout.readline() for _ in range(5)]


@pytest.fixture
def frame() -> Iterator[Frame]:
    """A process serving two cold boards and their BMP, saying hello to a
    listener here; its first lines of output."""
    listener = first_free(80, lambda host: IPAddressesConnection(host))
    start = 90
    for _ in range(10):
        # The addresses were free when checked; another test may take them
        # before the process binds them: then it says so, and exits 1.
        bmp = free_run(start, 2)
        process, lines = start_frame(bmp, listener.local_ip_address)
        if lines[0] or process.wait(10) != 1:
            break
        assert process.stderr is not None
        assert "an address of its own" in process.stderr.read()
        start = bmp + 3
    try:
        yield process, lines, listener
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        listener.close()


def address(line: str) -> tuple[str, int]:
    host, port = re.findall(r"(127\.0\.0\.\d+):(\d+)", line)[0]
    return host, int(port)


def test_cold_boards_and_their_bmp_from_the_command_line(frame: Frame) -> None:
    process, lines, listener = frame
    hello_to = listener.local_ip_address
    assert lines[0].startswith("listening on "), lines
    board_0, board_1 = address(lines[1]), address(lines[2])
    assert lines[0].split()[-1] == f"{board_0[0]}:{board_0[1]}"
    assert re.fullmatch(r"board 1 on \S+, unbooted, boot ROM on \S+:54321\n", lines[2])
    assert lines[3] == f"boot ROMs say hello to {hello_to}:54321 every 0.1 s\n"
    bmp = address(lines[4])
    assert lines[4].startswith("BMP on ") and lines[4].endswith("for boards 0-1\n")
    assert int(board_0[0].rsplit(".")[-1]) == int(bmp[0].rsplit(".")[-1]) + 1
    assert listener.receive_ip_address(5) in {board_0[0], board_1[0]}
    with SCAMPConnection(remote_host=board_1[0], remote_port=board_1[1]) as scamp:
        with pytest.raises(ReceiveTimeout):
            call(scamp, GetVersion(0, 0, 0), timeout=0.1, retries=0)
        with BootConnection(board_1[0], gap=0.001) as boot:
            boot.boot()
        info = None
        for _ in range(50):  # until SC&MP is up
            try:
                info = call(scamp, GetVersion(0, 0, 0), timeout=0.1, retries=0)
                break
            except ReceiveTimeout:
                continue
        assert info is not None and info.version_info is not None
        assert info.version_info.name == "SC&MP"
    with BMPConnection(remote_host=bmp[0], remote_port=bmp[1]) as connection:
        assert call(connection, ReadCANStatus()).boards == (0, 1)
        call(connection, SetPower(PowerCommand.POWER_OFF, 1))
    assert stop_board(process) == 0
    assert process.stdout is not None
    out = process.stdout.read()
    summaries = out.splitlines()
    assert len(summaries) == 3, out
    assert "boot ROM: 0 boots" in summaries[0]
    assert "boot ROM: 1 boots, 32 frames" in summaries[1]
    assert re.search(
        r"stopped BMP \S+ after .*: 2 requests, 0 power-ons, 1 power-offs", summaries[2]
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--boards", "25"), "--boards: 25 is too large"),
        (("--bmp", "127.0.0.1:70000"), "--bmp: 70000 is too large"),
        (("--host", "127.0.0.250", "--boards", "6"), "6 boards from 127.0.0.250"),
        (("--hello-interval", "0"), "--hello-interval: 0 is too small"),
    ],
)
def test_bad_cold_arguments_are_usage_errors(
    args: tuple[str, ...], message: str
) -> None:
    result = run_cli("board", "--port", "0", *args, text=True)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and result.stderr.count("\n") == 1
