"""Each chip's router as SC&MP runs it: the multicast table (as its copy in
SDRAM, which is what hosts read back), the allocator of its entries
(CMD_ALLOC ops 3-5), CMD_RTR (clear, load, fixed route), the P2P table and
the diagnostic registers.

No packets flow through the virtual board's routers; the diagnostic
counters count what a test says they saw (``count``), and clear when a
host writes the counter-enable register, as on a chip.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from messages.scp.enums import SCPResult
from messages.spinnaker.chip import SV, SV_ADDRESS
from messages.spinnaker.router import (
    CONTROL,
    CONTROL_AT_BOOT,
    COPY_ENTRIES,
    COUNTER_ENABLE,
    COUNTERS,
    ENTRY_IN_USE,
    FILTERS,
    FILTERS_AT_BOOT,
    FIRST_ALLOCATABLE,
    FIXED_ROUTE,
    FIXED_ROUTE_READ,
    MC_TABLE_SIZE,
    N_COUNTERS,
    P2P_COLUMN,
    P2P_COLUMN_BYTES,
    P2P_TABLE,
    ROUTE_BITS,
    RTR_ENTRY,
    UNUSED_ROUTE,
    P2PRoute,
    RouterOp,
    pack_p2p_column,
)
from transport.links.endpoint import Address
from transport.virtual.memory import ChipMemory
from transport.virtual.monitor import Reply, arguments

_WORD = struct.Struct("<I")
_UNUSED = RTR_ENTRY.pack(0, 0, UNUSED_ROUTE, 0xFFFF_FFFF, 0)
_FIXED_ROUTE_COPY = SV_ADDRESS + SV["fr_copy"].offset
#: A column of the P2P table with no routes in it.
_NO_ROUTES = pack_p2p_column([P2PRoute.NONE] * P2P_COLUMN)


class Routers:
    """The routers of the chips ``chips`` (x << 8 | y), their tables'
    copies at ``table`` in each chip's SDRAM."""

    def __init__(self, memory: ChipMemory, chips: Iterable[int], table: int) -> None:
        self.memory = memory
        self.table = table
        #: Each chip's allocated blocks of entries: first -> (end, app id).
        self.blocks: dict[int, dict[int, tuple[int, int]]] = {}
        for chip in chips:
            self.blocks[chip] = {}
            memory.write(chip, table, _UNUSED * COPY_ENTRIES)
            memory.write(chip, FILTERS, struct.pack("<16I", *FILTERS_AT_BOOT))
            memory.write_word(chip, CONTROL, CONTROL_AT_BOOT)
            memory.write_word(chip, COUNTER_ENABLE, (1 << N_COUNTERS) - 1)
        memory.on_write(COUNTER_ENABLE, self._counter_enable)

    # -- the allocator (CMD_ALLOC ops 3-5) -----------------------------------

    def allocate(self, chip: int, count: int, app_id: int) -> int:
        """The first entry of ``count`` free ones, or 0 if none fit."""
        if not count:
            return 0
        start = FIRST_ALLOCATABLE
        for first, (end, _) in sorted(self.blocks[chip].items()):
            if first - start >= count:
                break
            start = max(start, end)
        if MC_TABLE_SIZE - start < count:
            return 0
        self.blocks[chip][start] = (start + count, app_id)
        return start

    def free(self, chip: int, first: int, clear: bool) -> None:
        block = self.blocks[chip].pop(first, None)
        if block is not None and clear:
            self.clear(chip, first, block[0] - first)

    def free_app(self, chip: int, app_id: int, clear: bool) -> int:
        """Free every block of ``app_id``; how many there were."""
        mine = [
            first for first, (_, owner) in self.blocks[chip].items() if owner == app_id
        ]
        for first in mine:
            self.free(chip, first, clear)
        return len(mine)

    def largest_free(self, chip: int) -> int:
        """The most entries one allocation could have now."""
        largest, start = 0, FIRST_ALLOCATABLE
        for first, (end, _) in sorted(self.blocks[chip].items()):
            largest = max(largest, first - start)
            start = max(start, end)
        return max(largest, MC_TABLE_SIZE - start)

    # -- the table ---------------------------------------------------------------

    def clear(self, chip: int, first: int, count: int) -> None:
        self.memory.write(chip, self.table + first * RTR_ENTRY.size, _UNUSED * count)

    def set(
        self, chip: int, entry: int, key: int, mask: int, route: int, app_id: int
    ) -> None:
        self.memory.write(
            chip,
            self.table + entry * RTR_ENTRY.size,
            RTR_ENTRY.pack(0, ENTRY_IN_USE | app_id, route & ROUTE_BITS, key, mask),
        )

    def entries(self, chip: int) -> list[tuple[int, int, int, int, int]]:
        """(entry, app id, route, key, mask) of every entry in use."""
        data = self.memory.read(chip, self.table, MC_TABLE_SIZE * RTR_ENTRY.size)
        return [
            (entry, free & 0xFF, route, key, mask)
            for entry, (_, free, route, key, mask) in enumerate(
                RTR_ENTRY.iter_unpack(data)
            )
            if route < UNUSED_ROUTE
        ]

    def command(self, data: bytes, chip: int, core: int, sender: Address) -> bytes:
        """CMD_RTR (scamp-cmd.c cmd_rtr)."""
        argument_1, argument_2, argument_3 = arguments(data)
        op, app_id, count = (
            argument_1 & 0xFF,
            (argument_1 >> 8) & 0xFF,
            argument_1 >> 16,
        )
        if op == RouterOp.INIT:
            self.blocks[chip].clear()
            self.clear(chip, FIRST_ALLOCATABLE, MC_TABLE_SIZE - FIRST_ALLOCATABLE)
        elif op == RouterOp.CLEAR:
            if argument_2 + count > MC_TABLE_SIZE:
                raise Reply(SCPResult.RC_ARG)
            self.clear(chip, argument_2, count)
        elif op == RouterOp.LOAD:
            self._load(chip, argument_2, count, argument_3, app_id)
        elif op == RouterOp.FIXED_ROUTE:
            if argument_2 & FIXED_ROUTE_READ:
                return self.memory.read(chip, _FIXED_ROUTE_COPY, 4)
            self.memory.write_word(chip, _FIXED_ROUTE_COPY, argument_2 & ROUTE_BITS)
            self.memory.write_word(chip, FIXED_ROUTE, argument_2 & ROUTE_BITS)
        else:
            raise Reply(SCPResult.RC_ARG)
        return b""

    def _load(
        self, chip: int, table: int, count: int, offset: int, app_id: int
    ) -> None:
        """Copy entries (index, _, route, key, mask) from the chip's memory
        at ``table`` into the router, each at its index + ``offset``."""
        if not count:
            count = RTR_ENTRY.unpack(self.memory.read(chip, table, RTR_ENTRY.size))[1]
        if count > MC_TABLE_SIZE:
            raise Reply(SCPResult.RC_ARG)
        data = self.memory.read(chip, table, count * RTR_ENTRY.size) if count else b""
        for index, _, route, key, mask in RTR_ENTRY.iter_unpack(data):
            entry = index + offset
            if entry >= MC_TABLE_SIZE:
                raise Reply(SCPResult.RC_ARG)
            self.set(chip, entry, key, mask, route, app_id)

    # -- diagnostics -------------------------------------------------------------

    def count(self, chip: int, counter: int, n: int = 1) -> None:
        """Add ``n`` to diagnostic counter ``counter`` (0-15) if enabled."""
        if not 0 <= counter < N_COUNTERS:
            raise ValueError(f"counter {counter}: a router has 0..{N_COUNTERS - 1}")
        if self.memory.read_word(chip, COUNTER_ENABLE) >> counter & 1:
            address = COUNTERS + 4 * counter
            value = (self.memory.read_word(chip, address) + n) & 0xFFFF_FFFF
            self.memory.write_word(chip, address, value)

    def _counter_enable(self, chip: int, address: int, word: int) -> None:
        """Bits 16-31 written clear counters 0-15; bits 0-15 enable them."""
        for counter in range(N_COUNTERS):
            if word >> (16 + counter) & 1:
                self.memory.write_word(chip, COUNTERS + 4 * counter, 0)
        self.memory.write_word(chip, address, word & 0xFFFF)


def write_p2p_table(
    memory: ChipMemory, chip: int, routes: dict[tuple[int, int], int]
) -> None:
    """A chip's whole P2P table: ``routes`` by (x, y), NONE elsewhere."""
    table = bytearray(_NO_ROUTES * P2P_COLUMN)
    for x in {x for x, _ in routes}:
        column = [routes.get((x, y), P2PRoute.NONE) for y in range(P2P_COLUMN)]
        table[x * P2P_COLUMN_BYTES : (x + 1) * P2P_COLUMN_BYTES] = pack_p2p_column(
            column
        )
    memory.write(chip, P2P_TABLE, bytes(table))
