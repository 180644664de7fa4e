"""A chip's router as the host sees it: links, the P2P table, the multicast
table's copy, the diagnostic registers, and CMD_RTR's operations.

Links are numbered as SpiNNaker numbers them (0 east, then anticlockwise).
The P2P table gives, for every chip address ``x << 8 | y``, the link a
packet leaves by: 3 bits an entry, 8 entries a word. SC&MP keeps a copy of
the multicast table (rtr_entry_t, 16 bytes an entry) in SDRAM at
sv->rtr_copy, which is what a host reads back.
"""

from __future__ import annotations

import struct
from enum import IntEnum

#: The router's registers, and the P2P table above them.
ROUTER_BASE = 0xE100_0000
CONTROL = ROUTER_BASE + 0x00
ERROR_STATUS = ROUTER_BASE + 0x14
#: Writing 1 to bit 16 + n clears diagnostic counter n (bit n enables it).
COUNTER_ENABLE = ROUTER_BASE + 0x2C
FIXED_ROUTE = ROUTER_BASE + 0x84
FILTERS = ROUTER_BASE + 0x200
COUNTERS = ROUTER_BASE + 0x300
N_COUNTERS = 16
#: The control word SC&MP sets (rtr_init): enabled, wait1 field 0x40, and
#: the monitor core (0 here) in bits 8-12.
CONTROL_AT_BOOT = 0x0040_0001
#: The diagnostic filters SC&MP sets at boot (sark_hw.c dgf_init): local,
#: non-local and dumped multicast, P2P, nearest-neighbour, fixed-route.
FILTERS_AT_BOOT = (
    0x01FE7CF1,
    0x01FEBCF1,
    0x01FE7CF2,
    0x01FEBCF2,
    0x01FE7CF4,
    0x01FEBCF4,
    0x01FE7CF8,
    0x01FEBCF8,
    0x0001FCF1,
    0x0001FCF2,
    0x0001FCF4,
    0x0001FCF8,
    0,
    0,
    0,
    0,
)

# -- links and the P2P table ---------------------------------------------------

N_LINKS = 6
#: (dx, dy) over each link: east, north-east, north, west, south-west, south.
LINK_DELTAS = ((1, 0), (1, 1), (0, 1), (-1, 0), (-1, -1), (0, -1))

P2P_TABLE = ROUTER_BASE + 0x1_0000
P2P_BITS = 3
P2P_PER_WORD = 8
#: Entries a column of the table holds (one per y), so column x starts at
#: P2P_TABLE + x * P2P_COLUMN_BYTES.
P2P_COLUMN = 256
P2P_COLUMN_BYTES = P2P_COLUMN // P2P_PER_WORD * 4


class P2PRoute(IntEnum):
    """A P2P table entry: a link number, or one of these."""

    NONE = 6
    SELF = 7


def pack_p2p_column(routes: list[int]) -> bytes:
    """A column's words from its entries (y = 0 first)."""
    words = []
    for first in range(0, len(routes), P2P_PER_WORD):
        word = 0
        for index, route in enumerate(routes[first : first + P2P_PER_WORD]):
            word |= route << (P2P_BITS * index)
        words.append(word)
    return struct.pack(f"<{len(words)}I", *words)


# -- the multicast table -------------------------------------------------------

MC_TABLE_SIZE = 1024
#: Entry 0 is SC&MP's; allocations come from 1 up.
FIRST_ALLOCATABLE = 1
#: next (a block's end, or a loaded entry's index), free (0x8000 | app_id
#: once used), route, key, mask.
RTR_ENTRY = struct.Struct("<HHIII")
ENTRY_IN_USE = 0x8000
#: The route of an unused entry (a route has 24 bits: 6 links, 18 cores).
UNUSED_ROUTE = 0xFF00_0000
ROUTE_BITS = 0x00FF_FFFF
#: Entries in the table's copy: one more than the table, kept unused.
COPY_ENTRIES = MC_TABLE_SIZE + 1


class RouterOp(IntEnum):
    """CMD_RTR's operation (arg1's low byte); arg1 >> 16 is a count and
    bits 8-15 an app id."""

    INIT = 0  # clear every entry and every allocation
    CLEAR = 1  # arg2 = first entry, count entries
    LOAD = 2  # arg2 = table address on the chip, arg3 = first entry
    FIXED_ROUTE = 3  # arg2 = route; bit 31 of arg2 set: read it instead


#: arg2's bit that makes FIXED_ROUTE a read.
FIXED_ROUTE_READ = 1 << 31
