"""Each chip's system variables (sv_t at 0xf5007f00), as SC&MP leaves them
once the board has booted, and where the virtual board keeps things.

SpiNNMan reads the machine's size, each chip's core maps, the IOBUF size,
the Ethernet address and the routing table's copy from here, so these are
the values a host believes; the addresses are this board's plan of its
SDRAM (the real board's differ a little; hosts follow the pointers).
"""

from __future__ import annotations

from dataclasses import dataclass

from messages.spinnaker.chip import (
    NETINIT_PHASE_DONE,
    SDRAM_BASE,
    SDRAM_SYS,
    SV,
    SV_ADDRESS,
    SV_SIZE,
    SYSRAM_BASE,
    VCPU_ADDRESS,
    pack_fields,
)
from transport.virtual.sdram import SparseMemory

# -- the board's plan of each chip's SDRAM ---------------------------------------

#: The user heap (CMD_ALLOC's SDRAM: 117.75 MiB less the heap's header,
#: as a booted SpiNN-5 chip reports), then the system heap (the routing
#: table's copy, IOBUF buffers), then sv->sdram_sys (images, route loads).
USER_HEAP_BASE = SDRAM_BASE + 0x20
SYSTEM_HEAP_BASE = SDRAM_BASE + 0x75C_0000
ROUTER_COPY = SYSTEM_HEAP_BASE
IOBUF_HEAP_BASE = SYSTEM_HEAP_BASE + (64 << 10)
USER_HEAP_END = SYSTEM_HEAP_BASE
SYSTEM_HEAP_END = SDRAM_SYS
#: Free System RAM a chip reports (sv->sysram_heap's largest block).
FREE_SYSRAM = 0x6E00
#: Bytes of text in one IOBUF buffer (sv->iobuf_size, SpiNNMan's default).
IOBUF_SIZE = 16384
#: sv->hw_ver of a SpiNN-5 board.
HARDWARE_VERSION = 5


@dataclass(frozen=True)
class ChipPlace:
    """Where a chip sits: what its system variables say about position."""

    x: int
    y: int
    width: int
    height: int
    n_cores: int
    links: tuple[int, ...]
    root: tuple[int, int]
    ethernet: tuple[int, int]
    ip_address: bytes


def system_variables(place: ChipPlace, boot_time: int) -> bytes:
    """One chip's 256 bytes of sv_t."""
    cores = bytes(range(place.n_cores)).ljust(20, b"\xff")
    root = place.root == (place.x, place.y)
    values: dict[str, int | bytes] = {
        "p2p_addr": place.x << 8 | place.y,
        "p2p_dims": place.width << 8 | place.height,
        "p2p_up": 1,
        "eth_addr": place.ethernet[0] << 8 | place.ethernet[1],
        "hw_ver": HARDWARE_VERSION,
        "eth_up": int(place.ip_address != bytes(4)),
        "p2pb_repeats": 4,
        "p2p_sql": 4,
        "clk_div": 0x33,
        "unix_time": boot_time,
        "cpu_clk": 200,
        "mem_clk": 130,
        "forward": 0x3F,
        "retry": 0x18,
        "peek_time": 200,
        "led_period": 1,
        "netinit_bc_wait": 50,
        "netinit_phase": NETINIT_PHASE_DONE,
        "p2p_root": place.root[0] << 8 | place.root[1],
        "led0": 1,
        "root_chip": int(root),
        "num_buf": 7,
        "boot_delay": 20,
        "iobuf_size": IOBUF_SIZE,
        "sysbuf_size": 32768,
        "link_en": sum(1 << link for link in place.links),
        "status_map": bytes(20),
        "p2v_map": cores,
        "v2p_map": cores,
        "num_cpus": place.n_cores,
        "rom_cpus": place.n_cores,
        "sdram_base": USER_HEAP_BASE,
        "sysram_base": SYSRAM_BASE + 0x100,
        "sdram_sys": SDRAM_SYS,
        "vcpu_base": VCPU_ADDRESS,
        "rtr_copy": ROUTER_COPY,
        "ip_addr": place.ip_address,
    }
    return bytes(pack_fields(SV_SIZE, SV, values))


def write_system_variables(
    memory: SparseMemory, place: ChipPlace, boot_time: int
) -> None:
    memory.write(place.x << 8 | place.y, SV_ADDRESS, system_variables(place, boot_time))
