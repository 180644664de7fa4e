"""The metrics endpoint against clients that do not play along: a silent
connection, slow ones trickling their request, more of them than the
server takes at once. None holds another client, each is cut after a
bound, close() returns while they hang on, and a process serving
--metrics-port exits. HEAD answers like GET, without the body."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from actors.board.client import Client
from actors.http_server import CLIENT_TIMEOUT, MAX_CONNECTIONS
from actors.metrics import MetricsServer, serve
from tests.system.conftest import ROOT, start_board, stop_board
from tests.system.test_restart_without_loss import kill
from transport import VirtualBoard

#: Well under CLIENT_TIMEOUT: an answer this prompt was not waiting for a
#: stuck client to be cut.
PROMPT = 3.0
assert PROMPT < CLIENT_TIMEOUT


def fetch(
    address: tuple[str, int], method: str, path: str, timeout: float = PROMPT
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.0 request on a socket of its own: the status, headers and
    every byte after them until the server closes (a HEAD's body would
    show here, where urllib would not read it)."""
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(f"{method} {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = {
        name.lower(): value.strip()
        for name, value in (line.split(":", 1) for line in lines)
    }
    return int(status_line.split()[1]), headers, body


def address_of(server: MetricsServer) -> tuple[str, int]:
    return server.host, server.port


@contextlib.contextmanager
def silent_clients(
    address: tuple[str, int], sent: bytes, count: int
) -> Iterator[list[socket.socket]]:
    """``count`` connections that send ``sent`` (maybe nothing) and then
    hold on, saying no more."""
    clients: list[socket.socket] = []
    try:
        for _ in range(count):
            clients.append(socket.create_connection(address, timeout=PROMPT))
            clients[-1].sendall(sent)
        yield clients
    finally:
        for client in clients:
            client.close()


def close_within(server: MetricsServer, bound: float) -> bool:
    """Whether server.close() returned within ``bound`` seconds (it runs
    on a daemon thread, so one that never returns fails the test instead
    of hanging it)."""
    closed = threading.Event()

    def close() -> None:
        server.close()
        closed.set()

    threading.Thread(target=close, daemon=True).start()
    return closed.wait(bound)


def assert_cut(client: socket.socket, within: float) -> None:
    """The server closed ``client``'s connection within ``within`` s."""
    client.settimeout(within)
    with contextlib.suppress(ConnectionResetError):  # (a reset is a cut too)
        assert client.recv(65536) == b""


@pytest.mark.timeout(30)
def test_an_idle_client_holds_no_other_nor_close() -> None:
    server = serve(0, registry=CollectorRegistry())
    address = address_of(server)
    try:
        with silent_clients(address, b"", 1) as (idle,):
            status, _, body = fetch(address, "GET", "/healthz")
            assert status == 200 and json.loads(body)["status"] == "ok"
            status, _, body = fetch(address, "GET", "/metrics")
            assert status == 200 and b"spinnactors_board_up" in body
            # The idle client still holds its connection: close() cuts it.
            assert close_within(server, PROMPT)
            assert_cut(idle, PROMPT)
    finally:
        server.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=5).close()


@pytest.mark.timeout(30)
def test_three_slow_clients_hold_no_fourth() -> None:
    with (
        serve(0, registry=CollectorRegistry()) as server,
        silent_clients(address_of(server), b"GET /metr", 3),
    ):
        status, headers, body = fetch(address_of(server), "GET", "/metrics")
        assert status == 200 and b"spinnactors_board_up" in body
        assert int(headers["content-length"]) == len(body)
        assert close_within(server, PROMPT)


@pytest.mark.timeout(30)
def test_a_client_that_trickles_its_request_is_cut_at_the_deadline() -> None:
    """A byte every 50 ms is never silent for the client timeout; the
    deadline on the whole request cuts it anyway."""
    deadline = 1.0
    with serve(
        0,
        registry=CollectorRegistry(),
        client_timeout=CLIENT_TIMEOUT,
        request_deadline=deadline,
    ) as server:
        started = time.monotonic()  # (before the server's deadline starts)
        with socket.create_connection(address_of(server), timeout=30) as slow:
            slow.sendall(b"GET /metrics?")
            slow.settimeout(0.05)  # the pace of the trickle
            cut = False
            while not cut and time.monotonic() - started < 10 * deadline:
                try:
                    slow.sendall(b"x")
                    cut = slow.recv(65536) == b""
                except TimeoutError:
                    continue  # not cut yet: one more byte
                except (ConnectionResetError, BrokenPipeError):
                    cut = True
            took = time.monotonic() - started
        assert cut, f"still connected after {took:.1f} s"
        assert deadline <= took < 5 * deadline
        # The server goes on serving others.
        assert fetch(address_of(server), "GET", "/healthz")[0] == 200


@pytest.mark.timeout(30)
def test_one_client_more_than_the_bound_is_told_busy_at_once() -> None:
    with (
        serve(0, registry=CollectorRegistry()) as server,
        silent_clients(address_of(server), b"", MAX_CONNECTIONS),
    ):
        status, _, body = fetch(address_of(server), "GET", "/healthz")
        assert (status, body) == (503, b"busy\n")
        assert close_within(server, PROMPT)


@pytest.mark.timeout(60)
def test_head_answers_like_get_without_a_body() -> None:
    with (
        VirtualBoard(2, 2) as board,
        Client(*board.address, max_restarts=0) as client,
        serve(0, registry=CollectorRegistry()) as server,
    ):
        address = address_of(server)
        client.version()
        for path in ("/healthz", "/metrics"):
            status, headers, body = fetch(address, "HEAD", path)
            _, get_headers, get_body = fetch(address, "GET", path)
            assert status == 200 and body == b""
            assert headers["content-type"] == get_headers["content-type"]
            assert int(headers["content-length"]) > 0
        kill(client, None)  # no restart allowed: its supervisor gives up
        assert client.gave_up.wait(10)
        status, headers, body = fetch(address, "HEAD", "/healthz")
        assert status == 503 and body == b""
        assert headers["content-type"] == "application/json"
        assert int(headers["content-length"]) > 0
        # A body that does not change: HEAD gives GET's length exactly.
        status, headers, body = fetch(address, "HEAD", "/nothing")
        _, _, get_body = fetch(address, "GET", "/nothing")
        assert (status, body) == (404, b"")
        assert int(headers["content-length"]) == len(get_body) > 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.timeout(60)
def test_a_board_process_exits_on_sigterm_while_a_client_holds_its_metrics() -> None:
    metrics_port = _free_port()
    process, _ = start_board("--metrics-port", str(metrics_port))
    try:
        # The metrics server listens before the board says "listening on".
        assert fetch(("127.0.0.1", metrics_port), "GET", "/healthz")[0] == 200
        with silent_clients(("127.0.0.1", metrics_port), b"", 1):
            assert stop_board(process) == 0  # within stop_board's 10 s
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.timeout(60)
def test_a_read_exits_while_a_client_holds_its_metrics(
    board_process: tuple[str, int],
) -> None:
    """The read's bytes fill its stdout pipe, so it cannot end before the
    silent client has connected; once they are taken it must exit."""
    host, port = board_process
    length = 1 << 20  # well past a pipe's 64 KiB
    read = subprocess.Popen(
        [sys.executable, "-m", "actors.app.cli", "read", "0", "0", "0x70000000"]
        + [str(length), "--host", host, "--port", str(port)]
        + ["--metrics-port", "0", "--log-format", "json", "-v"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1"),
    )
    try:
        assert read.stderr is not None
        lines: list[bytes] = []
        while not any(b'"metrics.serving"' in line for line in lines):
            line = read.stderr.readline()
            assert line, f"no metrics.serving line: {b''.join(lines)!r}"
            lines.append(line)
        url = json.loads(lines[-1])["address"]
        metrics_host, metrics_port = url.removeprefix("http://").rsplit(":", 1)
        with silent_clients((metrics_host, int(metrics_port)), b"", 1):
            out, err = read.communicate(timeout=20)
            assert read.returncode == 0, err
            assert len(out) == length
    finally:
        if read.poll() is None:
            read.kill()
            read.communicate()


@pytest.mark.timeout(30)
def test_a_taken_port_is_named_in_the_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=f"127.0.0.1:{port}") as raised:
            serve(port, registry=CollectorRegistry())
    assert raised.value.errno == errno.EADDRINUSE
