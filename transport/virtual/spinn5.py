"""A SpiNN-5 board on a BoardMonitor: 48 chips, their links and P2P tables,
system variables, VCPU blocks, routers and application cores, so that
SpiNNMan's own Transceiver can be the test client.

The shape is a Layout (the SpiNN-5's 48 chips on an 8 x 8 grid, or any
width x height); SpiNN5 writes what SC&MP would have left in each chip's
memory once booted and answers the commands a Transceiver sends beyond the
monitor's own: CMD_INFO, CMD_AR, CMD_APP_COPY_RUN, CMD_NNP, CMD_RTR,
CMD_SYNC, signals and counts over the cores, and the routing and heap
operations of CMD_ALLOC.
"""

from __future__ import annotations

import ipaddress
import struct
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from messages.scp.enums import AllocFree, SCPCommand
from messages.scp.info import ChipInfo
from messages.spinnaker.chip import SV, SV_ADDRESS, SV_SIZE, unpack_field
from messages.spinnaker.router import (
    LINK_DELTAS,
    N_LINKS,
    P2P_BITS,
    P2P_PER_WORD,
    P2P_TABLE,
    P2PRoute,
)
from transport.links.endpoint import Address
from transport.virtual.apps import Applications, Core
from transport.virtual.cores import IOBufs, VCPUs
from transport.virtual.memory import ChipMemory
from transport.virtual.monitor import BUILD_DATE, BoardMonitor, Handler, arguments
from transport.virtual.router import Routers, write_p2p_table
from transport.virtual.sdram import SDRAMHeap
from transport.virtual.sysvars import (
    FREE_SYSRAM,
    IOBUF_HEAP_BASE,
    IOBUF_SIZE,
    ROUTER_COPY,
    SYSTEM_HEAP_END,
    USER_HEAP_BASE,
    USER_HEAP_END,
    ChipPlace,
    write_system_variables,
)

XY = tuple[int, int]
_WORD = struct.Struct("<I")
#: A SpiNN-5 board's chips, row by row: (first x, last x) for y = 0..7.
_SPINN5_ROWS = ((0, 4), (0, 5), (0, 6), (0, 7), (1, 7), (2, 7), (3, 7), (4, 7))
#: The chips with 17 working cores on the board SpiNNMachine describes
#: (the others have 18); a real board's vary.
_SEVENTEEN_CORES = frozenset(
    {(1, 1), (1, 3), (3, 1), (3, 3), (3, 5), (5, 2), (5, 4), (5, 6)}
)


@dataclass(frozen=True)
class Layout:
    """Which chips a board has, how many cores each, and its root chip."""

    width: int
    height: int
    cores: Mapping[XY, int] = field(hash=False)
    root: XY = (0, 0)

    @classmethod
    def spinn5(cls) -> Layout:
        """The 48 chips of a SpiNN-5 board."""
        return cls(
            8,
            8,
            {
                (x, y): 17 if (x, y) in _SEVENTEEN_CORES else 18
                for y, (first, last) in enumerate(_SPINN5_ROWS)
                for x in range(first, last + 1)
            },
        )

    @classmethod
    def grid(cls, width: int, height: int, cores: int = 18) -> Layout:
        """Every chip of a width x height grid."""
        return cls(
            width, height, {(x, y): cores for x in range(width) for y in range(height)}
        )

    def over(self, x: int, y: int, link: int) -> XY | None:
        """The chip over ``link`` of (x, y), if the board has one there."""
        dx, dy = LINK_DELTAS[link]
        neighbour = (x + dx, y + dy)
        return neighbour if neighbour in self.cores else None

    def links(self, x: int, y: int) -> tuple[int, ...]:
        """The links of (x, y) that reach a chip of the board (both ways)."""
        return tuple(
            link for link in range(N_LINKS) if self.over(x, y, link) is not None
        )

    @cached_property
    def p2p(self) -> dict[XY, dict[XY, int]]:
        """Each chip's P2P routes: the link a packet to each chip leaves
        by (the lowest link on a shortest path), SELF for itself."""
        tables: dict[XY, dict[XY, int]] = {chip: {} for chip in self.cores}
        for target in self.cores:
            hops = self._hops_to(target)
            for chip, distance in hops.items():
                if chip == target:
                    tables[chip][target] = P2PRoute.SELF
                    continue
                tables[chip][target] = next(
                    link
                    for link in self.links(*chip)
                    if hops.get(self.over(*chip, link) or chip) == distance - 1
                )
        return tables

    def parent_link(self, x: int, y: int) -> int:
        """The link towards the root (SELF on the root)."""
        return self.p2p[x, y][self.root]

    def _hops_to(self, target: XY) -> dict[XY, int]:
        hops, queue = {target: 0}, deque([target])
        while queue:
            chip = queue.popleft()
            for link in self.links(*chip):
                neighbour = self.over(*chip, link)
                if neighbour is not None and neighbour not in hops:
                    hops[neighbour] = hops[chip] + 1
                    queue.append(neighbour)
        return hops


class SpiNN5:
    """The chips of a booted board, in the memory of ``monitor`` (which must
    keep a ChipMemory), and the commands that act on them."""

    def __init__(
        self, monitor: BoardMonitor, layout: Layout, ip_address: str = "127.0.0.1"
    ) -> None:
        if not isinstance(monitor.memory, ChipMemory):
            raise TypeError("a SpiNN-5 board's monitor needs a ChipMemory")
        self.monitor, self.layout = monitor, layout
        self.memory: ChipMemory = monitor.memory
        chips = [x << 8 | y for x, y in layout.cores]
        monitor.chips = frozenset(chips)
        #: Whether SC&MP keeps the cores' clocks in step (CMD_SYNC).
        self.sync = False
        self._write_chips(ip_address)
        self.system_heaps = {
            chip: SDRAMHeap(IOBUF_HEAP_BASE, SYSTEM_HEAP_END) for chip in chips
        }
        for chip in chips:
            monitor.heaps[chip] = SDRAMHeap(USER_HEAP_BASE, USER_HEAP_END)
        self.vcpus = VCPUs(
            self.memory,
            {x << 8 | y: n for (x, y), n in layout.cores.items()},
            BUILD_DATE,
        )
        self.iobufs = IOBufs(self.vcpus, self.system_heaps, IOBUF_SIZE)
        self.routers = Routers(self.memory, chips, ROUTER_COPY)
        self.applications = Applications(
            monitor,
            self.vcpus,
            self.iobufs,
            self.routers,
            self.system_heaps,
            self._neighbour,
            layout.root[0] << 8 | layout.root[1],
        )
        monitor.application_port = self.applications.deliver
        self._install()

    def core(self, x: int, y: int, p: int) -> Core:
        """Application core (x, y, p), to look at or drive from a test."""
        return self.applications.core(x, y, p)

    def count(self, x: int, y: int, counter: int, n: int = 1) -> None:
        """Add ``n`` to router diagnostic counter ``counter`` of (x, y)."""
        self.routers.count(x << 8 | y, counter, n)

    # -- what SC&MP leaves in memory -----------------------------------------

    def _write_chips(self, ip_address: str) -> None:
        ip = ipaddress.IPv4Address(ip_address).packed
        layout = self.layout
        for (x, y), n_cores in layout.cores.items():
            root = (x, y) == layout.root
            place = ChipPlace(
                x,
                y,
                layout.width,
                layout.height,
                n_cores,
                layout.links(x, y),
                layout.root,
                layout.root,
                ip if root else bytes(4),
            )
            write_system_variables(self.memory, place, BUILD_DATE)
            write_p2p_table(self.memory, x << 8 | y, layout.p2p[x, y])

    def _neighbour(self, chip: int, link: int) -> int | None:
        neighbour = self.layout.over(chip >> 8, chip & 0xFF, link)
        return None if neighbour is None else neighbour[0] << 8 | neighbour[1]

    # -- commands ----------------------------------------------------------------

    def _install(self) -> None:
        apps = self.applications
        self._heap_alloc = self.monitor.handler(SCPCommand.CMD_ALLOC)
        commands: dict[SCPCommand, Handler] = {
            SCPCommand.CMD_INFO: self._info,
            SCPCommand.CMD_ALLOC: self._alloc,
            SCPCommand.CMD_RTR: self.routers.command,
            SCPCommand.CMD_COUNT: self.vcpus.count_command,
            SCPCommand.CMD_SIG: apps.signal_command,
            SCPCommand.CMD_NNP: apps.nnp_command,
            SCPCommand.CMD_AR: apps.run_command,
            SCPCommand.CMD_APP_COPY_RUN: apps.copy_run_command,
            SCPCommand.CMD_SYNC: self._sync,
        }
        self.monitor.install(commands)

    def _info(self, data: bytes, chip: int, core: int, sender: Address) -> bytes:
        """CMD_INFO, from the chip's system variables, VCPU blocks, P2P
        table, router and heap."""
        sv = self.memory.read(chip, SV_ADDRESS, SV_SIZE)
        root = int(unpack_field(SV, "p2p_root", sv))
        word = self.memory.read_word(chip, P2P_TABLE + root // P2P_PER_WORD * 4)
        link_en = int(unpack_field(SV, "link_en", sv))
        eth = int(unpack_field(SV, "eth_addr", sv))
        return ChipInfo(
            n_cores=int(unpack_field(SV, "num_cpus", sv)),
            links=tuple(link for link in range(N_LINKS) if link_en >> link & 1),
            free_multicast_entries=self.routers.largest_free(chip),
            ethernet_up=bool(unpack_field(SV, "eth_up", sv)),
            largest_free_sdram=self.monitor.heaps[chip].largest_free(),
            largest_free_sram=FREE_SYSRAM,
            core_states=self.vcpus.states(chip),
            nearest_ethernet=(eth >> 8, eth & 0xFF),
            ip_address=bytes(unpack_field(SV, "ip_addr", sv)),
            parent_link=word >> (P2P_BITS * (root % P2P_PER_WORD)) & 7,
        ).to_bytes()

    def _alloc(self, data: bytes, chip: int, core: int, sender: Address) -> bytes:
        """CMD_ALLOC: the router's entries (ops 3-5) and the heap's space
        and tagged blocks (6, 7); the SDRAM ops are the monitor's."""
        argument_1, argument_2, argument_3 = arguments(data)
        op, app_id = argument_1 & 0xFF, (argument_1 >> 8) & 0xFF
        heap = self.monitor.heaps[chip]
        if op == AllocFree.ALLOC_ROUTING.value:
            return _WORD.pack(self.routers.allocate(chip, argument_2, app_id))
        if op == AllocFree.FREE_ROUTING_BY_POINTER.value:
            self.routers.free(chip, argument_2, bool(argument_3))
            return b""
        if op == AllocFree.FREE_ROUTING_BY_APP_ID.value:
            return _WORD.pack(self.routers.free_app(chip, app_id, bool(argument_2)))
        if op == AllocFree.SDRAM_SPACE.value:
            return struct.pack("<2I", heap.free_bytes(), heap.largest_free())
        if op == AllocFree.HEAP_TAG_POINTER.value:
            block = heap.find_tagged(app_id, argument_2 & 0xFF)
            return _WORD.pack(0 if block is None else block.address)
        assert self._heap_alloc is not None
        return self._heap_alloc(data, chip, core, sender)

    def _sync(self, data: bytes, chip: int, core: int, sender: Address) -> bytes:
        self.sync = bool(arguments(data)[0])
        return b""


def spinn5_monitor(
    *,
    layout: Layout | None = None,
    ip_address: str = "127.0.0.1",
    memory_limit: int = 512 << 20,
) -> tuple[BoardMonitor, SpiNN5]:
    """A monitor holding a booted SpiNN-5 board (or ``layout``)."""
    layout = layout if layout is not None else Layout.spinn5()
    monitor = BoardMonitor(layout.width, layout.height, memory=ChipMemory(memory_limit))
    return monitor, SpiNN5(monitor, layout, ip_address)
