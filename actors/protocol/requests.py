"""What the window carries: requests, and the pieces of a bulk transfer.

A Request is one datagram with its own deadline, retries and outcome. A
Bulk (a large read or write) is asked for its pieces by index; a piece on
the wire is a Piece, a light record that becomes a Request only when it
leaves the happy path (expires, is overtaken, or gets a code other than
RC_OK). Both carry the same send stamp (sent_at, order, expires_at), so
the window's timers treat them alike.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Protocol

from actors.errors import RequestError


class Request:
    """One datagram to deliver, and what became of it.

    The sender fills in the first five fields. The window stamps ``seq``
    into the datagram, and when the request ends sets ``reply`` (the reply
    datagram) or ``error``, plus the counters the caller may want.
    """

    __slots__ = (
        "key",
        "datagram",
        "may_resend",
        "deadline",
        "reply_size",
        "check",
        "seq",
        "sends",
        "sent_at",
        "expires_at",
        "order",
        "overtaken",
        "reasons",
        "timeouts",
        "retry_code_resent",
        "done",
        "reply",
        "error",
    )

    def __init__(
        self,
        key: Hashable,
        datagram: bytearray,
        may_resend: bool = True,
        deadline: float | None = None,
        reply_size: int | None = None,
        check: Callable[[bytes], bool] | None = None,
    ) -> None:
        self.key = key
        self.datagram = datagram
        self.may_resend = may_resend
        self.deadline = deadline
        #: The exact length of an RC_OK reply, when known (a read's).
        self.reply_size = reply_size
        #: Whether an RC_OK reply parses; one that does not is a loss.
        self.check = check
        self.seq = -1
        self.sends = 0
        self.sent_at = 0.0
        self.expires_at = 0.0
        self.order = 0
        self.overtaken = 0
        #: Why each resend happened ("timeout", a result code, "overtaken").
        self.reasons: list[str] | None = None
        self.timeouts = 0
        self.retry_code_resent = 0
        self.done = False
        self.reply: bytes | None = None
        self.error: RequestError | None = None

    @property
    def resends(self) -> int:
        return self.sends - 1 if self.sends > 1 else 0

    def note(self, reason: str) -> None:
        if self.reasons is None:
            self.reasons = [reason]
        else:
            self.reasons.append(reason)

    def __repr__(self) -> str:
        state = (
            "ok"
            if self.reply is not None
            else type(self.error).__name__
            if self.error
            else "open"
        )
        return f"Request(key={self.key!r}, seq={self.seq}, sends={self.sends}, {state})"


class Bulk(Protocol):
    """Pieces that the window asks for by index (a large read or write).

    Only for pieces that may be resent and have no deadline of their own.
    """

    def piece(self, index: int) -> tuple[bytearray, int]:
        """The datagram of piece ``index`` (sequence 0; the window stamps
        it) and the exact length of its RC_OK reply (0: any length)."""
        ...

    def request(self, index: int) -> Request:
        """Piece ``index`` as a Request, for when it leaves the happy path."""
        ...

    def accept(self, replies: list[tuple[int, bytes]]) -> bool:
        """Take the first RC_OK replies (of the length piece() said) to
        pieces, as (index, reply); True if they included the bulk's last
        piece."""
        ...


class BulkSpan:
    """Pieces ``next``..``stop``-1 of ``bulk``, queued; ``ready`` is piece
    ``next`` made ahead, if it has been."""

    __slots__ = ("bulk", "next", "stop", "ready")

    def __init__(self, bulk: Bulk, start: int, stop: int) -> None:
        self.bulk = bulk
        self.next = start
        self.stop = stop
        self.ready: tuple[bytearray, int] | None = None


class Piece:
    """A bulk piece on the wire: which piece, its send stamp, and the exact
    length of its RC_OK reply (0: any length)."""

    __slots__ = ("bulk", "index", "sent_at", "order", "expires_at", "reply_size")

    def __init__(
        self,
        bulk: Bulk,
        index: int,
        sent_at: float,
        order: int,
        expires_at: float,
        reply_size: int,
    ) -> None:
        self.bulk = bulk
        self.index = index
        self.sent_at = sent_at
        self.order = order
        self.expires_at = expires_at
        self.reply_size = reply_size

    def __repr__(self) -> str:
        return f"Piece(index={self.index}, order={self.order})"


#: What the window has on the wire under one sequence number.
OnTheWire = Request | Piece
