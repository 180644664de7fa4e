"""Range checks that name the bad value, shared by every constructor."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

from messages.errors import InvalidArgumentError

#: Cores on a SpiNNaker chip: 0 is the monitor, up to 17 application cores.
MAX_CORE = 17
#: The most data one SCP request or response carries.
MAX_SCP_DATA = 256
MAX_U32 = 0xFFFF_FFFF


def check_int(name: str, value: object, low: int, high: int | None = None) -> int:
    """Return ``value`` if it is an int in [low, high] (no ceiling if
    ``high`` is None), else raise naming it."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(name, value, "must be an integer")
    if high is None:
        if value < low:
            raise InvalidArgumentError(name, value, f"must be >= {low}")
    elif not low <= value <= high:
        raise InvalidArgumentError(name, value, f"must be in {low}..{high}")
    return value


def check_seconds(
    name: str, value: object, high: float = math.inf, *, zero: bool = False
) -> float:
    """Return ``value`` if it is a number of seconds above 0 (or 0 itself,
    if ``zero``) and at most ``high``, else raise naming it (NaN is no
    number of seconds)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (value >= 0 if zero else value > 0)
        or not value <= high
    ):
        if zero:
            reason = "must be >= 0 seconds"
            if high < math.inf:
                reason = f"must be 0..{high:g} seconds"
        else:
            reason = "must be a positive number of seconds"
            if high < math.inf:
                reason += f", at most {high:g}"
        raise InvalidArgumentError(name, value, reason)
    return value


@contextmanager
def caller_names(**names: str) -> Iterator[None]:
    """Within, an InvalidArgumentError that names a value the caller knows
    by another name is raised again under the caller's name (``names``:
    the inner name -> the caller's), so a caller's mistake reads in the
    caller's own terms (``window=0``, not ``size=0``)."""
    try:
        yield
    except InvalidArgumentError as error:
        name = names.get(error.name)
        if name is None:
            raise
        raise InvalidArgumentError(name, error.value, error.reason) from None


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
