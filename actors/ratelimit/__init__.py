"""Rate limiting: a token bucket, the actor that owns one, leases of
tokens a burst at a time, and the limiter a placed group asks remotely.
"""

from actors.ratelimit.bucket import TokenBucket
from actors.ratelimit.lease import RateLimit
from actors.ratelimit.limiter import (
    Lease,
    LeaseRequest,
    Limiter,
    LimiterStats,
    RateLimiterActor,
)
from actors.ratelimit.remote import LeaseAsk, LeaseGrant, RemoteLimiter

__all__ = [
    "Lease",
    "LeaseAsk",
    "LeaseGrant",
    "LeaseRequest",
    "Limiter",
    "LimiterStats",
    "RateLimit",
    "RateLimiterActor",
    "RemoteLimiter",
    "TokenBucket",
]
