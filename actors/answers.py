"""Answers awaited together: several actors are asked at once (ask_now),
then each answer is waited for until one deadline shared by all
(answer_by), so a stuck actor holds the whole wait no longer than that
deadline, never one timeout per actor, and answers are taken in the order
asked.

What did not come is told apart and named, never raised: GONE (there was
no actor to ask, or it stopped before it answered) or LATE (it did not
answer by the deadline: busy or stuck). What that means is the caller's:
a board's health says unresponsive, a scrape leaves the actor out, a
worker reports no supervision.
"""

from __future__ import annotations

import enum
import time
from typing import Any, TypeVar

import pykka

T = TypeVar("T")


class Missing(enum.Enum):
    """Why an answer asked for did not come."""

    #: No actor was asked, or it stopped before it answered.
    GONE = "gone"
    #: It did not answer by the deadline.
    LATE = "late"


def ask_now(ref: pykka.ActorRef[Any] | None, message: Any) -> pykka.Future[Any] | None:
    """``message`` asked of ``ref`` without waiting, so the next can be
    asked before this one answers; None if there is no actor or it has
    stopped (answer_by gives GONE for it)."""
    if ref is None:
        return None
    try:
        return ref.ask(message, block=False)
    except pykka.ActorDeadError:
        return None


def answer_by(future: pykka.Future[T] | None, deadline: float) -> T | Missing:
    """``future``'s answer if it comes by ``deadline`` (time.monotonic()),
    waiting no longer; GONE if there is no future or its actor stopped,
    LATE if it has not come by then. Any other error of the actor's is
    raised, as pykka raises it."""
    if future is None:
        return Missing.GONE
    try:
        return future.get(timeout=max(0.0, deadline - time.monotonic()))
    except pykka.ActorDeadError:
        return Missing.GONE
    except pykka.Timeout:
        return Missing.LATE
