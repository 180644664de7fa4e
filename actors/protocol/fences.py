"""Write fences: a later write never lands under a late copy of an earlier one.

The monitor does not de-duplicate and UDP may deliver any copy of a
datagram late (a resend, a network duplicate, one held back). So, as TCP's
TIME-WAIT keeps old segments from being taken for new data, the address
range of a write stays *claimed* while its job may still send, and for
``max_age`` seconds after that (a datagram older than that is taken to be
gone). A later write or fill that overlaps a claim waits for it; reads
never claim. Claims are granted in the order they were made, per chip, so
overlapping writes reach the board in the order they were asked for.

Sans-IO: the owner gives the time; nothing here sleeps or reads a clock.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Any

#: Chip (x, y), first byte, one past the last byte.
Span = tuple[Hashable, int, int]
#: A claim handed on to a successor: chip, start, end, and until when.
Hold = tuple[Hashable, int, int, float]


class Claim:
    """One job's write range. ``release`` is when its last copy can have
    landed (inf while the job may still send); ``waiting`` holds what the
    owner parked until the claim is granted."""

    __slots__ = ("chip", "start", "end", "granted", "release", "waiting")

    def __init__(self, chip: Hashable, start: int, end: int) -> None:
        self.chip = chip
        self.start = start
        self.end = end
        self.granted = False
        self.release = math.inf
        self.waiting: list[Any] = []

    def overlaps(self, other: Claim) -> bool:
        return self.start < other.end and other.start < self.end

    def __repr__(self) -> str:
        state = "granted" if self.granted else "waiting"
        return (
            f"Claim({self.chip!r}, 0x{self.start:08x}..0x{self.end:08x},"
            f" {state}, release={self.release})"
        )


class WriteFences:
    """The claims of one connection's writes, chip by chip.

    ``duplicates`` False says the network never duplicates a datagram:
    then a job whose every piece went once and was answered releases its
    claim at once (no copy is left anywhere); otherwise every claim is held
    ``max_age`` past the job's end.
    """

    def __init__(self, max_age: float, duplicates: bool = True) -> None:
        self.max_age = max_age
        self.duplicates = duplicates
        self._claims: dict[Hashable, list[Claim]] = {}
        #: The soonest release of an ended claim.
        self.next_release = math.inf

    def __len__(self) -> int:
        return sum(len(claims) for claims in self._claims.values())

    def claim(self, chip: Hashable, start: int, end: int) -> Claim:
        """A claim on [start, end) of ``chip``; granted at once unless an
        earlier claim there overlaps it."""
        claim = Claim(chip, start, end)
        claims = self._claims.setdefault(chip, [])
        claim.granted = not any(claim.overlaps(other) for other in claims)
        claims.append(claim)
        return claim

    def hold(self, chip: Hashable, start: int, end: int, until: float) -> None:
        """A range a predecessor's copies may still land in, until ``until``."""
        claim = self.claim(chip, start, end)
        claim.granted = True  # it blocks later claims; nothing waits on it
        claim.release = until
        self.next_release = min(self.next_release, until)

    def end(self, claim: Claim, now: float, clean: bool) -> list[Claim]:
        """Its job ended (``clean``: every piece went once and was answered);
        the claims this grants now."""
        if not claim.granted or (clean and not self.duplicates):
            return self._remove([claim])
        claim.release = now + self.max_age
        self.next_release = min(self.next_release, claim.release)
        return []

    def expire(self, now: float) -> list[Claim]:
        """Drop the claims whose copies can no longer land; those granted."""
        if now < self.next_release:
            return []
        gone = [
            claim
            for claims in self._claims.values()
            for claim in claims
            if claim.release <= now
        ]
        self.next_release = min(
            (
                claim.release
                for claims in self._claims.values()
                for claim in claims
                if claim.release > now
            ),
            default=math.inf,
        )
        return self._remove(gone)

    def waiting(self) -> list[list[Any]]:
        """What is parked on claims not yet granted, claim by claim."""
        return [
            claim.waiting
            for claims in self._claims.values()
            for claim in claims
            if claim.waiting
        ]

    def holds(self, now: float) -> list[Hold]:
        """What a successor must respect: every granted claim, those still
        sending taken as ending now."""
        return [
            (claim.chip, claim.start, claim.end, min(claim.release, now + self.max_age))
            for claims in self._claims.values()
            for claim in claims
            if claim.granted
        ]

    def _remove(self, gone: list[Claim]) -> list[Claim]:
        granted: list[Claim] = []
        for chip in {claim.chip for claim in gone}:
            claims = [claim for claim in self._claims[chip] if claim not in gone]
            for at, claim in enumerate(claims):
                if not claim.granted and not any(
                    claim.overlaps(earlier) for earlier in claims[:at]
                ):
                    claim.granted = True
                    granted.append(claim)
            if claims:
                self._claims[chip] = claims
            else:
                del self._claims[chip]
        return granted
