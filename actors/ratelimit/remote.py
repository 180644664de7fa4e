"""A rate limiter in the parent, as a board group elsewhere sees it.

A RateLimiterActor is an actor of the parent's and cannot cross to a
worker process or a Ray actor. What crosses instead is its protocol, as
plain data: a group's connections ask a RemoteLimiter for leases, which
sends a LeaseAsk with the group's next batch; the parent's GroupActor asks
the real limiter and sends the LeaseGrant back. Every connection of every
group draws on the one bucket, as connections in one process do.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pykka

from actors.ratelimit.limiter import Lease, LeaseRequest
from messages.errors import InvalidArgumentError


@dataclass(frozen=True)
class LeaseAsk:
    """From a group: ask the parent's limiter for ``tokens`` tokens."""

    ticket: int
    tokens: int


@dataclass(frozen=True)
class LeaseGrant:
    """To a group: the limiter's answer to ticket ``ticket``, or why there
    is none (``lease`` None: the limiter has gone)."""

    ticket: int
    lease: Lease | None
    error: str = ""


class RemoteLimiter:
    """Stands in for the parent's RateLimiterActor ref in a group: ask()
    sends a LeaseAsk through ``send`` and waits for its LeaseGrant, which
    the group hands to answer(). Thread-safe: every connection of the group
    shares one. Raises as an ActorRef's ask would: pykka.Timeout when no
    answer comes in time (a late one is dropped, which only under-spends),
    pykka.ActorDeadError when the limiter or the group has gone."""

    def __init__(self, send: Callable[[Any], None]) -> None:
        self._send = send
        self._tickets = itertools.count()
        self._lock = threading.Lock()
        self._waiting: dict[int, _Slot] = {}
        self._closed = False

    def ask(self, message: Any, *, timeout: float | None = None) -> Any:
        if not isinstance(message, LeaseRequest):
            raise InvalidArgumentError(
                "message", message, "a remote limiter answers only LeaseRequest"
            )
        slot = _Slot()
        with self._lock:
            if self._closed:
                raise pykka.ActorDeadError("the board group has stopped")
            ticket = next(self._tickets)
            self._waiting[ticket] = slot
        self._send(LeaseAsk(ticket, message.tokens))
        if not slot.done.wait(timeout):
            with self._lock:
                self._waiting.pop(ticket, None)
            raise pykka.Timeout(f"no lease from the parent's limiter in {timeout} s")
        if slot.grant is None or slot.grant.lease is None:
            raise pykka.ActorDeadError(
                "the rate limiter is gone"
                if slot.grant is None
                else slot.grant.error or "the rate limiter is gone"
            )
        return slot.grant.lease

    def answer(self, grant: LeaseGrant) -> None:
        """The parent's answer; one for a ticket no longer waited for is
        dropped."""
        with self._lock:
            slot = self._waiting.pop(grant.ticket, None)
        if slot is not None:
            slot.grant = grant
            slot.done.set()

    def close(self) -> None:
        """Wake every ask still waiting, with ActorDeadError."""
        with self._lock:
            self._closed = True
            waiting, self._waiting = self._waiting, {}
        for slot in waiting.values():
            slot.done.set()

    @property
    def waiting(self) -> int:
        """Asks sent and not yet answered."""
        with self._lock:
            return len(self._waiting)


class _Slot:
    __slots__ = ("done", "grant")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.grant: LeaseGrant | None = None
