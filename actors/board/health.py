"""How a board is doing, in the few words a health check or a dashboard
wants: is it serving, when did it last answer, what is open, how often
has its connection restarted lately."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Literal

from actors.connection.actor import ConnectionStats
from actors.supervision.messages import SupervisorStats

#: serving: a connection is up; restarting: its supervisor is bringing it
#: back; given_up: its supervisor gave up (or its group was lost);
#: unresponsive: its worker process did not answer a health check in time;
#: closed: closed by its owner.
BoardState = Literal["serving", "restarting", "given_up", "unresponsive", "closed"]


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
    #: Its connection's counters, when serving (what metrics export).
    stats: ConnectionStats | None = None
    #: Its connection's supervisor, from a worker process (whose
    #: supervisors no registry of the parent's can find); None in-process.
    supervision: SupervisorStats | None = None

    @property
    def up(self) -> bool:
        return self.state == "serving"

    def serving(self, stats: ConnectionStats) -> BoardHealth:
        """This board's health with its connection up, as ``stats`` (the
        connection's own figures) tell it."""
        return replace(
            self,
            state="serving",
            last_reply_age=stats.last_reply_age,
            open_jobs=stats.open_jobs,
            in_flight=stats.in_flight,
            reason="",
            stats=stats,
        )

    def as_dict(self) -> dict[str, Any]:
        """The health fields (not the counters), e.g. for JSON."""
        return {
            field.name: getattr(self, field.name)
            for field in fields(self)
            if field.name not in ("stats", "supervision")
        }
