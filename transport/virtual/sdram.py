"""A chip's memory for the virtual board: sparse pages and an SDRAM heap.

Memory that was never written reads as zeros and costs nothing, so a board
of 64 chips with a 4 GiB address space each fits in a test process; a cap
on the bytes actually stored keeps random writes from eating the machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PAGE_BITS = 12
PAGE_SIZE = 1 << PAGE_BITS
_PAGE_MASK = PAGE_SIZE - 1
_ZEROS = bytes(PAGE_SIZE)

#: Where the SDRAM heap starts and ends on every chip (128 MiB SDRAM at
#: 0x60000000, less a megabyte each side for the system's own use).
HEAP_BASE = 0x6010_0000
HEAP_END = 0x67F0_0000


class MemoryFull(Exception):
    """Storing more would pass the board's memory cap."""


class SparseMemory:
    """Every chip's 32-bit address space, stored a page at a time."""

    def __init__(self, limit_bytes: int = 512 << 20) -> None:
        self._pages: dict[int, bytearray] = {}
        self._page_limit = limit_bytes >> PAGE_BITS

    @property
    def bytes_stored(self) -> int:
        return len(self._pages) << PAGE_BITS

    def read(self, chip: int, address: int, size: int) -> bytes:
        """``size`` bytes at ``address``; ``chip`` is x << 8 | y."""
        offset = address & _PAGE_MASK
        if offset + size <= PAGE_SIZE:
            page = self._pages.get((chip << 20) | (address >> PAGE_BITS))
            if page is None:
                return _ZEROS[:size]
            return bytes(page[offset : offset + size])
        parts = []
        while size:
            take = min(size, PAGE_SIZE - (address & _PAGE_MASK))
            parts.append(self.read(chip, address, take))
            address, size = address + take, size - take
        return b"".join(parts)

    def write(self, chip: int, address: int, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            offset = address & _PAGE_MASK
            take = min(len(view), PAGE_SIZE - offset)
            self._page(chip, address)[offset : offset + take] = view[:take]
            address, view = address + take, view[take:]

    def fill(self, chip: int, address: int, word: bytes, size: int) -> None:
        """Repeat a 4-byte pattern over a word-aligned span."""
        while size:
            offset = address & _PAGE_MASK
            take = min(size, PAGE_SIZE - offset)
            key = (chip << 20) | (address >> PAGE_BITS)
            if word == b"\0\0\0\0" and key not in self._pages:
                pass  # already zero, and stays free
            else:
                self._page(chip, address)[offset : offset + take] = word * (take // 4)
            address, size = address + take, size - take

    def check_room(self, chip: int, address: int, size: int) -> None:
        """Raise MemoryFull if writing this span would pass the cap."""
        first = address >> PAGE_BITS
        last = (address + size - 1) >> PAGE_BITS
        new = sum(
            1
            for page in range(first, last + 1)
            if (chip << 20) | page not in self._pages
        )
        if len(self._pages) + new > self._page_limit:
            raise MemoryFull(
                f"board memory cap of {self._page_limit << PAGE_BITS} bytes"
            )

    def _page(self, chip: int, address: int) -> bytearray:
        key = (chip << 20) | (address >> PAGE_BITS)
        page = self._pages.get(key)
        if page is None:
            if len(self._pages) >= self._page_limit:
                raise MemoryFull("board memory cap reached")
            page = self._pages[key] = bytearray(PAGE_SIZE)
        return page


@dataclass
class Block:
    address: int
    size: int
    app_id: int
    tag: int


@dataclass
class SDRAMHeap:
    """First-fit allocator over one chip's user SDRAM."""

    base: int = HEAP_BASE
    end: int = HEAP_END
    blocks: list[Block] = field(default_factory=list)

    def allocate(self, size: int, app_id: int, tag: int) -> int:
        """The address of a new block, or 0 when none fits."""
        size = (size + 7) & ~7
        start = self.base
        for index, block in enumerate(self.blocks):
            if block.address - start >= size:
                self.blocks.insert(index, Block(start, size, app_id, tag))
                return start
            start = block.address + block.size
        if self.end - start >= size:
            self.blocks.append(Block(start, size, app_id, tag))
            return start
        return 0

    def gaps(self) -> list[int]:
        """The sizes of the free spans, lowest first."""
        sizes, start = [], self.base
        for block in self.blocks:
            sizes.append(block.address - start)
            start = block.address + block.size
        sizes.append(self.end - start)
        return [size for size in sizes if size > 0]

    def largest_free(self) -> int:
        """The largest block an allocation could have now."""
        return max(self.gaps(), default=0)

    def free_bytes(self) -> int:
        return sum(self.gaps())

    def find_tagged(self, app_id: int, tag: int) -> Block | None:
        if tag == 0:
            return None
        for block in self.blocks:
            if block.app_id == app_id and block.tag == tag:
                return block
        return None

    def free(self, address: int) -> bool:
        for index, block in enumerate(self.blocks):
            if block.address == address:
                del self.blocks[index]
                return True
        return False

    def free_app(self, app_id: int) -> int:
        kept = [block for block in self.blocks if block.app_id != app_id]
        freed = len(self.blocks) - len(kept)
        self.blocks = kept
        return freed
