"""The SpiNN-5 board's chips, driven with SpiNNMan's own requests and
parsed with SpiNNMan's own parsers: its shape, system variables, chip info,
routers, application loading, signals and stand-ins (no sockets)."""

from __future__ import annotations

import struct
from collections import deque
from typing import Any

import pytest
from spinnman.constants import CPU_IOBUF_ADDRESS_OFFSET, CPU_USER_START_ADDRESS
from spinnman.exceptions import SpinnmanUnexpectedResponseCodeException
from spinnman.messages.scp import impl as theirs
from spinnman.messages.scp.enums import Signal as TheirSignal
from spinnman.messages.spinnaker_boot import SystemVariableDefinition as SVD
from spinnman.model.cpu_info import _VCPU_PATTERN, CPUInfo
from spinnman.model.enums import CPUState as TheirState

from messages.scp import CPUState, SCPResult
from messages.scp.app import image_checksum
from messages.spinnaker.chip import SDRAM_SYS, SV, VCPU, VCPU_SIZE
from messages.spinnaker.router import LINK_DELTAS, P2PRoute
from tests.transport.test_monitor import SENDER, ask, datagram, result_of
from transport.virtual.apps import Core, StandIn
from transport.virtual.monitor import BoardMonitor
from transport.virtual.spinn5 import Layout, SpiNN5, spinn5_monitor
from transport.virtual.sysvars import IOBUF_SIZE

APP = 16
IMAGE = bytes(range(256)) * 4


@pytest.fixture
def board() -> tuple[BoardMonitor, SpiNN5]:
    return spinn5_monitor(ip_address="10.11.12.13")


def test_the_layout_is_48_chips_with_two_way_links_and_shortest_p2p_routes() -> None:
    layout = Layout.spinn5()
    assert len(layout.cores) == 48 and sum(layout.cores.values()) == 856
    for (x, y), routes in layout.p2p.items():
        for link in layout.links(x, y):
            over = layout.over(x, y, link)
            assert over is not None and (link + 3) % 6 in layout.links(*over)
        distance = hops_from(layout, (x, y))
        assert set(routes) == set(layout.cores)
        for target, route in routes.items():
            here, steps = (x, y), 0
            while route != P2PRoute.SELF:  # follow the tables to the target
                dx, dy = LINK_DELTAS[route]
                here, steps = (here[0] + dx, here[1] + dy), steps + 1
                route = layout.p2p[here][target]
            assert here == target and steps == distance[target]
    assert layout.parent_link(0, 0) == P2PRoute.SELF
    assert layout.over(4, 0, 0) is None  # (5, 0) is not on a SpiNN-5


def hops_from(layout: Layout, start: tuple[int, int]) -> dict[tuple[int, int], int]:
    """Breadth-first hops over the board's links."""
    hops, queue = {start: 0}, deque([start])
    while queue:
        here = queue.popleft()
        for link in layout.links(*here):
            there = layout.over(*here, link)
            if there is not None and there not in hops:
                hops[there] = hops[here] + 1
                queue.append(there)
    return hops


def test_system_variables_read_as_spinnman_defines_them(
    board: tuple[BoardMonitor, SpiNN5],
) -> None:
    monitor, _ = board
    theirs_at = {d.offset for d in SVD}
    for name, field in SV.items():  # our offsets (sark.h's) are SpiNNMan's too
        assert field.offset in theirs_at or name in ("shm_root", "sync_alignment")
    assert _VCPU_PATTERN.size == VCPU_SIZE
    assert (VCPU["iobuf"].offset, VCPU["user0"].offset) == (
        CPU_IOBUF_ADDRESS_OFFSET,
        CPU_USER_START_ADDRESS,
    )
    read = ask(monitor, theirs.ReadMemory((3, 2, 0), 0xF500_7F00, 256))
    sv = bytes(read.data[read.offset : read.offset + 256])
    assert (
        ask(monitor, theirs.ReadMemory((3, 2, 0), 0xE500_7F00, 256)).data[
            read.offset : read.offset + 256
        ]
        == sv
    )  # the buffered alias is the same memory

    def value(variable: SVD) -> Any:
        if variable.data_type.is_byte_array:
            assert variable.array_size is not None
            return sv[variable.offset : variable.offset + variable.array_size]
        return struct.unpack_from(variable.data_type.struct_code, sv, variable.offset)[
            0
        ]

    assert (value(SVD.x), value(SVD.y)) == (3, 2)
    assert (value(SVD.x_size), value(SVD.y_size)) == (8, 8)
    assert value(SVD.iobuf_size) == IOBUF_SIZE
    assert (value(SVD.nearest_ethernet_x), value(SVD.nearest_ethernet_y)) == (0, 0)
    assert value(SVD.is_root_chip) == 0 and value(SVD.ethernet_ip_address) == bytes(4)
    assert value(SVD.physical_to_virtual_core_map)[:19] == bytes(range(18)) + b"\xff"
    root = ask(monitor, theirs.ReadMemory((255, 255, 0), 0xF500_7FF0, 4))
    assert bytes(root.data[root.offset : root.offset + 4]) == bytes([10, 11, 12, 13])


def test_chip_info_parses_as_spinnman_parses_it(
    board: tuple[BoardMonitor, SpiNN5],
) -> None:
    monitor, _ = board
    root = ask(monitor, theirs.GetChipInfo(255, 255)).chip_info
    assert (root.x, root.y, root.n_cores) == (0, 0, 18)
    assert root.is_ethernet_available and root.ethernet_ip_address == "10.11.12.13"
    assert root.working_links == [0, 1, 2] and root.parent_link is None
    assert root.core_states[0] is TheirState.RUNNING
    assert set(root.core_states[1:]) == {TheirState.IDLE}
    assert root.largest_free_sdram_block == 123_469_792
    inner = ask(monitor, theirs.GetChipInfo(3, 3)).chip_info
    assert (inner.x, inner.y, inner.n_cores) == (3, 3, 17)
    assert inner.working_links == [0, 1, 2, 3, 4, 5]
    assert inner.core_states[17] is TheirState.DEAD
    assert not inner.is_ethernet_available and inner.ethernet_ip_address is None
    assert inner.parent_link in (3, 4, 5)  # west, south-west or south: home


def test_chips_off_the_board_are_routing_errors(
    board: tuple[BoardMonitor, SpiNN5],
) -> None:
    monitor, _ = board
    assert (
        result_of(monitor, datagram(theirs.GetVersion(7, 0, 0))) is SCPResult.RC_ROUTE
    )
    assert (
        result_of(monitor, datagram(theirs.GetVersion(0, 7, 0))) is SCPResult.RC_ROUTE
    )


def test_an_image_is_copied_over_a_link_checked_and_started(
    board: tuple[BoardMonitor, SpiNN5],
) -> None:
    monitor, chips = board
    chips.applications.register(IMAGE, Hello)
    for offset in range(0, len(IMAGE), 256):
        piece = IMAGE[offset : offset + 256]
        ask(monitor, theirs.WriteMemory((0, 0, 0), SDRAM_SYS + offset, piece))
    wrong = theirs.AppCopyRun(1, 0, 3, len(IMAGE), APP, [1, 2], 12345)
    with pytest.raises(SpinnmanUnexpectedResponseCodeException, match="RC_SUM"):
        ask(monitor, wrong)
    assert chips.core(1, 0, 1).state is CPUState.IDLE
    right = theirs.AppCopyRun(1, 0, 3, len(IMAGE), APP, [1, 2], image_checksum(IMAGE))
    ask(monitor, right)
    assert monitor.memory.read(1 << 8, SDRAM_SYS, len(IMAGE)) == IMAGE
    assert ask(monitor, theirs.CountState(0, 0, APP, TheirState.RUNNING)).count == 2
    assert chips.core(1, 0, 2).iobuf == "hello from 1,0,2\n"
    for request in (
        theirs.AppCopyRun(2, 0, 0, len(IMAGE), APP, [1], 0),  # (3, 0) has none yet
    ):
        assert result_of(monitor, datagram(request)) is SCPResult.RC_OK
    assert (
        result_of(monitor, datagram(theirs.AppCopyRun(4, 7, 1, 4, APP, [1], 0)))
        is SCPResult.RC_TIMEOUT
    )  # nothing over link 1 (north-east) of (4, 7)
    assert (
        result_of(monitor, datagram(theirs.ApplicationRun(APP, 0, 0, [0, 1])))
        is SCPResult.RC_ARG
    )  # the monitor cannot be restarted


class Hello(StandIn):
    name = "hello"

    def on_start(self, core: Core, wait: bool) -> None:
        super().on_start(core, wait)
        core.print(f"hello from {core.x},{core.y},{core.p}\n")


def test_signals_move_stand_ins_through_their_states(
    board: tuple[BoardMonitor, SpiNN5],
) -> None:
    monitor, chips = board
    cores = chips.applications.load(StandIn, [(2, 2, 1), (4, 5, 3)], APP, wait=True)

    def count(state: TheirState) -> int:
        return int(ask(monitor, theirs.CountState(0, 0, APP, state)).count)

    assert count(TheirState.READY) == 2
    for signal, state in (
        (TheirSignal.START, TheirState.RUNNING),
        (TheirSignal.PAUSE, TheirState.PAUSED),
        (TheirSignal.CONTINUE, TheirState.RUNNING),
        (TheirSignal.EXIT, TheirState.FINISHED),
    ):
        ask(monitor, theirs.SendSignal(APP, signal))
        assert count(state) == 2, signal
    assert [core.state for core in cores] == [CPUState.FINISHED] * 2
    sig = bytearray(datagram(theirs.SendSignal(APP, TheirSignal.START)))
    sig[6:8] = bytes([1, 1])  # a multicast signal must start at the root
    assert result_of(monitor, bytes(sig)) is SCPResult.RC_ARG


def test_stop_frees_the_applications_memory_routes_and_iobuf(
    board: tuple[BoardMonitor, SpiNN5],
) -> None:
    monitor, chips = board
    (core,) = chips.applications.load(Hello, [(1, 1, 4)], APP)
    ask(monitor, theirs.SDRAMAlloc(1, 1, APP, 4096))
    base = ask(monitor, theirs.RouterAlloc(1, 1, APP, 10)).base_address
    assert base == 1 and chips.routers.largest_free(1 << 8 | 1) == 1023 - 10
    info = ask(monitor, theirs.ReadMemory((1, 1, 0), 0xE500_7000 + 128 * 4, 128))
    vcpu = CPUInfo(1, 1, 4, _VCPU_PATTERN.unpack_from(info.data, info.offset))
    assert (vcpu.state, vcpu.application_id, vcpu.application_name) == (
        TheirState.RUNNING,
        APP,
        "hello",
    )
    ask(monitor, theirs.AppStop(APP))
    assert core.state is CPUState.IDLE and core.app_id == 0 and core.iobuf == ""
    assert monitor.heaps[1 << 8 | 1].blocks == []
    assert chips.routers.largest_free(1 << 8 | 1) == 1023
    assert chips.system_heaps[1 << 8 | 1].blocks == []  # the IOBUF buffer


def test_iobuf_chains_buffers_and_a_full_heap_is_a_run_time_error(
    board: tuple[BoardMonitor, SpiNN5],
) -> None:
    _, chips = board
    (core,) = chips.applications.load(StandIn, [(0, 0, 1)], APP)
    text = "".join(f"line {i}\n" for i in range(3000))  # ~ 2 buffers' worth
    core.print(text)
    assert core.iobuf == text
    first = int(chips.vcpus.get(0, 1, "iobuf"))
    assert chips.memory.read_word(0, first) != 0  # chained to a second
    while core.state is CPUState.RUNNING:
        core.print("x" * IOBUF_SIZE)
    assert core.state is CPUState.RUN_TIME_EXCEPTION
    assert chips.vcpus.get(0, 1, "rt_code") == 14  # RTE_IOBUF


def test_routers_answer_rtr_and_alloc_as_sc_and_mp_does(
    board: tuple[BoardMonitor, SpiNN5],
) -> None:
    monitor, chips = board

    def alloc(op: int, argument_2: int = 0, argument_3: int = 0) -> bytes:
        request = bytearray(datagram(theirs.RouterAlloc(2, 1, APP, 1)))
        struct.pack_into("<3I", request, 14, APP << 8 | op, argument_2, argument_3)
        reply = monitor.handle(bytes(request), SENDER)
        assert reply is not None and reply[10] == SCPResult.RC_OK.value
        return reply[14:]

    first = struct.unpack("<I", alloc(3, 100))[0]
    second = struct.unpack("<I", alloc(3, 24))[0]
    assert (first, second) == (1, 101)
    alloc(4, first)  # free the first block
    assert struct.unpack("<I", alloc(5))[0] == 1  # one block of APP left
    assert struct.unpack("<I", alloc(3, 2000))[0] == 0  # no room: 0
    ask(monitor, theirs.SDRAMAlloc(2, 1, APP, 64, tag=9))
    free, largest = struct.unpack("<2I", alloc(6))
    assert free == largest == 123_469_792 - 64
    assert struct.unpack("<I", alloc(7, 9))[0] == 0x6000_0020
    clear = bytearray(datagram(theirs.RouterClear(2, 1)))
    struct.pack_into("<3I", clear, 14, 1000 << 16 | 1, 100, 0)  # 100..1099
    assert result_of(monitor, bytes(clear)) is SCPResult.RC_ARG
    struct.pack_into("<I", clear, 14, 9)  # no op 9
    assert result_of(monitor, bytes(clear)) is SCPResult.RC_ARG
    assert chips.routers.entries(2 << 8 | 1) == []


def test_writing_the_counter_enable_register_clears_the_counters(
    board: tuple[BoardMonitor, SpiNN5],
) -> None:
    monitor, chips = board
    chips.count(5, 5, 3, 9)
    chips.count(5, 5, 4, 2)
    counters = ask(monitor, theirs.ReadMemory((5, 5, 0), 0xE100_0300, 64))
    assert struct.unpack_from("<16I", counters.data, counters.offset)[3:5] == (9, 2)
    ask(monitor, theirs.WriteMemory((5, 5, 0), 0xF100_002C, struct.pack("<I", 1 << 19)))
    after = ask(monitor, theirs.ReadMemory((5, 5, 0), 0xE100_0300, 64))
    assert struct.unpack_from("<16I", after.data, after.offset)[3:5] == (0, 2)


def test_nearest_neighbour_packets_other_than_signals_are_not_modelled(
    board: tuple[BoardMonitor, SpiNN5],
) -> None:
    monitor, _ = board
    request = bytearray(datagram(theirs.AppStop(APP)))
    struct.pack_into("<I", request, 18, 1 << 28)  # SIG0 op 1: the LEDs
    assert result_of(monitor, bytes(request)) is SCPResult.RC_ARG


class Echo(StandIn):
    """Answers SDP on port 1 with the data reversed, and tells tag 1."""

    name = "echo"

    def __init__(self) -> None:
        self.heard: deque[bytes] = deque()

    def on_sdp(self, core: Core, port: int, data: bytes) -> bytes | None:
        self.heard.append(data)
        core.send(1, b"heard " + data)
        return data[::-1] if port == 1 else None


def test_sdp_to_an_application_port_reaches_its_stand_in(
    board: tuple[BoardMonitor, SpiNN5],
) -> None:
    monitor, chips = board
    (core,) = chips.applications.load(Echo, [(6, 6, 5)], APP)
    to_core = bytes([0, 0, 0x07, 0xFF, 1 << 5 | 5, 7 << 5 | 31, 6, 6, 0, 0]) + b"abc"
    reply = monitor.handle(to_core, SENDER)
    assert reply is not None and reply[10:] == b"cba"
    assert reply[4:10] == bytes([7 << 5 | 31, 1 << 5 | 5, 0, 0, 6, 6])
    assert chips.applications.dropped == 1  # no tag 1 yet: not sent
    ask(monitor, theirs.IPTagSet(0, 0, [127, 0, 0, 1], 9999, 1, strip=True))
    assert (
        monitor.handle(to_core[:4] + bytes([2 << 5 | 5]) + to_core[5:], SENDER) is None
    )
    assert list(monitor.outbox) == [(b"heard abc", ("127.0.0.1", 9999))]
    idle = to_core[:4] + bytes([1 << 5 | 6]) + to_core[5:]  # core 6 runs nothing
    idle = bytes([0, 0, 0x87]) + idle[3:] + bytes(12)
    assert result_of(monitor, idle) is SCPResult.RC_PORT
    assert core.state is CPUState.RUNNING


class Broken(StandIn):
    def on_sdp(self, core: Core, port: int, data: bytes) -> bytes | None:
        raise RuntimeError("a bug in the stand-in")


def test_a_stand_in_that_raises_stops_its_core_not_the_board(
    board: tuple[BoardMonitor, SpiNN5],
) -> None:
    monitor, chips = board
    (core,) = chips.applications.load(Broken, [(3, 4, 2)], APP)
    to_core = bytes([0, 0, 0x07, 0xFF, 1 << 5 | 2, 7 << 5 | 31, 4, 3, 0, 0]) + b"x"
    assert monitor.handle(to_core, SENDER) is None
    assert core.state is CPUState.RUN_TIME_EXCEPTION
    assert chips.vcpus.get(3 << 8 | 4, 2, "rt_code") == 9  # RTE_ABORT
    assert result_of(monitor, datagram(theirs.GetVersion(3, 4, 0))) is SCPResult.RC_OK
    too_long = theirs.AppCopyRun(1, 0, 3, 16 << 20, APP, [1], 0)
    assert result_of(monitor, datagram(too_long)) is SCPResult.RC_ARG


def test_other_layouts_get_the_same_chips_in_their_own_shape() -> None:
    monitor, _ = spinn5_monitor(layout=Layout.grid(2, 2, cores=5))
    corner = ask(monitor, theirs.GetChipInfo(1, 1)).chip_info
    assert (corner.n_cores, corner.working_links) == (5, [3, 4, 5])
    assert corner.parent_link == 4  # south-west, straight to the root
    dims = ask(monitor, theirs.ReadMemory((0, 0, 0), 0xF500_7F02, 2))
    assert bytes(dims.data[dims.offset : dims.offset + 2]) == bytes([2, 2])
    assert (
        result_of(monitor, datagram(theirs.GetVersion(2, 0, 0))) is SCPResult.RC_ROUTE
    )
