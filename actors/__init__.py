"""Supervised pykka actors that drive SpiNNaker boards over SCP/UDP.

The subpackages, lowest first (each imports only from those before it):
protocol (sans-IO window and jobs), supervision, ratelimit, connection,
listening, board (Client), compat (SpiNNMan's API), placement (many boards),
then connect() in connecting.py and the command line in app.
"""

from actors.board import Client
from actors.compat import ConnectionListener, SCPRequestPipeLine
from actors.connecting import connect
from actors.errors import (
    DeadlineExceeded,
    NoAnswer,
    PortRefused,
    RequestError,
    RequestTimeout,
    RetriesExhausted,
    ShutDown,
)
from actors.ratelimit import RateLimiterActor, TokenBucket
from actors.supervision import Backoff, ChildSpec, Supervised, Supervisor

__all__ = [
    "Backoff",
    "ChildSpec",
    "Client",
    "ConnectionListener",
    "DeadlineExceeded",
    "NoAnswer",
    "PortRefused",
    "RateLimiterActor",
    "RequestError",
    "RequestTimeout",
    "RetriesExhausted",
    "SCPRequestPipeLine",
    "ShutDown",
    "Supervised",
    "Supervisor",
    "TokenBucket",
    "connect",
]
