"""pykka actors, the sans-IO pipeline window, the supervisor and the CLI."""

from actors.bucket import TokenBucket
from actors.client import Client, connect
from actors.connection_listener import ConnectionListener
from actors.errors import (
    DeadlineExceeded,
    RequestError,
    RequestTimeout,
    RetriesExhausted,
    ShutDown,
)
from actors.limiter import RateLimiterActor
from actors.pipeline import SCPRequestPipeLine
from actors.supervisor import Backoff, ChildSpec, Supervised, Supervisor

__all__ = [
    "Backoff", "ChildSpec", "Client", "ConnectionListener",
    "DeadlineExceeded", "RateLimiterActor", "RequestError", "RequestTimeout",
    "RetriesExhausted", "SCPRequestPipeLine", "ShutDown", "Supervised",
    "Supervisor", "TokenBucket", "connect",
]
