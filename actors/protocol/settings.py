"""How a window paces and retries: its settings, each checked once.

Plain data (a frozen dataclass) that crosses processes with a board
group's spec; the Window (window.py) and the callers that build it (a
Client, SpiNNMan's SCPRequestPipeLine) share this one set of checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from messages.errors import InvalidArgumentError
from messages.scp.enums import SCPResult
from messages.validate import check_int, check_seconds


@dataclass(frozen=True)
class WindowSettings:
    """How a window paces and retries; the defaults suit a real board.

    ``size`` is SpiNNMan's n_channels: requests on the wire at once (a
    board's monitor holds at most 8). ``refill_at`` is its receive
    threshold: once the window is full, new requests wait until no more
    than this many are outstanding (None: size - 1, a sliding window;
    SpiNNMan's default of 0 drains the whole window first).

    ``max_datagram_age`` is how long a copy of a write may still land after
    it was sent (a LAN's and the virtual board's reorder and delay faults
    are well inside the default): an overlapping write waits that long
    after the earlier write's job ends. ``network_duplicates`` False says
    the network never duplicates a datagram, so a write whose every piece
    went once and was answered frees its range at once.
    ``fast_resend_after`` 0 turns fast resends off.

    Every field is checked here, raising InvalidArgumentError named after
    it; a caller with names of its own for them raises under those (see
    messages.validate.caller_names).
    """

    size: int = 8
    refill_at: int | None = None
    retries: int = 10
    initial_rto: float = 1.0
    rto_floor: float = 0.005
    rto_ceiling: float = 1.0
    retry_pause: float = 0.005
    non_fail_retry_codes: frozenset[SCPResult] = frozenset()
    fast_resend_after: int = 3
    max_datagram_age: float = 0.1
    network_duplicates: bool = True

    def __post_init__(self) -> None:
        check_int("size", self.size, 1, 65535)
        if self.refill_at is not None:
            check_int("refill_at", self.refill_at, 0, self.size - 1)
        check_int("retries", self.retries, 0)
        check_seconds("initial_rto", self.initial_rto)
        check_seconds("rto_ceiling", self.rto_ceiling)
        check_seconds("rto_floor", self.rto_floor)
        if self.rto_floor > self.rto_ceiling:
            raise InvalidArgumentError(
                "rto_floor",
                self.rto_floor,
                f"must be at most rto_ceiling ({self.rto_ceiling:g})",
            )
        check_seconds("retry_pause", self.retry_pause, zero=True)
        check_int("fast_resend_after", self.fast_resend_after, 0)
        check_seconds("max_datagram_age", self.max_datagram_age, 600, zero=True)

    @classmethod
    def from_timeout(
        cls, timeout: float, *, rto_floor: float | None = None, **fields: Any
    ) -> WindowSettings:
        """Settings for a caller's ``timeout`` (a Client's, SpiNNMan's
        packet_timeout): the first wait for a reply and the longest, the
        adaptive wait going no lower than ``rto_floor``, or ``timeout`` if
        that is shorter (checked first, as min() needs numbers)."""
        floor = cls.rto_floor if rto_floor is None else rto_floor
        check_seconds("initial_rto", timeout)
        check_seconds("rto_floor", floor)
        return cls(
            initial_rto=timeout,
            rto_floor=min(floor, timeout),
            rto_ceiling=timeout,
            **fields,
        )
