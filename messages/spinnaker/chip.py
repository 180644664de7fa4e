"""A chip's memory map, system variables (sv_t), VCPU blocks (vcpu_t) and
IOBUF buffer headers, with the offsets of SC&MP's include/sark.h.

A host reads these with plain CMD_READ: SpiNNMan finds the machine's size
and each chip's core maps in the system variables, each core's state in
its VCPU block, and an application's log in the IOBUF buffers the block
points at. Fields are (offset, struct format) so a board can pack one
field at a time and a reader can check one against the header.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import NamedTuple

#: SDRAM (128 MiB) as cores see it, and its unbuffered alias.
SDRAM_BASE = 0x6000_0000
SDRAM_SIZE = 128 << 20
SDRAM_UNBUFFERED = 0x7000_0000
#: System RAM (32 KiB, shared by the chip's cores) and its unbuffered alias.
SYSRAM_BASE = 0xE500_0000
SYSRAM_SIZE = 0x8000
SYSRAM_UNBUFFERED = 0xF500_0000
#: Where SC&MP loads application images and routing tables (sv->sdram_sys):
#: CMD_AR and CMD_APP_COPY_RUN start what is here.
SDRAM_SYS = 0x6780_0000
#: The most cores a chip has: the monitor (0) and 17 application cores.
NUM_CPUS = 18

# -- aliases -----------------------------------------------------------------

_ALIASES = (
    (SDRAM_UNBUFFERED, SDRAM_SIZE, SDRAM_BASE),
    (SYSRAM_UNBUFFERED, SYSRAM_SIZE, SYSRAM_BASE),
    (0xF100_0000, 0x0100_0000, 0xE100_0000),  # the router's registers
)


def canonical(address: int) -> int:
    """The buffered address of an unbuffered alias (the same memory)."""
    for alias, size, base in _ALIASES:
        if alias <= address < alias + size:
            return address - alias + base
    return address


class Field(NamedTuple):
    """Where a structure keeps one value, and how it is packed."""

    offset: int
    format: str

    @property
    def size(self) -> int:
        return struct.calcsize("<" + self.format)


def pack_fields(
    size: int, layout: Mapping[str, Field], values: Mapping[str, int | bytes]
) -> bytearray:
    """A ``size``-byte structure with ``values`` at their fields (rest 0)."""
    block = bytearray(size)
    for name, value in values.items():
        field = layout[name]
        struct.pack_into("<" + field.format, block, field.offset, value)
    return block


def unpack_field(layout: Mapping[str, Field], name: str, data: bytes) -> int | bytes:
    """One field read from the bytes of a whole structure."""
    field = layout[name]
    (value,) = struct.unpack_from("<" + field.format, data, field.offset)
    return value  # type: ignore[no-any-return]


# -- system variables (sv_t) ---------------------------------------------------

#: The system variables sit at the top of System RAM; hosts read them
#: through the unbuffered alias, 0xf5007f00.
SV_ADDRESS = SYSRAM_UNBUFFERED + 0x7F00
SV_SIZE = 256
SV: dict[str, Field] = {
    "p2p_addr": Field(0x00, "H"),  # x << 8 | y
    "p2p_dims": Field(0x02, "H"),  # width << 8 | height
    "dbg_addr": Field(0x04, "H"),
    "p2p_up": Field(0x06, "B"),
    "last_id": Field(0x07, "B"),
    "eth_addr": Field(0x08, "H"),  # the nearest Ethernet chip, x << 8 | y
    "hw_ver": Field(0x0A, "B"),
    "eth_up": Field(0x0B, "B"),
    "p2pb_repeats": Field(0x0C, "B"),
    "p2p_sql": Field(0x0D, "B"),
    "clk_div": Field(0x0E, "B"),
    "tp_scale": Field(0x0F, "B"),
    "clock_ms": Field(0x10, "Q"),
    "time_ms": Field(0x18, "H"),
    "ltpc_period": Field(0x1A, "H"),
    "unix_time": Field(0x1C, "I"),
    "tp_timer": Field(0x20, "I"),
    "cpu_clk": Field(0x24, "H"),
    "mem_clk": Field(0x26, "H"),
    "forward": Field(0x28, "B"),
    "retry": Field(0x29, "B"),
    "peek_time": Field(0x2A, "B"),
    "led_period": Field(0x2B, "B"),
    "netinit_bc_wait": Field(0x2C, "B"),
    "netinit_phase": Field(0x2D, "B"),
    "p2p_root": Field(0x2E, "H"),
    "led0": Field(0x30, "I"),
    "led1": Field(0x34, "I"),
    "clock_drift": Field(0x38, "i"),
    "random": Field(0x3C, "I"),
    "root_chip": Field(0x40, "B"),
    "num_buf": Field(0x41, "B"),
    "boot_delay": Field(0x42, "B"),
    "soft_wdog": Field(0x43, "B"),
    "sync_alignment": Field(0x44, "I"),
    "sysram_heap": Field(0x48, "I"),
    "sdram_heap": Field(0x4C, "I"),
    "iobuf_size": Field(0x50, "I"),
    "sdram_bufs": Field(0x54, "I"),
    "sysbuf_size": Field(0x58, "I"),
    "boot_sig": Field(0x5C, "I"),
    "mem_ptr": Field(0x60, "I"),
    "lock": Field(0x64, "B"),
    "link_en": Field(0x65, "B"),
    "last_biff_id": Field(0x66, "B"),
    "bt_flags": Field(0x67, "B"),
    "shm_root": Field(0x68, "8s"),
    "utmp0": Field(0x70, "I"),
    "utmp1": Field(0x74, "I"),
    "utmp2": Field(0x78, "I"),
    "utmp3": Field(0x7C, "I"),
    "status_map": Field(0x80, "20s"),
    "p2v_map": Field(0x94, "20s"),
    "v2p_map": Field(0xA8, "20s"),
    "num_cpus": Field(0xBC, "B"),
    "rom_cpus": Field(0xBD, "B"),
    "board_addr": Field(0xBE, "H"),
    "sdram_base": Field(0xC0, "I"),
    "sysram_base": Field(0xC4, "I"),
    "sdram_sys": Field(0xC8, "I"),
    "vcpu_base": Field(0xCC, "I"),
    "sys_heap": Field(0xD0, "I"),
    "rtr_copy": Field(0xD4, "I"),
    "hop_table": Field(0xD8, "I"),
    "alloc_tag": Field(0xDC, "I"),
    "rtr_free": Field(0xE0, "H"),
    "p2p_active": Field(0xE2, "H"),
    "app_data": Field(0xE4, "I"),
    "shm_buf": Field(0xE8, "I"),
    "mbox_flags": Field(0xEC, "I"),
    "ip_addr": Field(0xF0, "4s"),
    "fr_copy": Field(0xF4, "I"),
    "board_info": Field(0xF8, "I"),
    "sw_ver": Field(0xFC, "I"),
}
#: sv->netinit_phase once the chip has booted and found its neighbours.
NETINIT_PHASE_DONE = 0xFF


def sv_address(name: str) -> int:
    """The address a host reads one system variable at."""
    return SV_ADDRESS + SV[name].offset


# -- VCPU blocks (vcpu_t) ------------------------------------------------------

#: One 128-byte block per core, core 0's first, at the bottom of the
#: system variables' 4 KiB.
VCPU_ADDRESS = SYSRAM_BASE + 0x7000
VCPU_SIZE = 128
VCPU: dict[str, Field] = {
    "r": Field(0, "32s"),
    "psr": Field(32, "I"),
    "sp": Field(36, "I"),
    "lr": Field(40, "I"),
    "rt_code": Field(44, "B"),
    "phys_cpu": Field(45, "B"),
    "cpu_state": Field(46, "B"),
    "app_id": Field(47, "B"),
    "mbox_ap_msg": Field(48, "I"),
    "mbox_mp_msg": Field(52, "I"),
    "mbox_ap_cmd": Field(56, "B"),
    "mbox_mp_cmd": Field(57, "B"),
    "sw_count": Field(58, "H"),
    "sw_file": Field(60, "I"),
    "sw_line": Field(64, "I"),
    "time": Field(68, "I"),
    "app_name": Field(72, "16s"),
    "iobuf": Field(88, "I"),
    "sw_ver": Field(92, "I"),
    "user0": Field(112, "I"),
    "user1": Field(116, "I"),
    "user2": Field(120, "I"),
    "user3": Field(124, "I"),
}


def vcpu_address(core: int) -> int:
    """Where core ``core``'s VCPU block starts."""
    return VCPU_ADDRESS + VCPU_SIZE * core


#: vcpu_t's rt_code: a generic abort, and SARK's failure to allocate an
#: IOBUF buffer (sark.h's RTE_ABORT and RTE_IOBUF).
RTE_ABORT = 9
RTE_IOBUF = 14

# -- IOBUF (iobuf_t, sark_io.c) ------------------------------------------------

#: Each buffer: next buffer (or 0), unix time, ms, bytes written; then text.
#: A full buffer (sv->iobuf_size bytes of text) chains to the next.
IOBUF_HEADER = struct.Struct("<4I")
