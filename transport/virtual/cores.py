"""Every core's VCPU block and IOBUF buffers, kept in the chip's memory.

The VCPU block is what a host reads (SpiNNMan's get_cpu_infos reads its
128 bytes; CMD_COUNT counts the states in it) and what a core writes (its
state, its application, a pointer to its log). It lives in the memory, not
in a Python mirror, so a host that writes a user word reads it back as on
a chip. IOBUF text goes into buffers of sv->iobuf_size bytes taken from
the chip's system heap and chained as SARK chains them.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping

from messages.scp.enums import CPUState, SCPResult
from messages.spinnaker.chip import (
    IOBUF_HEADER,
    NUM_CPUS,
    RTE_IOBUF,
    VCPU,
    VCPU_SIZE,
    pack_fields,
    vcpu_address,
)
from transport.links.endpoint import Address
from transport.virtual.monitor import Reply, arguments
from transport.virtual.sdram import SDRAMHeap, SparseMemory

_WORD = struct.Struct("<I")
_STATE = VCPU["cpu_state"].offset
_MONITOR_NAME = b"scamp-3"
#: Where an IOBUF buffer's header keeps its bytes used.
_PTR = 12


class VCPUs:
    """The VCPU blocks of every core of every chip (chip is x << 8 | y)."""

    def __init__(
        self, memory: SparseMemory, cores: Mapping[int, int], boot_time: int
    ) -> None:
        self.memory = memory
        #: How many cores each chip has (the monitor and its application cores).
        self.cores = dict(cores)
        self._boot_time = boot_time
        for chip, n_cores in self.cores.items():
            for core in range(NUM_CPUS):
                if core == 0:
                    self.reset(chip, 0, CPUState.RUNNING, name=_MONITOR_NAME)
                else:
                    state = CPUState.IDLE if core < n_cores else CPUState.DEAD
                    self.reset(chip, core, state)

    def reset(
        self, chip: int, core: int, state: CPUState, app_id: int = 0, name: bytes = b""
    ) -> None:
        """A core as SARK leaves it when it starts: only identity and state."""
        block = pack_fields(
            VCPU_SIZE,
            VCPU,
            {
                "phys_cpu": core,
                "cpu_state": state.value,
                "app_id": app_id,
                "time": self._boot_time,
                "app_name": name[:16],
            },
        )
        self.memory.write(chip, vcpu_address(core), bytes(block))

    def get(self, chip: int, core: int, name: str) -> int | bytes:
        field = VCPU[name]
        data = self.memory.read(chip, vcpu_address(core) + field.offset, field.size)
        (value,) = struct.unpack("<" + field.format, data)
        return value  # type: ignore[no-any-return]

    def set(self, chip: int, core: int, name: str, value: int | bytes) -> None:
        field = VCPU[name]
        self.memory.write(
            chip,
            vcpu_address(core) + field.offset,
            struct.pack("<" + field.format, value),
        )

    def state(self, chip: int, core: int) -> CPUState:
        return CPUState(self.memory.read(chip, vcpu_address(core) + _STATE, 1)[0])

    def states(self, chip: int) -> tuple[int, ...]:
        """Each core's state byte, core 0 first (what CMD_INFO reports)."""
        return tuple(
            self.memory.read(chip, vcpu_address(core) + _STATE, 1)[0]
            for core in range(NUM_CPUS)
        )

    def application_cores(self) -> Iterator[tuple[int, int]]:
        """(chip, core) of every working application core."""
        for chip, n_cores in self.cores.items():
            for core in range(1, n_cores):
                yield chip, core

    def count(self, app_id: int, state: CPUState) -> int:
        """Cores of ``app_id`` in ``state``, board-wide (as CMD_COUNT asks
        every chip of the board and adds up)."""
        wanted = bytes((state.value, app_id))
        return sum(
            1
            for chip, core in self.application_cores()
            if self.memory.read(chip, vcpu_address(core) + _STATE, 2) == wanted
        )

    def count_command(
        self, data: bytes, chip: int, core: int, sender: Address
    ) -> bytes:
        """CMD_COUNT: arg1 the app id, arg2 the state."""
        app_id, state, _ = arguments(data)
        if app_id > 0xFF or state > 15:
            raise Reply(SCPResult.RC_ARG)
        return _WORD.pack(self.count(app_id, CPUState(state)))


class IOBufs:
    """Cores' IOBUF text: chained buffers in each chip's system heap."""

    def __init__(self, vcpus: VCPUs, heaps: Mapping[int, SDRAMHeap], size: int) -> None:
        self.vcpus = vcpus
        self.memory = vcpus.memory
        self.heaps = heaps
        #: Bytes of text a buffer holds (sv->iobuf_size).
        self.size = size

    def write(self, chip: int, core: int, text: bytes) -> bool:
        """Append ``text`` to the core's IOBUF, taking buffers as it fills;
        False (and the core in RUN_TIME_EXCEPTION, as SARK leaves it) if
        the heap has no room for another."""
        buffers = self._buffers(chip, core)
        if buffers:
            address = buffers[-1]
            used = self._header(chip, address)[1]
        else:
            address, used = 0, self.size
        while text:
            if used == self.size:
                following = self._new_buffer(chip, core)
                if not following:
                    return False
                if address:
                    self.memory.write(chip, address, _WORD.pack(following))
                else:
                    self.vcpus.set(chip, core, "iobuf", following)
                address, used = following, 0
            part, text = text[: self.size - used], text[self.size - used :]
            self.memory.write(chip, address + IOBUF_HEADER.size + used, part)
            used += len(part)
            self.memory.write(chip, address + _PTR, _WORD.pack(used))
        return True

    def text(self, chip: int, core: int) -> str:
        """All the core's IOBUF text, as SpiNNMan's get_iobuf reads it."""
        return b"".join(
            self.memory.read(chip, address + IOBUF_HEADER.size, used)
            for address in self._buffers(chip, core)
            if (used := self._header(chip, address)[1])
        ).decode("ascii", "replace")

    def _buffers(self, chip: int, core: int) -> list[int]:
        """The core's chain of buffers (a loop a host wrote is cut)."""
        chain: list[int] = []
        address = int(self.vcpus.get(chip, core, "iobuf"))
        while address and address not in chain:
            chain.append(address)
            address = self._header(chip, address)[0]
        return chain

    def _header(self, chip: int, address: int) -> tuple[int, int]:
        """(next buffer, bytes used) of one buffer."""
        following, _, _, used = IOBUF_HEADER.unpack(
            self.memory.read(chip, address, IOBUF_HEADER.size)
        )
        return following, min(used, self.size)

    def _new_buffer(self, chip: int, core: int) -> int:
        app_id = int(self.vcpus.get(chip, core, "app_id"))
        address = self.heaps[chip].allocate(IOBUF_HEADER.size + self.size, app_id, 0)
        if not address:
            self.vcpus.set(chip, core, "rt_code", RTE_IOBUF)
            self.vcpus.set(chip, core, "cpu_state", CPUState.RUN_TIME_EXCEPTION.value)
            return 0
        self.memory.write(chip, address, IOBUF_HEADER.pack(0, 0, 0, 0))
        return address
