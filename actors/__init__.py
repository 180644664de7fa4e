"""pykka actors, the sans-IO pipeline window, the supervisor and the CLI."""

from actors.board.client import Client, connect
from actors.compat.connection_listener import ConnectionListener
from actors.compat.pipeline import SCPRequestPipeLine
from actors.errors import (
    DeadlineExceeded,
    RequestError,
    RequestTimeout,
    RetriesExhausted,
    ShutDown,
)
from actors.ratelimit.bucket import TokenBucket
from actors.ratelimit.limiter import RateLimiterActor
from actors.supervision.supervisor import Backoff, ChildSpec, Supervised, Supervisor

__all__ = [
    "Backoff", "ChildSpec", "Client", "ConnectionListener",
    "DeadlineExceeded", "RateLimiterActor", "RequestError", "RequestTimeout",
    "RetriesExhausted", "SCPRequestPipeLine", "ShutDown", "Supervised",
    "Supervisor", "TokenBucket", "connect",
]
