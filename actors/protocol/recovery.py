"""A request off the happy path: the rules the window applies to it.

A request leaves the happy path when it expires, is overtaken by later
replies, gets a "busy" code, an error code or a reply that does not parse.
What then: resent at once (overtaken, malformed) or on the next poll
(expired), parked for ``retry_pause`` (busy), or ended with the error its
history earns (RequestTimeout, RetriesExhausted, MalformedReply) once its
budget is spent. WindowCounters counts all of it.

Recovery is the base class of the window (window.py; BulkLane in between),
not an object of its own: its methods work on the window's state, declared
below for the type checker and set up by Window.__init__, and are reached
without an extra call from the window's loops. They deal in Requests
only: a bulk piece is made one (BulkLane._promote) before it gets here.
"""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass, field

from actors.errors import (
    MalformedReply,
    RequestError,
    RequestTimeout,
    RetriesExhausted,
)
from actors.protocol.requests import OnTheWire, Request
from actors.protocol.rtt import RttEstimator
from messages.scp.enums import SCPResult

_RC_OK = SCPResult.RC_OK.value
_NAMES = {result.value: result.name for result in SCPResult}
#: Why a request was resent (besides a result code's name).
TIMEOUT = "timeout"
OVERTAKEN = "overtaken"
MALFORMED = "malformed"
#: Reasons that mean the board never answered (as opposed to "busy").
_UNANSWERED = frozenset({TIMEOUT, OVERTAKEN})


@dataclass
class WindowCounters:
    """What became of a window's requests, as running totals."""

    sent: int = 0
    resent: int = 0
    fast_resent: int = 0
    retry_code_resent: int = 0
    timeouts: int = 0
    completed: int = 0
    failed: int = 0
    duplicates: int = 0
    malformed: int = 0
    #: Pieces on the wire when their job ended, never sent again.
    retired: int = 0
    #: Replies to retired pieces, dropped.
    late: int = 0
    #: Requests the board ended with an error code, by the code's name.
    error_codes: dict[str, int] = field(default_factory=dict)
    #: When a datagram last came from the board (the clock's time; -inf
    #: before the first).
    last_heard: float = -math.inf


class Recovery:
    """The window's rules for a Request off the happy path, and the one
    way a Request is sent and ended."""

    # The window's state these rules use (window.py's table says where a
    # request lives; Window.__init__ sets it up).
    rtt: RttEstimator
    _counters: WindowCounters
    _n_completed: int
    _n_sent: int
    _n_sends: int
    _n_open: int
    _size: int
    _retries: int
    _fast_after: int
    _retry_pause: float
    _retry_codes: frozenset[int]
    _non_fail: frozenset[int]
    _tie: itertools.count[int]
    _flight: dict[int, OnTheWire]
    _held: dict[int, Request]
    _retry_due: list[tuple[float, int, Request]]
    _outbox: list[Request]
    _retired: dict[int, float]
    _completed: list[Request]
    _next_timer: float

    # -- sending ---------------------------------------------------------------

    def _stamp(self, request: Request, now: float) -> bytearray:
        """Mark ``request`` sent at ``now``: its order, expiry (never past
        its deadline) and the next timer; the one way a Request is sent."""
        self._n_sends += 1
        request.sends += 1
        request.sent_at = now
        request.order = self._n_sends
        request.overtaken = 0
        expires = now + self.rtt.rto
        if request.deadline is not None and request.deadline < expires:
            expires = request.deadline
        request.expires_at = expires
        if expires < self._next_timer:
            self._next_timer = expires
        return request.datagram

    def _resend(self, request: Request, now: float) -> bytearray:
        """Send again a request that keeps its sequence number."""
        self._counters.resent += 1
        self._n_sent += 1
        return self._stamp(request, now)

    def _send_outbox(self, out: list[bytearray], now: float, left: int) -> int:
        outbox = self._outbox
        while outbox and left > 0:
            request = outbox.pop(0)
            if not request.done:
                out.append(self._resend(request, now))
                left -= 1
        return left

    def _send_retries(self, out: list[bytearray], now: float, left: int) -> int:
        flight, retry_due = self._flight, self._retry_due
        while (
            retry_due
            and retry_due[0][0] <= now
            and left > 0
            and len(flight) < self._size
        ):
            _, _, request = heapq.heappop(retry_due)
            if request.done:
                continue
            del self._held[request.seq]
            self._counters.retry_code_resent += 1
            request.retry_code_resent += 1
            flight[request.seq] = request
            out.append(self._resend(request, now))
            left -= 1
        return left

    # -- leaving the happy path ----------------------------------------------

    def _may_retry(self, request: Request) -> bool:
        return request.sends <= self._retries

    def _resend_soon(self, request: Request) -> None:
        """Send again on the next poll, keeping the sequence number; moved
        to the back of the send order."""
        flight = self._flight
        del flight[request.seq]
        flight[request.seq] = request
        request.expires_at = math.inf
        self._outbox.append(request)

    def _overtaken(self, oldest: Request) -> None:
        """A reply overtook the oldest request on the wire: after enough of
        them, take it as lost and resend it without waiting for expiry."""
        if oldest.expires_at == math.inf:
            return  # already waiting to be resent
        oldest.overtaken += 1
        if (
            oldest.overtaken >= self._fast_after
            and oldest.may_resend
            and self._may_retry(oldest)
        ):
            oldest.note(OVERTAKEN)
            self._counters.fast_resent += 1
            self._resend_soon(oldest)

    def _malformed(self, request: Request) -> None:
        """A reply to ``request`` that does not parse: a loss. Resent at
        once within the budget; past it, MalformedReply."""
        self._counters.malformed += 1
        if request.expires_at == math.inf:
            return  # already waiting to be resent
        request.note(MALFORMED)
        if request.may_resend and self._may_retry(request):
            self._resend_soon(request)
        else:
            del self._flight[request.seq]
            self._finish(request, None, self._exhausted(request))

    def _other_reply(
        self, request: Request | None, code: int, seq: int, datagram: bytes, now: float
    ) -> None:
        """Every reply but an expected RC_OK: junk, duplicates, late answers,
        busy codes and the board's error codes."""
        if code not in _NAMES:
            self._counters.malformed += 1
            return
        if request is None:
            parked = self._held.get(seq)
            if parked is None and seq in self._retired:
                self._counters.late += 1
            elif parked is None or code in self._retry_codes:
                self._counters.duplicates += 1
            elif (
                code == _RC_OK
                and parked.reply_size is not None
                and len(datagram) != parked.reply_size
            ):
                self._counters.malformed += 1
            else:
                # The answer to a copy sent before the busy reply came.
                del self._held[seq]
                self._finish(parked, datagram, None)
            return
        del self._flight[seq]
        if code not in self._retry_codes:
            if code != _RC_OK:
                codes = self._counters.error_codes
                codes[_NAMES[code]] = codes.get(_NAMES[code], 0) + 1
            self._finish(request, datagram, None)
            return
        request.note(_NAMES[code])
        if request.expires_at == math.inf:
            self._outbox.remove(request)  # the busy code's pause comes first
        if self._may_retry(request):
            self._held[seq] = request
            due = now + self._retry_pause
            heapq.heappush(self._retry_due, (due, next(self._tie), request))
            if due < self._next_timer:
                self._next_timer = due
        elif code in self._non_fail:
            self._finish(request, datagram, None)
        else:
            self._finish(request, None, self._exhausted(request))

    # -- ending ------------------------------------------------------------------

    def _exhausted(self, request: Request) -> RequestError:
        tries = request.sends
        reasons = request.reasons or []
        after = f"after {tries} {'try' if tries == 1 else 'tries'}"
        if reasons and reasons[-1] == MALFORMED:
            return MalformedReply(f"malformed reply {after}")
        if all(reason in _UNANSWERED for reason in reasons):
            if not request.may_resend:
                return RequestTimeout(
                    f"no reply {after} (not resent: running it twice is not safe)",
                    sends=tries,
                )
            return RequestTimeout(f"no reply {after}", sends=tries)
        return RetriesExhausted(f"no usable reply {after}: {', '.join(reasons)}")

    def _finish(
        self, request: Request, reply: bytes | None, error: RequestError | None
    ) -> None:
        request.done = True
        request.reply = reply
        request.error = error
        self._n_open -= 1
        if error is None:
            self._n_completed += 1
        else:
            self._counters.failed += 1
        self._completed.append(request)
