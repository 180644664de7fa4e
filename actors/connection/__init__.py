"""One board connection: the actor that owns its socket and window, and
the thread-safe book of its jobs that outlives each incarnation.
"""

from actors.connection.actor import ConnectionActor
from actors.connection.book import JobBook, next_outcomes
from actors.connection.messages import (
    ConnectionStats,
    GetConnectionStats,
    Submit,
    Wake,
)

__all__ = [
    "ConnectionActor",
    "ConnectionStats",
    "GetConnectionStats",
    "JobBook",
    "next_outcomes",
    "Submit",
    "Wake",
]
