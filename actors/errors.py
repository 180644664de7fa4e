"""Why a request ended without its result.

Each is raised to, or handed to the error callback of, whoever asked; each
carries only a message so that it pickles across process boundaries.
"""

from __future__ import annotations

from typing import Any

import pykka

from messages.errors import MalformedDatagramError, SpinnactorsError


class RequestError(SpinnactorsError):
    """A request ended without a usable reply."""


class RequestTimeout(RequestError, TimeoutError):
    """Every try went unanswered."""


class PortRefused(RequestError, ConnectionRefusedError):
    """The board's host said nothing listens on its port (an ICMP "port
    unreachable" to a connected socket), and the client was told to fail
    at once on that rather than try again."""


class RetriesExhausted(RequestError):
    """The board kept answering "busy" until the retry budget ran out."""


class DeadlineExceeded(RequestError, TimeoutError):
    """The request's own deadline passed before it was answered."""


class MalformedReply(RequestError, MalformedDatagramError):
    """Every reply that came was malformed (short, long or unparseable)."""


class ShutDown(RequestError):
    """The connection stopped before the request was answered."""


class Cancelled(RequestError):
    """The caller gave up on the request (an asyncio task was cancelled):
    nothing more of it is sent, and late replies to it are dropped."""


class NoAnswer(RequestError, TimeoutError):
    """An actor of ours did not answer in time (busy starting, or stuck)."""


def ask(ref: pykka.ActorRef[Any], message: Any, *, timeout: float, what: str) -> Any:
    """``ref.ask`` that raises only our errors: ShutDown if the actor has
    stopped, NoAnswer if it does not answer within ``timeout`` (a raw
    pykka.Timeout means nothing to a caller)."""
    try:
        return ref.ask(message, timeout=timeout)
    except pykka.ActorDeadError:
        raise ShutDown(f"{what}: it has stopped") from None
    except pykka.Timeout:
        raise NoAnswer(f"{what}: no answer within {timeout:g} s") from None
