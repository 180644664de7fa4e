"""pykka actors, the sans-IO pipeline window, the supervisor and the CLI."""

from actors.bucket import TokenBucket
from actors.client import Client, connect
from actors.errors import (
    DeadlineExceeded, RequestError, RequestTimeout, RetriesExhausted, ShutDown)
from actors.limiter import RateLimiterActor
from actors.pipeline import SCPRequestPipeLine

__all__ = [
    "Client", "DeadlineExceeded", "RateLimiterActor", "RequestError",
    "RequestTimeout", "RetriesExhausted", "SCPRequestPipeLine", "ShutDown",
    "TokenBucket", "connect",
]
