"""SpiNNMan's own Transceiver comes up against the SpiNN-5 virtual board and
drives it as SpiNNFrontEndCommon does at run time, each result checked;
then again through a board that drops, duplicates and reorders 1% of
datagrams each way, where SpiNNMan's own retries must ride through.

SpiNNMan talks to SC&MP on port 17893 only, so each board serves it on
the first loopback address from 127.0.0.2 where that port is free: two
runs of the suite side by side (or another test's SpiNN-5 board) each get
an address of their own.
"""

from __future__ import annotations

import random

import pytest
from spinn_machine import (
    CoreSubset,
    CoreSubsets,
    Machine,
    MulticastRoutingEntry,
    RoutingEntry,
)
from spinn_machine.tags import IPTag, ReverseIPTag
from spinnman.data.spinnman_data_writer import SpiNNManDataWriter
from spinnman.messages.scp.enums import Signal
from spinnman.model.enums import CPUState
from spinnman.transceiver import Transceiver, create_transceiver_from_hostname

from messages.scp.layout import SCP_SCAMP_PORT
from tests.transport.loopback import first_free
from transport import FaultPlan, VirtualBoard
from transport.virtual.apps import Core, StandIn
from transport.virtual.spinn5 import Layout

BASE = 0x6100_0000
APP = 30
#: What the host loads: any bytes stand for the binary (a multiple of 4).
IMAGE = b"hello.aplx".ljust(1024, b"\x5a")
CORES = (1, 2, 3)


class Hello(StandIn):
    """Says where it runs in its IOBUF, and otherwise runs as StandIn does."""

    name = "hello"

    def on_start(self, core: Core, wait: bool) -> None:
        super().on_start(core, wait)
        core.print(f"hello from {core.x},{core.y},{core.p}\n")


@pytest.fixture
def writer(spinnman_setup: None) -> SpiNNManDataWriter:
    """SpiNNMan's set-up for a test (spinnman_setup: its default
    configuration, a version 5 (48-chip) board), and its global data, which
    holds the machine."""
    return SpiNNManDataWriter.mock()


def serve(faults: FaultPlan | None = None) -> VirtualBoard:
    """A SpiNN-5 board on SC&MP's port, on a loopback address of its own."""
    board = first_free(
        2,
        lambda host: VirtualBoard.spinn5(host=host, port=SCP_SCAMP_PORT, faults=faults),
    )
    assert board.chips is not None
    board.chips.applications.register(IMAGE, Hello)
    return board.start()


def come_up(
    writer: SpiNNManDataWriter, board: VirtualBoard
) -> tuple[Transceiver, Machine]:
    transceiver = create_transceiver_from_hostname(board.address[0])
    machine = transceiver.get_machine_details()
    writer.set_machine(machine)
    return transceiver, machine


def check_machine(machine: Machine, host: str) -> None:
    layout = Layout.spinn5()
    assert machine.n_chips == 48
    assert {(chip.x, chip.y) for chip in machine.chips} == set(layout.cores)
    for chip in machine.chips:
        assert chip.n_processors == layout.cores[chip.x, chip.y]
        assert chip.n_placable_processors == layout.cores[chip.x, chip.y] - 1
        assert {link.source_link_id for link in chip.router.links} == set(
            layout.links(chip.x, chip.y)
        )
        for link in chip.router.links:  # each link's way back is there too
            back = machine[link.destination_x, link.destination_y].router
            assert back.is_link((link.source_link_id + 3) % 6)
        assert (chip.nearest_ethernet_x, chip.nearest_ethernet_y) == (0, 0)
    (ethernet,) = machine.ethernet_connected_chips
    assert (ethernet.x, ethernet.y, ethernet.ip_address) == (0, 0, host)
    assert machine.boot_chip is ethernet


def drive(transceiver: Transceiver, board: VirtualBoard, size: int) -> None:
    """SpiNNFrontEndCommon's most used calls, each result checked."""
    chips = board.chips
    assert chips is not None
    host = board.address[0]
    data = random.Random(size).randbytes(size)
    transceiver.write_memory(1, 1, BASE, data)
    assert transceiver.read_memory(1, 1, BASE, size) == data

    first = transceiver.malloc_sdram(2, 2, 1000, APP, tag=1)
    second = transceiver.malloc_sdram(2, 2, 1000, APP, tag=2)
    assert second >= first + 1000
    held = {
        (b.address, b.app_id, b.tag) for b in board.monitor.heaps[2 << 8 | 2].blocks
    }
    assert {(first, APP, 1), (second, APP, 2)} <= held

    transceiver.set_ip_tag(IPTag(host, 0, 0, 1, "127.0.0.1", 12345, strip_sdp=True))
    transceiver.set_reverse_ip_tag(ReverseIPTag(host, 2, 23456, 1, 1, 3, sdp_port=2))
    tags = {tag.tag: tag for tag in transceiver.get_tags()}
    assert set(tags) == {1, 2}
    forward, reverse = tags[1], tags[2]
    assert isinstance(forward, IPTag) and isinstance(reverse, ReverseIPTag)
    assert (forward.ip_address, forward.port, forward.strip_sdp) == (
        "127.0.0.1",
        12345,
        True,
    )
    assert (reverse.port, reverse.destination_x, reverse.destination_y) == (23456, 1, 1)
    assert (reverse.destination_p, reverse.sdp_port) == (3, 2)
    transceiver.clear_ip_tag(1)
    assert {tag.tag for tag in transceiver.get_tags()} == {2}

    cores = CoreSubsets()
    for chip in SpiNNManDataWriter.get_machine().chips:
        cores.add_core_subset(CoreSubset(chip.x, chip.y, CORES))
    # SpiNNMan's annotation leaves out the bytearray its write_memory takes.
    transceiver.execute_flood(cores, bytearray(IMAGE), APP, wait=True)  # type: ignore[arg-type]
    assert transceiver.get_core_state_count(APP, CPUState.READY) == len(cores) == 144
    transceiver.send_signal(APP, Signal.START)
    assert transceiver.get_core_state_count(APP, CPUState.RUNNING) == 144
    infos = transceiver.get_cpu_infos(cores)
    assert sorted(infos) == sorted(
        (s.x, s.y, p) for s in cores.core_subsets for p in s.processor_ids
    )
    for info in (infos.get_cpu_info(*xyp) for xyp in infos):
        assert (info.state, info.application_id, info.application_name) == (
            CPUState.RUNNING,
            APP,
            "hello",
        )
    texts = {(io.x, io.y, io.p): io.iobuf for io in transceiver.get_iobuf(cores)}
    assert texts == {xyp: "hello from {},{},{}\n".format(*xyp) for xyp in infos}

    routes = [
        MulticastRoutingEntry(
            0x1000 + (i << 4),
            0xFFFF_FFF0,
            RoutingEntry(processor_ids=[i % 17 + 1], link_ids=[i % 6]),
        )
        for i in range(40)
    ]
    transceiver.load_multicast_routes(3, 3, routes, APP)
    loaded = transceiver.get_multicast_routes(3, 3, APP)
    assert [(r.key, r.mask, set(r.processor_ids), set(r.link_ids)) for r in loaded] == [
        (r.key, r.mask, set(r.processor_ids), set(r.link_ids)) for r in routes
    ]
    assert transceiver.get_multicast_routes(3, 3, APP + 1) == []
    transceiver.load_fixed_route(
        3, 3, RoutingEntry(processor_ids=[2], link_ids=[1]), APP
    )
    fixed = transceiver.read_fixed_route(3, 3, APP)
    assert (set(fixed.processor_ids), set(fixed.link_ids)) == ({2}, {1})

    transceiver.control_sync(True)
    assert chips.sync is True
    transceiver.control_sync(False)
    assert chips.sync is False

    chips.count(4, 4, 0, 7)  # local multicast packets
    chips.count(4, 4, 8, 2)  # dropped multicast packets
    diagnostics = transceiver.get_router_diagnostics(4, 4)
    assert diagnostics.n_local_multicast_packets == 7
    assert diagnostics.n_dropped_multicast_packets == 2
    assert (diagnostics.mon, diagnostics.wait_1) == (0, 0x40)
    transceiver.clear_router_diagnostic_counters((4, 4))
    assert transceiver.get_router_diagnostics(4, 4).registers == [0] * 16

    transceiver.stop_application(APP)
    assert transceiver.get_core_state_count(APP, CPUState.RUNNING) == 0
    assert transceiver.get_core_state_count(0, CPUState.IDLE) == 856 - 48
    assert transceiver.get_multicast_routes(3, 3) == []
    assert all(b.app_id != APP for b in board.monitor.heaps[2 << 8 | 2].blocks)


@pytest.mark.timeout(60)
def test_transceiver_comes_up_and_drives_a_spinn5_board(
    writer: SpiNNManDataWriter,
) -> None:
    with serve() as board:
        transceiver, machine = come_up(writer, board)
        try:
            check_machine(machine, board.address[0])
            drive(transceiver, board, 1 << 20)
        finally:
            transceiver.close()
        assert board.stats.errors == {}


@pytest.mark.timeout(120)
def test_spinnman_retries_ride_through_a_lossy_spinn5_board(
    writer: SpiNNManDataWriter,
) -> None:
    """SpiNNMan waits a second for each lost reply (six for an image copy),
    so this one moves 128 KiB rather than 1 MiB."""
    plan = FaultPlan(drop=0.01, duplicate=0.01, reorder=0.01, seed=33)
    with serve(plan) as board:
        transceiver, machine = come_up(writer, board)
        try:
            check_machine(machine, board.address[0])
            drive(transceiver, board, 128 << 10)
        finally:
            transceiver.close()
    counts = plan.counts
    assert counts.dropped and counts.duplicated and counts.reordered, counts


@pytest.mark.timeout(90)
def test_the_same_transceiver_runs_on_spinnactors_after_install(
    writer: SpiNNManDataWriter,
) -> None:
    """actors.compat.install(): the unmodified Transceiver comes up and does
    the same work with its pipelines on spinnactors' actors; uninstall()
    gives SpiNNMan its own back."""
    from spinnman.processes import abstract_multi_connection_process as process

    from actors.compat import installed

    original = process.SCPRequestPipeLine
    with installed(), serve() as board:
        assert process.SCPRequestPipeLine is not original
        assert process.SCPRequestPipeLine.__module__.startswith("actors.")
        transceiver, machine = come_up(writer, board)
        try:
            check_machine(machine, board.address[0])
            drive(transceiver, board, 1 << 20)
        finally:
            transceiver.close()
        assert board.stats.errors == {}
    assert process.SCPRequestPipeLine is original
