"""Why a request ended without its result.

Each is raised to, or handed to the error callback of, whoever asked; each
carries a message (a RequestTimeout also a few plain facts) so that it
pickles across process boundaries.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, TypeVar

import pykka

from messages.errors import (
    InvalidArgumentError,
    MalformedDatagramError,
    SpinnactorsError,
    UnexpectedResponseCodeError,
)
from transport.links.endpoint import Address

E = TypeVar("E", bound=BaseException)


class RequestError(SpinnactorsError):
    """A request ended without a usable reply."""


class RequestTimeout(RequestError, TimeoutError):
    """Every try went unanswered. Where its maker knew them: ``sends``
    (datagrams sent for the request that gave up), ``waited`` (seconds from
    the connection taking the job to giving it up) and ``address`` (the
    board's host, port), for callers that must say so in their own words
    (SpiNNMan's exception: actors/compat/foreign.py); None otherwise. They
    pickle with the message (BaseException keeps ``__dict__``)."""

    def __init__(
        self,
        message: str,
        *,
        sends: int | None = None,
        waited: float | None = None,
        address: Address | None = None,
    ) -> None:
        super().__init__(message)
        self.sends = sends
        self.waited = waited
        self.address = address


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


class PowerCycled(RequestError):
    """The board was power-cycled (to recover it) while the request was
    open: what it held is gone, and the request was not done."""


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


def reworded(error: E, text: str) -> E:
    """``error`` again, of its type, saying ``text``, with the facts it
    carries (a RequestTimeout's sends, waited, address) kept."""
    again = type(error)(text)
    again.__dict__.update(vars(error))
    return again


def board_label(name: Hashable, address: Address | None = None) -> str:
    """How an error names a Machine's board: ``board 'a' at host:port``."""
    where = "" if address is None else " at {}:{}".format(*address)
    return f"board {name!r}{where}"


def at_board(
    error: BaseException, name: Hashable, address: Address | None = None
) -> BaseException:
    """``error`` again, of the same type, its message led by the board it
    came from (a Machine's caller has many boards and needs to know
    which); the address is left out where the message has it already.
    An error already naming the board, an argument error (the caller's,
    whatever the board) or one that cannot be remade is returned as is."""
    label = f"board {name!r}"
    text = str(error)
    if isinstance(error, InvalidArgumentError) or text.startswith(label):
        return error
    if address is not None and "{}:{}".format(*address) not in text:
        label = board_label(name, address)
    named: BaseException
    try:
        if isinstance(error, UnexpectedResponseCodeError):
            named = type(error)(
                f"{label}: {error.operation}", error.command, error.result
            )
        elif error.args == (text,):
            named = reworded(error, f"{label}: {text}")
        else:
            return error
    except Exception:  # noqa: BLE001 - a constructor of another shape
        return error
    if type(named) is not type(error):
        return error
    named.__cause__ = error.__cause__
    return named
