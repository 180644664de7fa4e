"""Round-trip times: the retransmission timeout, and statistics about them.

The timeout follows RFC 6298 (Jacobson/Karels): a smoothed round trip plus
four times its variation, clamped to [floor, ceiling], doubled on each
expiry until a fresh sample arrives. Samples come only from requests that
were sent once (Karn's rule): a reply to a resent request cannot say which
copy it answers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: The histogram splits each power of two of microseconds into this many
#: buckets, so percentiles are good to about 1 part in 8.
_SUB_BITS = 3
_SUB_BUCKETS = 1 << _SUB_BITS
#: Powers of two covered: 1 microsecond to about 2.4 hours (2**33 us).
_OCTAVES = 30
_N_BUCKETS = _SUB_BUCKETS * (_OCTAVES + 1)


def _bucket(rtt: float) -> int:
    """Buckets 0-7 hold 0-7 microseconds; above that, each power of two
    is split in 8 by the next three bits."""
    micros = int(rtt * 1e6)
    octave = micros.bit_length() - _SUB_BITS
    if octave <= 0:
        return micros
    if octave > _OCTAVES:
        return _N_BUCKETS - 1
    return (octave << _SUB_BITS) + ((micros >> (octave - 1)) & 7)


def _upper_edge(bucket: int) -> float:
    """The longest round trip (in seconds) that falls in ``bucket``."""
    octave, sub = divmod(bucket, _SUB_BUCKETS)
    if octave == 0:
        return (sub + 1) / 1e6
    return ((_SUB_BUCKETS + sub + 1) << (octave - 1)) / 1e6


@dataclass(frozen=True)
class RttStats:
    """Round trips seen so far, in seconds (zeros before the first)."""

    count: int
    minimum: float
    mean: float
    p50: float
    p90: float
    p99: float
    maximum: float
    rto: float
    #: The samples by bucket: (the bucket's upper edge in seconds, how
    #: many), buckets with none left out, shortest first.
    buckets: tuple[tuple[float, int], ...] = ()


class RttEstimator:
    """The adaptive retransmission timeout of one connection."""

    __slots__ = (
        "floor",
        "ceiling",
        "rto",
        "srtt",
        "rttvar",
        "_count",
        "_total",
        "_minimum",
        "_maximum",
        "_buckets",
    )

    def __init__(
        self, initial: float = 1.0, floor: float = 0.005, ceiling: float = 1.0
    ) -> None:
        if not 0 < floor <= ceiling:
            raise ValueError(
                f"floor={floor}, ceiling={ceiling}: need 0 < floor <= ceiling"
            )
        self.floor = floor
        self.ceiling = ceiling
        self.rto = min(max(initial, floor), ceiling)
        self.srtt: float | None = None
        self.rttvar = 0.0
        self._count = 0
        self._total = 0.0
        self._minimum = math.inf
        self._maximum = 0.0
        self._buckets = [0] * _N_BUCKETS

    def sample(self, rtt: float) -> None:
        """Take the round trip of a request that was sent exactly once."""
        if rtt < 0.0:
            rtt = 0.0
        srtt = self.srtt
        if srtt is None:
            self.srtt = srtt = rtt
            self.rttvar = rtt / 2
        else:
            delta = rtt - srtt
            self.rttvar += ((delta if delta >= 0 else -delta) - self.rttvar) * 0.25
            self.srtt = srtt = srtt + delta * 0.125
        rto = srtt + 4 * self.rttvar
        self.rto = (
            self.floor
            if rto < self.floor
            else self.ceiling
            if rto > self.ceiling
            else rto
        )
        self._count += 1
        self._total += rtt
        if rtt < self._minimum:
            self._minimum = rtt
        if rtt > self._maximum:
            self._maximum = rtt
        # _bucket(), inlined: this runs once per reply.
        micros = int(rtt * 1e6)
        octave = micros.bit_length() - _SUB_BITS
        self._buckets[
            micros
            if octave <= 0
            else (octave << _SUB_BITS) + ((micros >> (octave - 1)) & 7)
            if octave <= _OCTAVES
            else _N_BUCKETS - 1
        ] += 1

    def back_off(self) -> None:
        """A request timed out: wait twice as long next time."""
        self.rto = min(self.rto * 2, self.ceiling)

    def stats(self) -> RttStats:
        if not self._count:
            return RttStats(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, self.rto)
        return RttStats(
            self._count,
            self._minimum,
            self._total / self._count,
            self._percentile(0.50),
            self._percentile(0.90),
            self._percentile(0.99),
            self._maximum,
            self.rto,
            tuple(
                (_upper_edge(bucket), count)
                for bucket, count in enumerate(self._buckets)
                if count
            ),
        )

    def _percentile(self, fraction: float) -> float:
        """The upper edge of the bucket holding that fraction of samples,
        kept within the range actually seen."""
        wanted = fraction * self._count
        seen = 0
        for bucket, count in enumerate(self._buckets):
            seen += count
            if seen >= wanted:
                return min(max(_upper_edge(bucket), self._minimum), self._maximum)
        return self._maximum
