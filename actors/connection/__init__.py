"""One board connection: the actor that owns its socket and window, and
the thread-safe book of its jobs that outlives each incarnation.
"""

from actors.connection.actor import (
    ConnectionActor,
    ConnectionStats,
    GetConnectionStats,
    Submit,
    Wake,
)
from actors.connection.book import JobBook, next_outcomes

__all__ = [
    "ConnectionActor",
    "ConnectionStats",
    "GetConnectionStats",
    "JobBook",
    "next_outcomes",
    "Submit",
    "Wake",
]
