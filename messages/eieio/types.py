"""The four EIEIO data formats and where a 16-bit key prefix goes.

The numeric values are the codes carried in the header's flag byte.
"""

from __future__ import annotations

from enum import Enum


class EIEIOType(Enum):
    """Key width, and whether each key carries a payload of that width."""

    KEY_16_BIT = 0
    KEY_PAYLOAD_16_BIT = 1
    KEY_32_BIT = 2
    KEY_PAYLOAD_32_BIT = 3

    @property
    def encoded_value(self) -> int:
        """The two-bit code in the header."""
        return self.value

    @property
    def key_bytes(self) -> int:
        return 4 if self.value & 2 else 2

    @property
    def payload_bytes(self) -> int:
        """Bytes of payload after each key: 0 for the key-only formats."""
        return self.key_bytes if self.value & 1 else 0

    @property
    def element_bytes(self) -> int:
        return self.key_bytes + self.payload_bytes

    @property
    def max_value(self) -> int:
        """The largest key (and payload, and payload base) this format holds."""
        return (1 << (8 * self.key_bytes)) - 1


class EIEIOPrefix(Enum):
    """Which half of the received key the header's 16-bit prefix fills."""

    LOWER_HALF_WORD = 0
    UPPER_HALF_WORD = 1
