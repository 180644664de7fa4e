"""Listening: an actor that reads a connection and fans each message out
to callback actors, in arrival order, with bounded mailboxes.
"""

from actors.listening.callbacks import Backlog, CallbackActor, CallbackStats
from actors.listening.listener import (
    GetListenerStats,
    Listenable,
    ListenerActor,
    ListenerStats,
    where_is,
)

__all__ = [
    "Backlog",
    "CallbackActor",
    "CallbackStats",
    "GetListenerStats",
    "Listenable",
    "ListenerActor",
    "ListenerStats",
    "where_is",
]
