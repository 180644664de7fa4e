"""An unmodified SpiNNMan on spinnactors: after install(), SpiNNMan's own
Transceiver, processes and SpiNNFrontEndCommon's live-event pattern run on
spinnactors' actors, against the virtual board on 127.0.0.1.

Until the SpiN-5 virtual board can answer a Transceiver's bring-up, the
Transceiver is made from a connection without it
(``ensure_board_is_ready=False``); every operation after that is
SpiNNMan's own code, unchanged.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any, cast

import pytest
import spinnman.processes.abstract_multi_connection_process as amcp
from prometheus_client import CollectorRegistry
from spinn_machine.tags import IPTag
from spinn_utilities.overrides import overrides
from spinnman.connections.scp_request_pipeline import (
    SCPRequestPipeLine as SpiNNManPipeLine,
)
from spinnman.connections.udp_packet_connections import (
    EIEIOConnection,
    SCAMPConnection,
)
from spinnman.connections.udp_packet_connections.utils import (
    update_sdp_header_for_udp_send,
)
from spinnman.exceptions import (
    SpinnmanGenericProcessException,
    SpinnmanTimeoutException,
)
from spinnman.messages.scp.enums import Signal
from spinnman.messages.scp.impl import IPTagSet, ReadMemory
from spinnman.messages.sdp import SDPFlag
from spinnman.model.enums import CPUState
from spinnman.processes import RoundRobinConnectionSelector
from spinnman.transceiver.base_transceiver import BaseTransceiver

from actors.compat import bridge, installed, is_installed
from actors.compat.connection_listener import ConnectionListener as OurListener
from actors.compat.shared import SHARED
from actors.connection.actor import ConnectionStats, GetConnectionStats
from actors.errors import RequestTimeout
from actors.metrics import serve
from actors.supervision.child import Crash
from messages.scp import ReadMemory as OurReadMemory
from tests.system.spinnman_kit import transceiver
from tests.system.test_metrics import healthz, of, scrape
from transport import VirtualBoard
from transport.capture.pcap import read_packets
from transport.virtual.traffic import TagTraffic

BASE = 0x6000_0000
MIB = 1 << 20
APP_ID = 17

pytestmark = pytest.mark.usefixtures("spinnman_setup")


def connection_stats() -> list[ConnectionStats]:
    return [
        cast(ConnectionStats, actor.ask(GetConnectionStats(), timeout=5))
        for actor in SHARED.running()
    ]


@pytest.mark.timeout(60)
def test_an_unmodified_transceiver_runs_on_spinnactors() -> None:
    data = random_bytes(MIB)
    with VirtualBoard(8, 8) as board:
        board.monitor.load_app(APP_ID, [(0, 0, 1), (0, 0, 2), (0, 0, 3)])
        with installed():
            # bridge's class subclasses SpiNNMan's, a base mypy cannot see.
            assert amcp.SCPRequestPipeLine is bridge.SCPRequestPipeLine  # type: ignore[comparison-overlap]
            with transceiver(board.address) as txrx:
                version = cast(BaseTransceiver, txrx)._get_scamp_version()
                txrx.write_memory(1, 1, BASE, data)
                back = txrx.read_memory(1, 1, BASE, MIB)
                # One actor did the work of both (it lingers between them).
                (stats,) = connection_stats()
                # No IP address: the board's own (SpiNNMan's annotation says str).
                txrx.set_ip_tag(IPTag(None, 0, 0, 5, "127.0.0.1", 12345, True))  # type: ignore[arg-type]
                txrx.send_signal(APP_ID, Signal.START)
                running = txrx.get_core_state_count(APP_ID, CPUState.RUNNING, [(0, 0)])
        assert not is_installed()
        assert amcp.SCPRequestPipeLine is SpiNNManPipeLine
        assert SHARED.running() == []
        held = board.monitor.memory.read((1 << 8) | 1, BASE, MIB)
        tag = board.monitor.ip_tags[5]
    assert (version.name, version.hardware) == ("SC&MP", "Virtual")
    assert back == data
    assert held == data
    assert (tag.host, tag.port, tag.strip) == (bytes([127, 0, 0, 1]), 12345, True)
    assert running == 3
    assert stats.remote == "{}:{}".format(*board.address)
    assert stats.completed >= 2 * MIB // 256  # every write and read piece


def random_bytes(size: int) -> bytes:
    return os.urandom(size)


@pytest.mark.timeout(60)
def test_the_transceivers_board_is_on_metrics_healthz_and_captured(
    tmp_path: Path,
) -> None:
    pcap = tmp_path / "spinnman.pcap"
    data = random_bytes(64 * 1024)
    with (
        VirtualBoard(2, 2) as board,
        serve(0, registry=CollectorRegistry()) as server,
        installed(capture=pcap),
    ):
        label = "{}:{}".format(*board.address)
        with transceiver(board.address) as txrx:
            txrx.write_memory(0, 0, BASE, data)
            assert txrx.read_memory(0, 0, BASE, len(data)) == data
            samples = scrape(server)
            status, health = healthz(server)
    seen = board.stats
    requests = 2 * len(data) // 256
    assert of(samples, "spinnactors_board_up", board=label) == 1
    assert of(samples, "spinnactors_completed_total", board=label) == requests
    assert status == 200
    assert [b["board"] for b in health["boards"]] == [label]
    # Every datagram between the two, each way, as the board counted them.
    records = list(read_packets(pcap.read_bytes()))
    to_board = [r for r in records if r.destination == board.address]
    assert len(to_board) == seen.received >= requests
    assert len(records) - len(to_board) == seen.replies >= requests


class MockConnection(SCAMPConnection):
    """SpiNNMan's own unit test's connection (test_abstract_process.py):
    no remote address, a send that goes nowhere, a receive that times
    out."""

    @overrides(SCAMPConnection.send)
    def send(self, data: bytes) -> None:
        pass

    @overrides(SCAMPConnection.receive_scp_response)
    def receive_scp_response(self, timeout: float | None = 1.0) -> Any:
        raise SpinnmanTimeoutException("Test", timeout)


class MockProcess(amcp.AbstractMultiConnectionProcess[Any]):
    request: Any = ReadMemory

    def test(self) -> None:
        with self._collect_responses(print_exception=True):
            self._send_request(self.request((0, 0, 0), 0, 4))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("ours", [False, True], ids=["spinnmans", "our-request"])
def test_spinnmans_process_test_with_a_connection_that_cannot_reach_a_board(
    ours: bool,
) -> None:
    """SpiNNMan's test of its process layer, with the pipeline ours: the
    connection has no remote address (its send is overridden) and is
    accepted; every try times out; the process raises as SpiNNMan's does,
    also for our ReadMemory (SpiNNMan's error report asks its header for
    the physical core, as SpiNNMan's test redirected to us does)."""
    connection = MockConnection(0, 0)
    try:
        with installed():
            process = MockProcess(
                RoundRobinConnectionSelector([connection]), timeout=0.05, n_retries=3
            )
            if ours:
                process.request = OurReadMemory
            with pytest.raises(SpinnmanGenericProcessException) as raised:
                process.test()
            (pipeline,) = process._scp_request_pipelines.values()
    finally:
        connection.close()
    assert isinstance(pipeline, bridge.SCPRequestPipeLine)
    # (each request's own library's error: SpiNNMan's for its requests)
    expected = RequestTimeout if ours else SpinnmanTimeoutException
    assert isinstance(raised.value.exception, expected)
    assert pipeline.n_timeouts == 4


def set_tag_as_front_ends_do(connection: EIEIOConnection, board: VirtualBoard) -> None:
    """SpiNNFrontEndCommon's LiveEventConnection points an IP tag at its
    receiving connection with IPTagSet(use_sender=True), sent and answered
    on that connection."""
    request = IPTagSet(0, 0, [0, 0, 0, 0], 0, 1, strip=True, use_sender=True)
    request.sdp_header.flags = SDPFlag.REPLY_EXPECTED_NO_P2P
    update_sdp_header_for_udp_send(request.sdp_header, 0, 0)
    connection.send_to(b"\0\0" + request.bytestring, board.address)
    request.get_scp_response().read_bytestring(connection.receive(5.0), 2)


@pytest.mark.timeout(60)
def test_front_end_live_events_arrive_in_order_on_spinnactors() -> None:
    """SpiNNFrontEndCommon's live-event pattern, unchanged: an
    EIEIOConnection, an IP tag pointed at it, a ConnectionListener from
    spinnman.connections, a callback reading each packet's keys. Under
    install() the listener is ours: every key arrives, in order."""
    wanted = 2000
    keys: list[int] = []
    enough = threading.Event()

    def on_packet(packet: Any) -> None:
        while packet.is_next_element:
            keys.append(packet.next_element.key)
        if len(keys) >= wanted:
            enough.set()

    traffic = TagTraffic(2000.0, payload_size=2 + 4 * 8, eieio=True)
    with installed(), VirtualBoard(2, 2, traffic=traffic) as board:
        from spinnman.connections import ConnectionListener

        receiver = EIEIOConnection(local_host="127.0.0.1")
        try:
            set_tag_as_front_ends_do(receiver, board)
            listener = ConnectionListener(receiver)
            listener.add_callback(on_packet)
            listener.start()
            assert enough.wait(30), f"only {len(keys)} keys came"
            listener.close()
            stats = cast("OurListener[Any]", listener).stats()  # install() made it ours
        finally:
            receiver.close()
    assert isinstance(listener, OurListener)
    assert keys == list(range(len(keys)))
    assert stats is not None and stats.dropped == 0


@pytest.mark.timeout(60)
def test_the_transceivers_connection_logs_and_restarts_under_supervision(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Events go through structlog with the board bound (a host's logging
    handlers receive them); the connection actor killed between two reads
    is restarted by its supervisor and the second read goes through."""
    caplog.set_level(logging.INFO)
    data = random_bytes(16 * 1024)
    with VirtualBoard(2, 2) as board, installed():
        label = "{}:{}".format(*board.address)
        with transceiver(board.address) as txrx:
            txrx.write_memory(0, 0, BASE, data)
            (first,) = SHARED.running()
            first.tell(Crash("killed by the test"))
            assert txrx.read_memory(0, 0, BASE, len(data)) == data
            (second,) = SHARED.running()
    assert second is not first
    events = [(r.getMessage(), getattr(r, "peer", None)) for r in caplog.records]
    assert ("compat.installed", None) in events
    assert ("connection.crash_injected", label) in events
    assert "actor.restart" in [event for event, _ in events]
