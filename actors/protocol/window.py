"""The pipeline window: which SCP datagrams to send, and which are done.

Sans-IO, as h11 is for HTTP: the window is given datagrams and the time,
and answers with datagrams to send and requests that have ended. It never
touches a socket or a clock, so every loss, duplicate, reordering and retry
can be played out exactly in a test.

What it does that SpiNNMan's pipeline does not:

* each request has its own expiry (an adaptive retransmission timeout, see
  rtt.py) and optionally its own deadline, so one loss resends one request
  instead of the whole window;
* a request overtaken by ``fast_resend_after`` later replies is resent at
  once (as TCP's fast retransmit), not after a timeout;
* a "busy" result code parks the request for ``retry_pause`` while the rest
  of the window carries on (SpiNNMan sleeps 0.1 s with everything waiting);
* a request that must not run twice (``may_resend`` False) is never resent
  after a timeout: the board may have run it already;
* a reply that does not parse (wrong length, or refused by the request's
  ``check``) is a loss: counted and resent within the budget;
* a write's address range is fenced (fences.py): a later overlapping write
  waits until no copy of the earlier one can still land, and a job that
  ends sends nothing more; its pieces on the wire are retired, their late
  replies counted and dropped.

Bulk lane: a large read or write (a Bulk, with no deadline and safe to
resend) is queued as one span of pieces. Each piece's datagram is made
ahead (by settle(), while the owner waits anyway) and it is tracked on the
wire as a plain tuple; a first RC_OK reply of the right length frees its
slot at once and is handed to the Bulk by the next settle(), after the
owner has sent what the slot let out. So between a reply and the next
request there is only bookkeeping: no Request object, no copy. As soon as
anything else happens to a piece (it expires, is overtaken, or gets a code
other than RC_OK) it becomes a Request, in place, with the same sequence
number, send time and order, and the rules above take over. One request
at a time, even the poll can wait: receive(..., send_next=True) hands back
the next piece of a reply that empties the window, for the owner to send
before anything else.
"""

from __future__ import annotations

import heapq
import itertools
import math
import struct
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field

from actors.errors import (
    DeadlineExceeded,
    MalformedReply,
    RequestError,
    RequestTimeout,
    RetriesExhausted,
)
from actors.protocol.fences import Claim, Hold, WriteFences
from actors.protocol.requests import Bulk, BulkSpan, OnTheWire, Piece, Request
from actors.protocol.rtt import RttEstimator
from messages.scp.enums import RETRY_CODES, SCPResult
from messages.scp.layout import (
    RESULT_AND_SEQUENCE,
    RESULT_OFFSET,
    SEQUENCE,
    SEQUENCE_OFFSET,
)

_RC_OK = SCPResult.RC_OK.value
_NAMES = {result.value: result.name for result in SCPResult}
_TIMEOUT = "timeout"
_OVERTAKEN = "overtaken"
_MALFORMED = "malformed"
#: Reasons that mean the board never answered (as opposed to "busy").
_UNANSWERED = frozenset({_TIMEOUT, _OVERTAKEN})


@dataclass(frozen=True)
class WindowSettings:
    """How a window paces and retries; the defaults suit a real board.

    ``size`` is SpiNNMan's n_channels: requests on the wire at once (a
    board's monitor holds at most 8). ``refill_at`` is its receive
    threshold: once the window is full, new requests wait until no more
    than this many are outstanding (None: size - 1, a sliding window;
    SpiNNMan's default of 0 drains the whole window first).

    ``max_datagram_age`` is how long a copy of a write may still land after
    it was sent (a LAN's and the virtual board's reorder and delay faults
    are well inside the default): an overlapping write waits that long
    after the earlier write's job ends. ``network_duplicates`` False says
    the network never duplicates a datagram, so a write whose every piece
    went once and was answered frees its range at once.
    """

    size: int = 8
    refill_at: int | None = None
    retries: int = 10
    initial_rto: float = 1.0
    rto_floor: float = 0.005
    rto_ceiling: float = 1.0
    retry_pause: float = 0.005
    non_fail_retry_codes: frozenset[SCPResult] = frozenset()
    fast_resend_after: int = 3
    max_datagram_age: float = 0.1
    network_duplicates: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.size <= 65535:
            raise ValueError(f"size={self.size}: must be 1..65535")
        if self.refill_at is not None and not 0 <= self.refill_at < self.size:
            raise ValueError(
                f"refill_at={self.refill_at}: must be 0..size-1 ({self.size - 1})"
            )
        if self.retries < 0:
            raise ValueError(f"retries={self.retries}: must be >= 0")
        if not 0 < self.rto_floor <= self.rto_ceiling:
            raise ValueError(
                f"rto_floor={self.rto_floor}, rto_ceiling="
                f"{self.rto_ceiling}: need 0 < floor <= ceiling"
            )
        if self.initial_rto <= 0 or self.retry_pause < 0:
            raise ValueError("initial_rto must be > 0, retry_pause >= 0")
        if not 0 <= self.max_datagram_age <= 600:
            raise ValueError(
                f"max_datagram_age={self.max_datagram_age}: must be 0..600 seconds"
            )
        if self.fast_resend_after < 0:
            raise ValueError(
                f"fast_resend_after={self.fast_resend_after}: "
                f"must be >= 0 (0 turns it off)"
            )


@dataclass
class WindowCounters:
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


class Window:
    """Sequence numbers, expiries, retries and counters of one connection."""

    def __init__(
        self,
        settings: WindowSettings | None = None,
        *,
        first_sequence: int = 0,
        holds: Sequence[Hold] = (),
    ) -> None:
        self.settings = settings = settings or WindowSettings()
        self.rtt = RttEstimator(
            settings.initial_rto, settings.rto_floor, settings.rto_ceiling
        )
        self._counters = WindowCounters()
        self._n_completed = 0
        self._n_sent = 0
        self._size = settings.size
        self._retries = settings.retries
        self._fast_after = settings.fast_resend_after
        self._refill_at = (
            settings.size - 1 if settings.refill_at is None else settings.refill_at
        )
        self._retry_codes = frozenset(code.value for code in RETRY_CODES)
        self._non_fail = frozenset(code.value for code in settings.non_fail_retry_codes)
        self._next_seq = first_sequence & 0xFFFF
        self._n_sends = 0
        self._tie = itertools.count()
        #: Not sent yet, in arrival order (a list with a moving head).
        self._queue: list[Request | BulkSpan] = []
        self._queue_head = 0
        #: On the wire, by sequence, in the order last sent.
        self._flight: dict[int, OnTheWire] = {}
        #: Parked after a busy code, by sequence; and when each is due.
        self._held: dict[int, Request] = {}
        self._retry_due: list[tuple[float, int, Request]] = []
        self._deadlines: list[tuple[float, int, Request]] = []
        #: Requests on the wire to send again on the next poll.
        self._outbox: list[Request] = []
        #: No expiry, retry or deadline falls before this time.
        self._next_timer = math.inf
        self._draining = False
        self._completed: list[Request] = []
        #: Bulk pieces answered, not yet handed to their Bulk.
        self._arrived: list[tuple[Bulk, list[tuple[int, bytes]]]] = []
        #: The Bulk of the last arrival, and its list in _arrived.
        self._arrived_bulk: Bulk | None = None
        self._arrived_to: list[tuple[int, bytes]] = []
        #: A round trip measured, not yet given to the estimator.
        self._rtt_pending = -1.0
        #: Bulks whose last piece came in through the bulk lane.
        self._finished_bulks: list[Bulk] = []
        self._n_open = 0
        #: One round-trip sample per poll is plenty (RFC 6298 asks for one
        #: per round trip), and sampling every reply costs ~10% of a read.
        self._sampled = False
        #: Write ranges claimed, and the sequence numbers of retired pieces
        #: (kept from reuse until no copy can land) with until when.
        self.fences = WriteFences(
            settings.max_datagram_age, settings.network_duplicates
        )
        self._retired: dict[int, float] = {}
        for hold in holds:
            self.hold(hold)

    # -- what the owner asks ---------------------------------------------------

    @property
    def counters(self) -> WindowCounters:
        """The running totals (``completed`` kept apart: it is the hot one)."""
        counters = self._counters
        counters.completed = self._n_completed
        counters.sent = self._n_sent
        return counters

    @property
    def in_flight(self) -> int:
        return len(self._flight)

    @property
    def queued(self) -> int:
        return len(self._queue) - self._queue_head

    @property
    def open_requests(self) -> int:
        """Requests added that have not ended yet."""
        return self._n_open

    @property
    def next_sequence(self) -> int:
        """The sequence number the next new request would get: a successor
        window on the same socket starts here, so a late reply to this
        one's requests cannot be taken for its own."""
        return self._next_seq

    @property
    def has_completed(self) -> bool:
        """Whether take_completed() or take_finished_bulks() has anything."""
        return (
            bool(self._completed)
            or bool(self._finished_bulks)
            or bool(self._arrived_to)
        )

    @property
    def resends_waiting(self) -> bool:
        """Resends decided but not sent (the last poll's budget ran out)."""
        return bool(self._outbox)

    def next_wakeup(self) -> float | None:
        """When poll() next has something to do without a reply arriving."""
        if self._outbox:
            return -math.inf
        if self._next_timer == math.inf:
            return None
        return self._next_timer

    # -- input -----------------------------------------------------------------

    def add(self, request: Request, now: float, fence: Claim | None = None) -> None:
        """Queue a request; it goes out on a later poll, in order among
        requests, and ahead of bulk pieces not sent yet (once ``fence``,
        a write's claim, is granted)."""
        if fence is not None and not fence.granted:
            fence.waiting.append(request)
        else:
            queue = self._queue
            at = self._single_slot()
            if at == len(queue):
                queue.append(request)
            else:
                queue.insert(at, request)
        self._n_open += 1
        if request.deadline is not None:
            heapq.heappush(
                self._deadlines, (request.deadline, next(self._tie), request)
            )
            if request.deadline < self._next_timer:
                self._next_timer = request.deadline

    def add_all(self, requests: list[Request], fence: Claim | None = None) -> None:
        """Queue several requests that have no deadline of their own (as
        add() does)."""
        if fence is not None and not fence.granted:
            fence.waiting += requests
        else:
            at = self._single_slot()
            self._queue[at:at] = requests
        self._n_open += len(requests)

    def _single_slot(self) -> int:
        """Where single requests join the queue: before the first bulk span
        waiting in it, so that a version or a small read asked during a
        large transfer does not wait for the whole transfer to be sent."""
        queue = self._queue
        for index in range(self._queue_head, len(queue)):
            if type(queue[index]) is BulkSpan:
                return index
        return len(queue)

    def add_bulk(
        self, bulk: Bulk, start: int, stop: int, fence: Claim | None = None
    ) -> None:
        """Queue pieces ``start``..``stop``-1 of ``bulk``: one queue entry,
        whose datagrams are made as they are sent."""
        if stop > start:
            span = BulkSpan(bulk, start, stop)
            if fence is not None and not fence.granted:
                fence.waiting.append(span)
            else:
                self._queue.append(span)
            self._n_open += stop - start

    def claim(self, chip: Hashable, start: int, end: int) -> Claim:
        """Fence a write job's range [start, end) on ``chip``: hand the
        claim to add(), add_all() and add_bulk() with the job's requests,
        and to ended() when the job ends."""
        return self.fences.claim(chip, start, end)

    def ended(
        self,
        now: float,
        fence: Claim | None = None,
        clean: bool = False,
        unwanted: Callable[[Request], bool] | None = None,
        bulk: Bulk | None = None,
    ) -> None:
        """A job has ended: if it failed (``unwanted`` picks its requests,
        ``bulk`` is its pieces) nothing of it is sent again, and what it
        has on the wire is retired; its ``fence`` is released once no copy
        can land (at once if ``clean``, see WriteFences.end)."""
        if unwanted is not None:
            self.drop_queued(unwanted, bulk, fence)
            self._retire(now, unwanted, bulk)
        if fence is not None:
            self._admit(self.fences.end(fence, now, clean))
            self._wake_by(self.fences.next_release)

    def hold(self, hold: Hold) -> None:
        """Fence a range that a predecessor's copies may still land in."""
        self.fences.hold(*hold)
        self._wake_by(self.fences.next_release)

    def holds(self, now: float) -> list[Hold]:
        """The write ranges a successor window on this board must fence
        (give them to its constructor): copies of ours may still land."""
        return self.fences.holds(now)

    def receive(
        self, datagram: bytes, now: float, send_next: bool = False
    ) -> bytearray | None:
        """Take one datagram from the board (a reply, or junk to count).

        With ``send_next``, a bulk piece's reply that leaves nothing on the
        wire, when nothing but the next piece of that span wants sending,
        returns that piece's datagram (made ahead by settle()), already
        counted as sent, for the owner to send at once. One request at a
        time, this is all that lies between a reply and the next request.
        Otherwise None: poll() says what to send, as usual."""
        self._counters.last_heard = now
        try:
            code, seq = RESULT_AND_SEQUENCE.unpack_from(datagram, RESULT_OFFSET)
        except struct.error:  # shorter than layout.MIN_REPLY
            self._counters.malformed += 1
            return None
        entry = self._flight.get(seq)
        if type(entry) is Piece and code == _RC_OK:
            return self._piece_answered(seq, entry, datagram, now, send_next)
        if isinstance(entry, Piece):
            entry = self._promote(seq, entry)
        if entry is None or code != _RC_OK:
            self._other_reply(entry, code, seq, datagram, now)
        else:
            self._request_answered(entry, datagram, now)
        return None

    def _piece_answered(
        self, seq: int, piece: Piece, datagram: bytes, now: float, send_next: bool
    ) -> bytearray | None:
        """A bulk piece's RC_OK: the happy path has no Request at all, and
        what can wait for settle() does."""
        size = piece.reply_size
        if size and len(datagram) != size:
            self._malformed(self._promote(seq, piece))
            return None
        flight = self._flight
        del flight[seq]
        bulk = piece.bulk
        if bulk is not self._arrived_bulk:
            self._arrived_bulk = bulk
            self._arrived_to = []
            self._arrived.append((bulk, self._arrived_to))
        self._arrived_to.append((piece.index, datagram))
        if not self._sampled:
            self._rtt_pending = now - piece.sent_at
            self._sampled = True
        if flight:
            if self._fast_after:
                for oldest in flight.values():
                    if oldest.order < piece.order:
                        self._check_oldest(piece.order)
                    break
            return None
        if (
            send_next
            and now < self._next_timer
            and not (self._outbox or self._retry_due or self._draining)
        ):
            # The next piece at once, if nothing else comes first.
            queue, head = self._queue, self._queue_head
            if head < len(queue):
                span = queue[head]
                if type(span) is BulkSpan and span.ready is not None:
                    out: list[bytearray] = []
                    self._send_span(span, out, now, 1)
                    return out[0]
        return None

    def _request_answered(self, request: Request, datagram: bytes, now: float) -> None:
        """An RC_OK for a Request: it ends, unless the reply does not parse."""
        reply_size = request.reply_size
        if (reply_size is not None and len(datagram) != reply_size) or (
            request.check is not None and not request.check(datagram)
        ):
            self._malformed(request)
            return
        del self._flight[request.seq]
        if request.sends == 1 and not self._sampled:
            self.rtt.sample(now - request.sent_at)
            self._sampled = True
        self._finish(request, datagram, None)
        if self._flight and self._fast_after:
            self._check_oldest(request.order)

    def _check_oldest(self, order: int) -> None:
        """A reply to the request sent ``order``-th came: it overtook the
        oldest one on the wire if that was sent before it."""
        for seq, oldest in self._flight.items():
            if oldest.order < order:
                self._overtaken(self._request_at(seq, oldest))
            return

    def _promote(self, seq: int, piece: Piece) -> Request:
        """Turn a bulk piece on the wire into a Request, in place, with the
        piece's send stamp."""
        request = piece.bulk.request(piece.index)
        SEQUENCE.pack_into(request.datagram, SEQUENCE_OFFSET, seq)
        request.seq = seq
        request.sends = 1
        request.sent_at = piece.sent_at
        request.order = piece.order
        request.expires_at = piece.expires_at
        self._flight[seq] = request
        return request

    def poll(self, now: float, budget: int | None = None) -> list[bytearray]:
        """Datagrams to send now: resends first, then new requests."""
        self._sampled = False
        if now >= self._next_timer:
            self._run_timers(now)
        elif (
            budget is None
            and not self._outbox
            and not self._retry_due
            and not self._draining
        ):
            # The usual case at speed, kept short: nothing to resend, and
            # the bulk at the head of the queue fills what room there is.
            queue, head = self._queue, self._queue_head
            if head < len(queue):
                span = queue[head]
                if type(span) is BulkSpan:
                    room = self._size - len(self._flight)
                    if 0 < room <= span.stop - span.next:
                        out: list[bytearray] = []
                        self._send_span(span, out, now, room)
                        return out
        left = 1 << 30 if budget is None else budget
        out = []
        if self._outbox:
            left = self._send_outbox(out, now, left)
        flight, size = self._flight, self._size
        if self._retry_due and left > 0 and len(flight) < size:
            left = self._send_retries(out, now, left)
        room = min(size - len(flight), left)
        if self._draining:
            if len(flight) > self._refill_at:
                room = 0
            else:
                self._draining = False
        if room > 0 and self._queue_head < len(self._queue):
            self._send_new(out, now, room)
        return out

    def _send_new(self, out: list[bytearray], now: float, room: int) -> None:
        """Give up to ``room`` queued requests a sequence number and send."""
        queue, flight = self._queue, self._flight
        head, end = self._queue_head, len(queue)
        while room and head < end:
            request = queue[head]
            if type(request) is BulkSpan:
                room = self._send_span(request, out, now, room)
                if request.next < request.stop:
                    break
                head += 1
                continue
            head += 1
            assert isinstance(request, Request)
            if request.done:
                continue
            request.seq = seq = self._free_sequence()
            SEQUENCE.pack_into(request.datagram, SEQUENCE_OFFSET, seq)
            flight[seq] = request
            out.append(self._stamp(request, now))
            self._n_sent += 1
            room -= 1
        if len(flight) >= self._size and self._refill_at < self._size - 1:
            self._draining = True
        if head > 64 and head * 2 > end:  # let finished requests go
            del queue[:head]
            head = 0
        self._queue_head = head

    def _send_span(
        self, span: BulkSpan, out: list[bytearray], now: float, room: int
    ) -> int:
        """Send up to ``room`` pieces of a span, their datagrams made ahead
        or now: the one way a piece is sent. The room left."""
        flight, held, retired = self._flight, self._held, self._retired
        bulk, index = span.bulk, span.next
        stop = min(span.stop, index + room)
        pack_into = SEQUENCE.pack_into
        expires = now + self.rtt.rto
        seq, order = self._next_seq, self._n_sends
        ready, span.ready = span.ready, None
        while index < stop:
            # (_free_sequence(), inlined: this loop is the bulk lane's cost)
            while seq in flight or seq in held or seq in retired:
                seq = (seq + 1) & 0xFFFF
            if ready is None:
                datagram, size = bulk.piece(index)
            else:
                (datagram, size), ready = ready, None
            pack_into(datagram, SEQUENCE_OFFSET, seq)
            order += 1
            flight[seq] = Piece(bulk, index, now, order, expires, size)
            seq = (seq + 1) & 0xFFFF
            out.append(datagram)
            index += 1
        sent = index - span.next
        span.next = index
        self._next_seq, self._n_sends = seq, order
        if expires < self._next_timer:
            self._next_timer = expires
        self._n_sent += sent
        if len(flight) >= self._size and self._refill_at < self._size - 1:
            self._draining = True  # the window is full
        return room - sent

    def _free_sequence(self) -> int:
        """The next sequence number not on the wire, parked or retired; it
        is taken."""
        seq = self._next_seq
        flight, held, retired = self._flight, self._held, self._retired
        while seq in flight or seq in held or seq in retired:
            seq = (seq + 1) & 0xFFFF
        self._next_seq = (seq + 1) & 0xFFFF
        return seq

    def settle(self) -> bool:
        """Do the work that replies left for later: hand bulk pieces'
        replies to their Bulk, take the round trip measured, and make the
        next bulk datagram ahead. Call it after sending what poll() gave
        (take_finished_bulks() calls it too). Returns has_completed."""
        arrived = self._arrived
        if len(arrived) == 1:
            # The usual case: keep the list for the bulk's next replies.
            bulk, replies = arrived[0]
            if replies:
                finished = bulk.accept(replies)
                n = len(replies)
                self._n_open -= n
                self._n_completed += n
                replies.clear()
                if finished:
                    self._finished_bulks.append(bulk)
                    arrived.clear()
                    self._arrived_bulk = None
        elif arrived:
            self._arrived = []
            self._arrived_bulk = None
            self._arrived_to = []
            for bulk, replies in arrived:
                if bulk.accept(replies):
                    self._finished_bulks.append(bulk)
                self._n_open -= len(replies)
                self._n_completed += len(replies)
        if self._rtt_pending >= 0.0:
            self.rtt.sample(self._rtt_pending)
            self._rtt_pending = -1.0
        queue, head = self._queue, self._queue_head
        if head < len(queue):
            span = queue[head]
            if type(span) is BulkSpan and span.ready is None and span.next < span.stop:
                span.ready = span.bulk.piece(span.next)
        return bool(self._completed) or bool(self._finished_bulks)

    def take_finished_bulks(self) -> list[Bulk]:
        """Bulks whose last piece came in through the bulk lane since the
        last call (each once; its pieces that went the general way come
        out of take_completed() instead)."""
        self.settle()
        done = self._finished_bulks
        if done:
            self._finished_bulks = []
        return done

    def take_completed(self) -> list[Request]:
        """Requests that have ended since the last call, in ending order."""
        done = self._completed
        if done:
            self._completed = []
        return done

    def drop_queued(
        self,
        unwanted: Callable[[Request], bool],
        bulk: Bulk | None = None,
        fence: Claim | None = None,
    ) -> int:
        """Forget requests not yet sent that ``unwanted`` picks, and the
        pieces of ``bulk`` not yet sent (also those parked on ``fence``);
        how many."""
        dropped = 0
        parked = fence.waiting if fence is not None else []
        for request in self._queue[self._queue_head :] + parked:
            if type(request) is BulkSpan:
                if request.bulk is bulk:
                    dropped += request.stop - request.next
                    request.next = request.stop
                    request.ready = None
            elif not request.done and unwanted(request):
                request.done = True
                dropped += 1
        self._n_open -= dropped
        return dropped

    def fail_all(self, error: RequestError) -> None:
        """End every open request with ``error`` (the owner is stopping)."""
        self.settle()
        unsent = itertools.chain(
            self._queue[self._queue_head :], *self.fences.waiting()
        )
        for entry in unsent:
            if isinstance(entry, BulkSpan):
                left = entry.stop - entry.next
                entry.next = entry.stop
                entry.ready = None
                self._n_open -= left
                self._counters.failed += left
            elif not entry.done:
                self._finish(entry, None, error)
        for seq, on_wire in list(self._flight.items()):
            self._finish(self._request_at(seq, on_wire), None, error)
        for request in list(self._held.values()):
            self._finish(request, None, error)
        self._queue.clear()
        self._queue_head = 0
        self._flight.clear()
        self._held.clear()
        self._retry_due.clear()
        self._deadlines.clear()
        self._outbox.clear()
        self._next_timer = math.inf

    # -- inside ----------------------------------------------------------------

    def _admit(self, granted: list[Claim]) -> None:
        """Queue what waited for claims now granted, in the order it came."""
        for claim in granted:
            for entry in claim.waiting:
                if type(entry) is BulkSpan:
                    self._queue.append(entry)
                else:
                    at = self._single_slot()
                    self._queue.insert(at, entry)
            claim.waiting = []

    def _retire(
        self, now: float, unwanted: Callable[[Request], bool], bulk: Bulk | None
    ) -> None:
        """Take a failed job's requests off the wire for good: never sent
        again; their sequence numbers kept from reuse until no copy can
        land, so that a late reply is known, counted and dropped."""
        until = now + self.settings.max_datagram_age
        gone = [
            seq
            for seq, entry in self._flight.items()
            if (entry.bulk is bulk if isinstance(entry, Piece) else unwanted(entry))
        ]
        for seq in gone:
            entry = self._flight.pop(seq)
            if type(entry) is Request:
                entry.done = True
        parked = [seq for seq, request in self._held.items() if unwanted(request)]
        for seq in parked:
            self._held.pop(seq).done = True
        for seq in gone + parked:
            self._retired[seq] = until
        n = len(gone) + len(parked)
        self._n_open -= n
        self._counters.retired += n
        if n:
            self._wake_by(until)

    def _wake_by(self, when: float) -> None:
        """Have the next poll's timers run no later than ``when``."""
        if when < self._next_timer:
            self._next_timer = when

    def _malformed(self, request: Request) -> None:
        """A reply to ``request`` that does not parse: a loss. Resent at
        once within the budget; past it, MalformedReply."""
        self._counters.malformed += 1
        if request.expires_at == math.inf:
            return  # already waiting to be resent
        request.note(_MALFORMED)
        if request.may_resend and self._may_retry(request):
            self._resend_soon(request)
        else:
            del self._flight[request.seq]
            self._finish(request, None, self._exhausted(request))

    def _resend(self, request: Request, now: float) -> bytearray:
        """Send again a request that keeps its sequence number."""
        self._counters.resent += 1
        self._n_sent += 1
        return self._stamp(request, now)

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
            request.code_resends += 1
            flight[request.seq] = request
            out.append(self._resend(request, now))
            left -= 1
        return left

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
            oldest.note(_OVERTAKEN)
            self._counters.fast_resent += 1
            self._resend_soon(oldest)

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
            due = now + self.settings.retry_pause
            heapq.heappush(self._retry_due, (due, next(self._tie), request))
            if due < self._next_timer:
                self._next_timer = due
        elif code in self._non_fail:
            self._finish(request, datagram, None)
        else:
            self._finish(request, None, self._exhausted(request))

    def _run_timers(self, now: float) -> None:
        """Deadlines, then expiries; then when the next timer falls."""
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            _, _, request = heapq.heappop(deadlines)
            if not request.done:
                self._flight.pop(request.seq, None)
                self._held.pop(request.seq, None)
                sends = request.sends
                what = (
                    f"after {sends} {'try' if sends == 1 else 'tries'}"
                    if sends
                    else "before it could be sent"
                )
                self._finish(request, None, DeadlineExceeded(f"deadline passed {what}"))
        soonest = math.inf
        backed_off = False
        for seq, entry in list(self._flight.items()):
            expires = entry.expires_at
            if expires > now:
                if expires < soonest:
                    soonest = expires
                continue
            request = self._request_at(seq, entry)
            request.timeouts += 1
            request.note(_TIMEOUT)
            self._counters.timeouts += 1
            if not backed_off:
                self.rtt.back_off()
                backed_off = True
            if request.may_resend and self._may_retry(request):
                self._resend_soon(request)
            else:
                del self._flight[request.seq]
                self._finish(request, None, self._exhausted(request))
        fences = self.fences
        if now >= fences.next_release:
            self._admit(fences.expire(now))
        soonest = min(soonest, fences.next_release)
        retired = self._retired
        if retired:
            for seq, until in list(retired.items()):
                if until <= now:
                    del retired[seq]
                elif until < soonest:
                    soonest = until
        retry_due = self._retry_due
        if retry_due and (retry_due[0][0] > now or len(self._flight) < self._size):
            soonest = min(soonest, retry_due[0][0])
        if deadlines:
            soonest = min(soonest, deadlines[0][0])
        self._next_timer = soonest

    def _request_at(self, seq: int, entry: OnTheWire) -> Request:
        """The Request on the wire as ``seq`` (a bulk piece made one)."""
        if isinstance(entry, Piece):
            return self._promote(seq, entry)
        return entry

    def _exhausted(self, request: Request) -> RequestError:
        tries = request.sends
        reasons = request.reasons or []
        after = f"after {tries} {'try' if tries == 1 else 'tries'}"
        if reasons and reasons[-1] == _MALFORMED:
            return MalformedReply(f"malformed reply {after}")
        if all(reason in _UNANSWERED for reason in reasons):
            if not request.may_resend:
                return RequestTimeout(
                    f"no reply {after} (not resent: running it twice is not safe)"
                )
            return RequestTimeout(f"no reply {after}")
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
