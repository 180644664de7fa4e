"""actors.metrics over HTTP: /metrics during a lossy transfer agrees with
stats(), a board whose supervisor gave up reads 0 and fails /healthz, the
boards of worker processes appear in the parent's registry, and the CLI
serves a board's own figures with --metrics-port."""

from __future__ import annotations

import io
import json
import os
import socket
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from actors import SCPRequestPipeLine, connect
from actors.app.cli import main
from actors.board.client import Client
from actors.compat.connection_listener import ConnectionListener
from actors.errors import RequestTimeout
from actors.metrics import MetricsServer, serve, snapshot
from actors.placement.machine import Machine
from actors.ratelimit.limiter import RateLimiterActor
from messages.scp import WriteMemory
from tests.system.conftest import start_board, stop_board
from tests.system.test_restart_without_loss import kill
from transport import FaultPlan, SCAMPConnection, VirtualBoard
from transport.connections.udp import UDPConnection
from transport.links.endpoint import Address

ADDRESS = 0x7000_0000


#: Samples of /metrics, by (name, labels).
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(server: MetricsServer) -> Samples:
    """Every sample of /metrics, by (name, labels)."""
    with urllib.request.urlopen(server.url + "/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def healthz(server: MetricsServer) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(server.url + "/healthz", timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def of(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


@pytest.mark.timeout(60)
def test_discarded_datagrams_are_exported_by_reason() -> None:
    """A board that answers every try with junk, and a foreign sender on
    an unconnected socket: each discarded datagram is in the scrape, under
    its reason, as stats() counts it."""
    board = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    board.bind(("127.0.0.1", 0))
    board.settimeout(0.05)
    stop = threading.Event()

    def answer_junk() -> None:
        while not stop.is_set():
            try:
                _, sender = board.recvfrom(1024)
            except TimeoutError:
                continue
            # Too short to say whose reply it is: counted, then a timeout.
            board.sendto(b"\x00\x01\x02", sender)

    server_thread = threading.Thread(target=answer_junk, daemon=True)
    server_thread.start()
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    host, port = board.getsockname()
    label = f"{host}:{port}"
    try:
        with (
            Client(host, port, timeout=0.5, retries=1, connected=False) as client,
            serve(0, registry=CollectorRegistry()) as server,
        ):
            local_host, local_port = client.stats().local.rsplit(":", 1)
            stranger.sendto(b"not from the board", (local_host, int(local_port)))
            with pytest.raises(RequestTimeout):
                client.version()
            stats = client.stats()
            samples = scrape(server)
        assert stats.malformed == 2 and stats.foreign == 1
        for reason in ("malformed", "foreign", "late"):
            assert of(
                samples, "spinnactors_discarded_total", board=label, reason=reason
            ) == getattr(stats, reason)
        assert of(samples, "spinnactors_send_errors_total", board=label) == 0
        assert of(samples, "spinnactors_port_refused_total", board=label) == 0
    finally:
        stop.set()
        server_thread.join(5)
        board.close()
        stranger.close()


@pytest.mark.timeout(60)
def test_scrapes_during_a_lossy_transfer_agree_with_stats() -> None:
    faults = FaultPlan(drop=0.01, duplicate=0.01, seed=5)
    data = bytes(range(256)) * 4096  # 1 MiB: 4096 requests each way
    with (
        VirtualBoard(4, 4, faults=faults, service_time=0.0004) as board,
        Client(*board.address, timeout=0.05) as client,
        serve(0, registry=CollectorRegistry()) as server,
        ThreadPoolExecutor(1) as pool,
    ):
        label = f"{board.address[0]}:{board.address[1]}"
        client.write(0, 0, ADDRESS, data)
        reading = pool.submit(client.read, 0, 0, ADDRESS, len(data))
        seen: list[float] = []
        while not reading.done():  # a scrape takes ms; the read, seconds
            seen.append(of(scrape(server), "spinnactors_requests_total", board=label))
        assert reading.result() == data
        samples = scrape(server)
        stats = client.stats()
    # Scraped while it ran: counts that only grew, up to what stats() says.
    assert seen and seen == sorted(seen)
    requests = of(samples, "spinnactors_requests_total", board=label)
    assert seen[0] < requests == stats.sent - stats.resent
    assert stats.resent > 0 and stats.duplicates > 0  # the faults showed
    assert of(samples, "spinnactors_resends_total", board=label) == stats.resent
    assert of(samples, "spinnactors_timeouts_total", board=label) == stats.timeouts
    assert of(samples, "spinnactors_duplicates_total", board=label) == stats.duplicates
    assert of(samples, "spinnactors_completed_total", board=label) == stats.completed
    assert of(samples, "spinnactors_rtt_seconds_count", board=label) == stats.rtt.count
    assert (
        of(samples, "spinnactors_rtt_seconds_bucket", board=label, le="+Inf")
        == stats.rtt.count
    )
    assert of(samples, "spinnactors_board_up", board=label) == 1.0
    assert of(samples, "spinnactors_in_flight", board=label) == 0.0
    # The board, in this process, exports its own figures too.
    assert of(samples, "spinnactors_board_replies_total", board=label) > 0
    assert of(samples, "spinnactors_board_dropped_total", board=label) > 0
    supervisor = f"client-{label}"
    assert of(samples, "spinnactors_restarts_total", supervisor=supervisor) == 0


@pytest.mark.timeout(60)
def test_an_error_code_is_counted_by_its_name() -> None:
    with (
        VirtualBoard(2, 2) as board,
        Client(*board.address) as client,
        serve(0, registry=CollectorRegistry()) as server,
    ):
        label = f"{board.address[0]}:{board.address[1]}"
        with pytest.raises(Exception, match="RC_ROUTE"):
            client.read(5, 5, ADDRESS, 16)  # no chip 5,5 on a 2x2 board
        samples = scrape(server)
    assert of(samples, "spinnactors_errors_total", board=label, code="RC_ROUTE") == 1


@pytest.mark.timeout(60)
def test_a_board_given_up_on_reads_0_and_fails_healthz() -> None:
    with (
        VirtualBoard(2, 2) as board,
        Client(*board.address, max_restarts=0) as doomed,
        Client(*board.address) as fine,
        serve(0, registry=CollectorRegistry()) as server,
    ):
        label = f"{board.address[0]}:{board.address[1]}"
        fine.write(0, 0, ADDRESS, b"still here")
        status, body = healthz(server)
        assert status == 200 and body["status"] == "ok", body
        kill(doomed, None)  # no restart allowed: its supervisor gives up
        assert doomed.gave_up.wait(10)
        assert doomed.health().state == "given_up"
        samples = scrape(server)
        status, body = healthz(server)
        assert fine.read(0, 0, ADDRESS, 10) == b"still here"
    # Two clients of one board: the board counts as up only if both are.
    assert of(samples, "spinnactors_board_up", board=label) == 0.0
    assert status == 503 and body["status"] == "failing"
    states = sorted(entry["state"] for entry in body["boards"])
    assert states == ["given_up", "serving"]


@pytest.mark.timeout(60)
def test_a_client_given_up_on_leaves_the_checks_once_its_owner_closes_it() -> None:
    with VirtualBoard(2, 2) as board:
        label = f"{board.address[0]}:{board.address[1]}"
        doomed = Client(*board.address, max_restarts=0)
        try:
            kill(doomed, None)
            assert doomed.gave_up.wait(10)
            assert [h.state for h in snapshot().boards[label]] == ["given_up"]
        finally:
            doomed.close()
        assert doomed.closed_by_owner
        assert label not in snapshot().boards


@pytest.mark.timeout(90)
def test_boards_in_worker_processes_are_in_the_parents_registry() -> None:
    with VirtualBoard(2, 2) as first, VirtualBoard(2, 2) as second:
        # Any: connect() takes Mapping[Hashable, ...], whose keys are invariant.
        names: dict[Any, Address] = {"a": first.address, "b": second.address}
        machine = connect(names, workers=2)
        assert isinstance(machine, Machine)
        try:
            with serve(0, registry=CollectorRegistry()) as server:
                for name in names:
                    machine.board(name).write(0, 0, ADDRESS, name.encode() * 600)
                samples = scrape(server)
                health = machine.health()
        finally:
            machine.close()
    for name, (host, port) in names.items():
        label = f"{host}:{port}"
        assert of(samples, "spinnactors_board_up", board=label) == 1.0
        # 600 bytes: 3 requests, sent from the worker, counted there.
        assert of(samples, "spinnactors_requests_total", board=label) == 3
        assert health[name].state == "serving" and health[name].board == label
        assert health[name].last_reply_age is not None
        # Each board's connection is supervised in its worker: the worker's
        # supervisor is exported under its own name, as this process's are.
        supervision = health[name].supervision
        assert supervision is not None and supervision.children
        supervisor = supervision.name
        assert of(samples, "spinnactors_restarts_total", supervisor=supervisor) == 0
        assert of(samples, "spinnactors_supervisor_gave_up", supervisor=supervisor) == 0
    # One worker each: two supervisors.
    assert len({health[name].supervision.name for name in names}) == 2  # type: ignore[union-attr]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.timeout(60)
def test_the_board_command_serves_its_figures() -> None:
    metrics_port = _free_port()
    process, address = start_board("--metrics-port", str(metrics_port))
    try:
        with Client(*address) as client:
            client.version()
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as answer:
            text = answer.read().decode()
    finally:
        assert stop_board(process) == 0
    label = f"{address[0]}:{address[1]}"
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert of(samples, "spinnactors_board_requests_total", board=label) >= 1
    assert of(samples, "spinnactors_board_replies_total", board=label) >= 1


@pytest.mark.timeout(30)
def test_serve_closes_its_port_and_thread() -> None:
    before = {thread.name for thread in threading.enumerate()}
    server = serve(0, registry=CollectorRegistry())
    server.close()
    server.close()  # twice: nothing more
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection((server.host, server.port), timeout=5),
    ):
        pass
    assert {thread.name for thread in threading.enumerate()} <= before


@pytest.mark.timeout(60)
def test_bench_draws_its_plot(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="bench --plot needs matplotlib")
    picture = tmp_path / "bench.png"
    out = io.StringIO()
    with VirtualBoard(2, 2) as board:
        host, port = board.address
        status = main(
            [
                "bench",
                "--host",
                host,
                "--port",
                str(port),
                "--mib",
                "0.25",
                "--rounds",
                "3",
                "--plot",
                str(picture),
            ],
            out=out,
        )
    assert status == 0, out.getvalue()
    assert f"plot written to {picture}" in out.getvalue()
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert picture.stat().st_size > 10_000  # two panels drawn, not a blank


@pytest.mark.timeout(60)
def test_in_process_machine_health_names_each_board() -> None:
    with VirtualBoard(2, 2) as first, VirtualBoard(2, 2) as second:
        names: dict[Any, Address] = {"a": first.address, "b": second.address}
        with connect(names, workers=0) as machine:
            assert isinstance(machine, Machine)
            machine.board("a").write(0, 0, ADDRESS, b"x")
            health = machine.health()
    assert set(health) == {"a", "b"}
    assert health["a"].board == f"{first.address[0]}:{first.address[1]}"
    assert health["a"].state == "serving" and health["a"].last_reply_age is not None
    # Nothing asked of b yet: served, but it has never answered.
    assert health["b"].state == "serving" and health["b"].last_reply_age is None


@pytest.mark.timeout(60)
def test_listeners_and_rate_limiters_are_exported() -> None:
    connection = UDPConnection(local_host="127.0.0.1")
    listener: ConnectionListener[bytes] = ConnectionListener(connection)
    heard: list[bytes] = []
    all_heard = threading.Event()

    def note(message: bytes) -> None:
        heard.append(message)
        if len(heard) == 25:
            all_heard.set()

    listener.add_callback(note)
    listener.start()
    limiter = RateLimiterActor.start(500.0, 100.0)
    try:
        with (
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender,
            serve(0, registry=CollectorRegistry()) as server,
        ):
            for number in range(25):
                sender.sendto(
                    b"event-%d" % number,
                    (connection.local_ip_address, connection.local_port),
                )
            assert all_heard.wait(10)
            samples = scrape(server)
    finally:
        limiter.stop()
        listener.close()
        connection.close()
    local = f"{connection.local_ip_address}:{connection.local_port}"
    assert of(samples, "spinnactors_listener_messages_total", listener=local) == 25
    assert of(samples, "spinnactors_listener_dropped_total", listener=local) == 0
    (tokens,) = [
        value
        for (name, _), value in samples.items()
        if name == "spinnactors_limiter_tokens"
    ]
    assert 499 <= tokens <= 500  # full, nothing taken yet


@pytest.mark.timeout(60)
def test_a_spinnman_style_pipeline_is_exported_while_it_works() -> None:
    """Code ported from SpiNNMan drives SCPRequestPipeLines, not Clients:
    the connection a pipeline drives is in the scrape while it works, its
    requests, resends and timeouts as the pipeline counts them, and leaves
    the scrape once finish() has let go of it."""
    chunks = 64
    data = os.urandom(chunks * 256)
    errors: list[Exception] = []
    during: dict = {}  # type: ignore[type-arg]
    answered = 0
    with (
        VirtualBoard(2, 2, faults=FaultPlan(drop=0.05, seed=11)) as board,
        serve(0, registry=CollectorRegistry()) as server,
        SCAMPConnection(
            remote_host=board.address[0], remote_port=board.address[1]
        ) as connection,
    ):
        label = "{}:{}".format(*board.address)
        pipeline: SCPRequestPipeLine[Any] = SCPRequestPipeLine(
            connection, n_channels=8, intermediate_channel_waits=7, packet_timeout=0.05
        )

        def on_reply(_: object) -> None:
            nonlocal answered
            answered += 1
            if answered == chunks:  # (the pipeline still holds its connection)
                during.update(scrape(server))

        for index in range(chunks):
            piece = data[index * 256 : (index + 1) * 256]
            pipeline.send_request(
                WriteMemory((1, 0, 0), ADDRESS + index * 256, piece),
                on_reply,
                lambda _request, error, *_: errors.append(error),
            )
        pipeline.finish()
        after = scrape(server)
        held = board.monitor.memory.read(1 << 8, ADDRESS, len(data))
    assert not errors and answered == chunks
    assert held == data
    assert of(during, "spinnactors_board_up", board=label) == 1
    assert of(during, "spinnactors_requests_total", board=label) == chunks
    assert of(during, "spinnactors_completed_total", board=label) == chunks
    assert pipeline.n_resent > 0  # 5% lost each way
    assert of(during, "spinnactors_resends_total", board=label) == pipeline.n_resent
    assert of(during, "spinnactors_timeouts_total", board=label) == pipeline.n_timeouts
    assert ("spinnactors_board_up", (("board", label),)) not in after
