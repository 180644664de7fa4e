"""Range checks that name the bad value, shared by every constructor."""

from __future__ import annotations

from messages.errors import InvalidArgumentError

#: Cores on a SpiNNaker chip: 0 is the monitor, up to 17 application cores.
MAX_CORE = 17
#: The most data one SCP request or response carries.
MAX_SCP_DATA = 256
MAX_U32 = 0xFFFF_FFFF


def check_int(name: str, value: object, low: int, high: int) -> int:
    """Return ``value`` if it is an int in [low, high], else raise naming it."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(name, value, "must be an integer")
    if not low <= value <= high:
        raise InvalidArgumentError(name, value, f"must be in {low}..{high}")
    return value


def check_chip(x: object, y: object) -> tuple[int, int]:
    return check_int("x", x, 0, 255), check_int("y", y, 0, 255)


def check_core(p: object) -> int:
    return check_int("p", p, 0, MAX_CORE)


def check_u32(name: str, value: object) -> int:
    return check_int(name, value, 0, MAX_U32)


def check_span(address: object, size: object) -> tuple[int, int]:
    """An address and a size of 1..256 bytes that stay inside 32 bits."""
    address = check_u32("base_address", address)
    size = check_int("size", size, 1, MAX_SCP_DATA)
    if address + size > MAX_U32 + 1:
        raise InvalidArgumentError(
            "base_address", address, f"a {size}-byte span runs past 2**32"
        )
    return address, size
