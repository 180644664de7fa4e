"""How a board is doing, in the few words a health check or a dashboard
wants: is it serving, when did it last answer, what is open, how often
has its connection restarted lately.

A board is serving while it answers. One that has owed a reply for longer
than silence_bound() of its connection's retransmission timeout is silent
instead, until a datagram comes from it: its connection is up, but nothing
sent to it will be answered. A board merely idle (it answered everything
asked of it) stays serving however long ago that was.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Literal

import pykka

from actors.answers import Missing, answer_by
from actors.connection.messages import ConnectionStats
from actors.supervision.messages import SupervisorStats

#: serving: a connection is up; restarting: its supervisor is bringing it
#: back; given_up: its supervisor gave up (or its group was lost);
#: unresponsive: its worker process (or, in this process, its connection
#: actor) did not answer a health check in time;
#: silent: its connection is up but the board has owed a reply for longer
#: than silence_bound(); closed: closed by its owner.
BoardState = Literal[
    "serving", "restarting", "given_up", "unresponsive", "silent", "closed"
]

#: A board is silent once it has owed a reply for longer than this many of
#: its connection's current retransmission timeouts (one loss costs one
#: timeout and a resend; three with nothing back is no longer bad luck) ...
SILENT_RTOS = 3
#: ... and never sooner than this many seconds: a round trip of a few
#: microseconds on loopback must not make a busy moment look like silence.
SILENT_FLOOR = 1.0


def silence_bound(rto: float) -> float:
    """How long a board may owe a reply and still be serving, given its
    connection's current retransmission timeout (seconds)."""
    return max(SILENT_RTOS * rto, SILENT_FLOOR)


@dataclass(frozen=True)
class BoardHealth:
    """One board's health (plain data, crosses processes)."""

    board: str
    state: BoardState
    #: Seconds since a datagram last came from the board (None: none yet,
    #: or not known while it restarts).
    last_reply_age: float | None = None
    open_jobs: int = 0
    in_flight: int = 0
    #: Restarts of its connection within the last ``period`` seconds.
    recent_restarts: int = 0
    period: float = 0.0
    #: Why it is not serving, if it is not.
    reason: str = ""
    #: Seconds the board has owed a reply (None: it owes none), when its
    #: connection is up.
    silent_for: float | None = None
    #: Its connection's counters, while it is up (what metrics export).
    stats: ConnectionStats | None = None
    #: Its connection's supervisor, from a worker process (whose
    #: supervisors no registry of the parent's can find); None in-process.
    supervision: SupervisorStats | None = None

    @property
    def up(self) -> bool:
        return self.state == "serving"

    def serving(self, stats: ConnectionStats) -> BoardHealth:
        """This board's health with its connection up, as ``stats`` (the
        connection's own figures) tell it: serving, or silent if it has
        owed a reply for longer than silence_bound(stats.rtt.rto)."""
        bound = silence_bound(stats.rtt.rto)
        silent_for = stats.silent_for
        state: BoardState = "serving"
        reason = ""
        if silent_for is not None and silent_for > bound:
            state, reason = "silent", _silence(stats, silent_for, bound)
        return replace(
            self,
            state=state,
            last_reply_age=stats.last_reply_age,
            open_jobs=stats.open_jobs,
            in_flight=stats.in_flight,
            reason=reason,
            silent_for=silent_for,
            stats=stats,
        )

    def as_dict(self) -> dict[str, Any]:
        """The health fields (not the counters), e.g. for JSON."""
        return {
            field.name: getattr(self, field.name)
            for field in fields(self)
            if field.name not in ("stats", "supervision")
        }


@dataclass(frozen=True)
class PendingHealth:
    """A board's health asked and not waited for yet, so that many boards
    are asked at once and waited for together (a scrape must not wait for
    one after another): ``base`` until its connection's ``stats`` come."""

    base: BoardHealth
    stats: pykka.Future[Any] | None = None

    def result(self, deadline: float) -> BoardHealth:
        """Serving (or silent) once the stats have come; ``base`` if the
        actor has stopped meanwhile (restarting); unresponsive if they
        have not come by ``deadline`` (time.monotonic()): the board stays
        in a health check whose actor is stuck, and the check is bounded."""
        stats = answer_by(self.stats, deadline)
        if stats is Missing.GONE:
            return self.base
        if stats is Missing.LATE:
            return replace(
                self.base,
                state="unresponsive",
                reason="its connection actor did not answer a health check in time",
            )
        return self.base.serving(stats)


def _silence(stats: ConnectionStats, silent_for: float, bound: float) -> str:
    """Why a board is silent: how long, against what bound, what is open."""
    rto = stats.rtt.rto
    what = (
        f"{_count(stats.in_flight, 'request')} on the wire, "
        f"{_count(stats.open_jobs, 'job')} open"
        if stats.in_flight or stats.open_jobs
        else "nothing open now: its last requests ended unanswered"
    )
    return (
        f"no reply from {stats.remote} for {silent_for:.1f} s "
        f"(silent after {bound:.1f} s: {SILENT_RTOS} x its {rto * 1e3:.0f} ms "
        f"retransmission timeout, at least {SILENT_FLOOR:g} s); {what}"
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
