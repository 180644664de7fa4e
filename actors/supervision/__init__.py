"""Supervision after Erlang/OTP: child specs, supervisors, and the
children's side that reports exits.
"""

from actors.supervision.child import (
    Crash,
    CrashInjected,
    Supervised,
    Watch,
    stop_and_join,
)
from actors.supervision.spec import Backoff, ChildSpec, Restart
from actors.supervision.supervisor import (
    ChildLookup,
    GetSupervisorStats,
    StartChild,
    StopChild,
    Strategy,
    Supervisor,
    SupervisorGaveUp,
    SupervisorStats,
    WhereIs,
)

__all__ = [
    "Backoff",
    "ChildLookup",
    "ChildSpec",
    "Crash",
    "CrashInjected",
    "GetSupervisorStats",
    "Restart",
    "StartChild",
    "StopChild",
    "Strategy",
    "Supervised",
    "Supervisor",
    "SupervisorGaveUp",
    "SupervisorStats",
    "Watch",
    "WhereIs",
    "stop_and_join",
]
