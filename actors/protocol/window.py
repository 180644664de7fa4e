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

A large read or write (a Bulk) goes by the bulk lane (bulk_lane.py): its
pieces need no Request each until one leaves the happy path. What happens
to a request that leaves it is recovery.py's. Both are base classes of
Window, so the loops below reach them without an extra call: they are
measured (bench/cpu.py), and a call added per datagram shows there.

Where a request is, by state (one with a deadline is also in the
``_deadlines`` heap, whatever its state):

=============================  ============================================
state                          where it lives
=============================  ============================================
waiting for its write fence    ``Claim.waiting`` (fences.py), a Request or a
                               BulkSpan, until the claim is granted
queued, not sent               ``_queue[_queue_head:]``: a Request, or a
                               BulkSpan (a Bulk's pieces next..stop-1)
on the wire                    ``_flight[seq]``: a Request, or a Piece of a
                               Bulk, in the order last sent
on the wire, to resend now     ``_flight[seq]`` (expires_at = inf) and
                               ``_outbox``, sent by the next poll
parked after a busy code       ``_held[seq]``, due in the ``_retry_due`` heap
answered (a Piece's RC_OK)     ``_arrived``, until settle() gives it to its
                               Bulk
ended                          ``_completed`` (Requests, take_completed());
                               ``_finished_bulks`` (take_finished_bulks())
retired (its job failed)       its sequence number only: ``_retired[seq]``,
                               until no copy can land
=============================  ============================================
"""

from __future__ import annotations

import heapq
import itertools
import math
import struct
from collections.abc import Callable, Hashable, Sequence

from actors.errors import (
    DeadlineExceeded,
    RequestError,
)
from actors.protocol.bulk_lane import BulkLane
from actors.protocol.fences import Claim, Hold, WriteFences
from actors.protocol.recovery import TIMEOUT, WindowCounters
from actors.protocol.requests import Bulk, BulkSpan, OnTheWire, Piece, Request
from actors.protocol.rtt import RttEstimator
from actors.protocol.settings import WindowSettings
from messages.scp.enums import RETRY_CODES, SCPResult
from messages.scp.layout import (
    RESULT_AND_SEQUENCE,
    RESULT_OFFSET,
    SEQUENCE,
    SEQUENCE_OFFSET,
)

_RC_OK = SCPResult.RC_OK.value


class Window(BulkLane):
    """Sequence numbers, expiries, retries and counters of one connection.

    add_bulk(), settle() and take_finished_bulks() are its bulk lane's
    (bulk_lane.py)."""

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
        self._retry_pause = settings.retry_pause
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
        #: When the board began to owe a reply (see silent_for).
        self._owed_since = -math.inf
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

    @property
    def recoveries(self) -> int:
        """Resends and expiries so far: when it changes, the window has
        left the happy path (see coalesce.py)."""
        counters = self._counters
        return counters.resent + counters.timeouts

    def silent_for(self, now: float) -> float | None:
        """How long the board has owed a reply it has not given: since the
        first request sent after its last datagram, or since that datagram
        if requests were still on the wire then. None while it owes none:
        nothing was sent since it last answered, or all of it was
        answered. Requests that ended unanswered (timed out, cancelled)
        leave it owing until a datagram comes, so a caller's next request
        after a timeout carries the silence on instead of starting anew."""
        if self._flight or self._owed_since > self._counters.last_heard:
            return max(0.0, now - self._owed_since)
        return None

    def timer_due(self, now: float) -> bool:
        """Whether poll(now) runs timers: an owner stalled past them takes
        the replies waiting first, or their requests expire and go again."""
        return now >= self._next_timer

    def next_wakeup(self) -> float | None:
        """When poll() next has something to do without a reply arriving."""
        if self._outbox:
            return -math.inf
        if self._next_timer == math.inf:
            return None
        return self._next_timer

    def exact_wakeup(self) -> float | None:
        """next_wakeup(), made exact: it may be early (the next timer moves
        on only when timers run), which an owner that would sleep until
        it asks to know."""
        if self._outbox:
            return -math.inf
        soonest = self.fences.next_release
        for entry in self._flight.values():
            if entry.expires_at < soonest:
                soonest = entry.expires_at
        if self._retired:
            soonest = min(soonest, *self._retired.values())
        if self._retry_due:
            soonest = min(soonest, self._retry_due[0][0])
        if self._deadlines:
            soonest = min(soonest, self._deadlines[0][0])
        self._next_timer = soonest
        return None if soonest == math.inf else soonest

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
        # Whatever is still on the wire is owed from now.
        self._counters.last_heard = self._owed_since = now
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

    def poll(self, now: float, budget: int | None = None) -> list[bytearray]:
        """Datagrams to send now: resends first, then new requests."""
        self._sampled = False
        # Owing nothing before this poll, whatever it sends is owed from now.
        settled = not self._flight and self._owed_since <= self._counters.last_heard
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
                        if settled:
                            self._owed_since = now
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
        if settled and out:
            self._owed_since = now
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

    def _free_sequence(self) -> int:
        """The next sequence number not on the wire, parked or retired; it
        is taken."""
        seq = self._next_seq
        flight, held, retired = self._flight, self._held, self._retired
        while seq in flight or seq in held or seq in retired:
            seq = (seq + 1) & 0xFFFF
        self._next_seq = (seq + 1) & 0xFFFF
        return seq

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
            request.note(TIMEOUT)
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
