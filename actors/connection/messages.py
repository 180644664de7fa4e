"""What a connection actor is told and what it answers (plain data).

Submit and Wake bring it jobs, GetConnectionStats asks for a
ConnectionStats snapshot. (actor.py gives these names too.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from actors.protocol.jobs import Job, OutcomeSink
from actors.protocol.rtt import RttStats


@dataclass(frozen=True)
class Submit:
    """Run ``jobs``; deliver each one's Outcome to ``sink``."""

    jobs: Sequence[Job]
    sink: OutcomeSink


@dataclass(frozen=True)
class Wake:
    """Look in the job book: someone has put jobs there."""


@dataclass(frozen=True)
class GetConnectionStats:
    """Ask for a ConnectionStats snapshot."""


@dataclass(frozen=True)
class ConnectionStats:
    """What a connection has done so far (plain data)."""

    remote: str
    window: int
    sent: int
    resent: int
    fast_resent: int
    retry_code_resent: int
    timeouts: int
    completed: int
    failed: int
    duplicates: int
    malformed: int
    foreign: int
    send_errors: int
    open_jobs: int
    rtt: RttStats
    #: Pieces on the wire when their job ended (never sent again), and the
    #: late replies to them that were dropped.
    retired: int = 0
    late: int = 0
    #: Receives ended early by an ICMP "port unreachable" (a connected
    #: socket whose board's port is closed), and this end's address.
    refused: int = 0
    local: str = ""
    #: Jobs ended because their callers gave up on them (see Cancel).
    cancelled: int = 0
    #: Requests on the wire now, and those the board ended with an error
    #: code, by the code's name.
    in_flight: int = 0
    error_codes: dict[str, int] = field(default_factory=dict)
    #: Seconds since a datagram last came from the board (None: none yet).
    last_reply_age: float | None = None
    #: Seconds the board has owed a reply: since the first request sent
    #: after its last datagram (None: it owes none; see Window.silent_for).
    silent_for: float | None = None
    #: Sleeps that let a paced board's replies gather, and the replies
    #: taken after them (see actors.protocol.coalesce).
    wakes: int = 0
    coalesced: int = 0
