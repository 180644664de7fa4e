"""CMD_INFO: what a chip's monitor says about itself (scamp-cmd.c cmd_info).

The reply's arg1 packs the working cores (bits 0-4), the working links
(8-13), the largest free block of multicast entries (14-24) and whether
Ethernet is up (25); arg2 and arg3 are the largest free blocks of SDRAM and
System RAM; then one state byte for each of 18 cores, the nearest Ethernet
chip's P2P address (y byte, then x), the chip's IP address, and the link
towards the root chip as a short (7, "self", on the root). SpiNNMan takes
the reply's SDP source as the chip's position.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from messages.errors import MalformedDatagramError
from messages.spinnaker.chip import NUM_CPUS

_HEAD = struct.Struct("<3I")
_STATES = struct.Struct(f"<{NUM_CPUS}B")
_TAIL = struct.Struct("<BB4sH")
#: What SpiNNMan's GetChipInfo asks for (everything but the size).
INFO_ALL = 0x5F
_LINKS_SHIFT = 8
_ENTRIES_SHIFT = 14
_ETHERNET_UP = 1 << 25


@dataclass(frozen=True)
class ChipInfo:
    """A CMD_INFO reply's data."""

    n_cores: int
    links: tuple[int, ...]
    free_multicast_entries: int
    ethernet_up: bool
    largest_free_sdram: int
    largest_free_sram: int
    core_states: tuple[int, ...]
    nearest_ethernet: tuple[int, int]
    ip_address: bytes
    parent_link: int

    def to_bytes(self) -> bytes:
        word = (
            (self.n_cores & 0x1F)
            | sum(1 << (_LINKS_SHIFT + link) for link in self.links)
            | (self.free_multicast_entries & 0x7FF) << _ENTRIES_SHIFT
            | (_ETHERNET_UP if self.ethernet_up else 0)
        )
        states = self.core_states + (0,) * (NUM_CPUS - len(self.core_states))
        x, y = self.nearest_ethernet
        return (
            _HEAD.pack(word, self.largest_free_sdram, self.largest_free_sram)
            + _STATES.pack(*states)
            + _TAIL.pack(y, x, self.ip_address, self.parent_link)
        )

    @staticmethod
    def from_bytes(data: bytes, offset: int = 0) -> ChipInfo:
        size = _HEAD.size + _STATES.size + _TAIL.size
        if len(data) - offset < size:
            raise MalformedDatagramError(
                f"chip info needs {size} bytes, has {len(data) - offset}"
            )
        word, sdram, sram = _HEAD.unpack_from(data, offset)
        states = _STATES.unpack_from(data, offset + _HEAD.size)
        y, x, ip, parent = _TAIL.unpack_from(data, offset + _HEAD.size + _STATES.size)
        return ChipInfo(
            n_cores=word & 0x1F,
            links=tuple(link for link in range(6) if word >> (_LINKS_SHIFT + link) & 1),
            free_multicast_entries=(word >> _ENTRIES_SHIFT) & 0x7FF,
            ethernet_up=bool(word & _ETHERNET_UP),
            largest_free_sdram=sdram,
            largest_free_sram=sram,
            core_states=states,
            nearest_ethernet=(x, y),
            ip_address=ip,
            parent_link=parent,
        )
