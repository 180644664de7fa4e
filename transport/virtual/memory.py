"""A chip's address space as SpiNNaker wires it: aliases and live registers.

The same SDRAM, System RAM and router registers answer at a buffered and
an unbuffered address (SpiNNMan reads the system variables at 0xf5007f00,
which is 0xe5007f00), and some registers act when written (writing the
router's counter-enable register clears its diagnostic counters). Plain
memory stays SparseMemory's: sparse pages under the board's cap.
"""

from __future__ import annotations

from collections.abc import Callable

from messages.spinnaker.chip import canonical
from transport.virtual.sdram import SparseMemory

#: Called with (chip, address, word) after a word is written at a register.
RegisterWrite = Callable[[int, int, int], None]


class ChipMemory(SparseMemory):
    """SparseMemory that folds aliases onto one address and runs a hook
    when a registered word is written."""

    def __init__(self, limit_bytes: int = 512 << 20) -> None:
        super().__init__(limit_bytes)
        self._registers: dict[int, RegisterWrite] = {}

    def on_write(self, address: int, hook: RegisterWrite) -> None:
        """Run ``hook`` whenever the word at ``address`` is written."""
        self._registers[canonical(address)] = hook

    def read(self, chip: int, address: int, size: int) -> bytes:
        return super().read(chip, canonical(address), size)

    def write(self, chip: int, address: int, data: bytes | memoryview) -> None:
        address = canonical(address)
        super().write(chip, address, data)
        for register, hook in self._registers.items():
            if address <= register and register + 4 <= address + len(data):
                word = int.from_bytes(super().read(chip, register, 4), "little")
                hook(chip, register, word)

    def fill(self, chip: int, address: int, word: bytes, size: int) -> None:
        super().fill(chip, canonical(address), word, size)

    def check_room(self, chip: int, address: int, size: int) -> None:
        super().check_room(chip, canonical(address), size)

    def read_word(self, chip: int, address: int) -> int:
        return int.from_bytes(self.read(chip, address, 4), "little")

    def write_word(self, chip: int, address: int, word: int) -> None:
        """Store a word without running a register's hook (the board's own)."""
        super().write(chip, canonical(address), word.to_bytes(4, "little"))
