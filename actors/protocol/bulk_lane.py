"""The window's bulk lane: a large read or write with no Request per piece.

A large read or write (a Bulk, with no deadline and safe to resend) is
queued as one span of pieces. Each piece's datagram is made ahead (by
settle(), while the owner waits anyway) and it is tracked on the wire as a
light Piece; a first RC_OK reply of the right length frees its slot at
once and is handed to the Bulk by the next settle(), after the owner has
sent what the slot let out. So between a reply and the next request there
is only bookkeeping: no Request object, no copy. As soon as anything else
happens to a piece (it expires, is overtaken, or gets a code other than
RC_OK) it becomes a Request, in place, with the same sequence number, send
time and order, and the rules of recovery.py take over. One request at a
time, even the poll can wait: receive(..., send_next=True) hands back the
next piece of a reply that empties the window, for the owner to send
before anything else.

BulkLane is a base class of the window (window.py), as Recovery is of it,
so that the lane's loops cost no extra call; it works on the window's
state, declared below for the type checker and set up by Window.__init__.
These loops are measured (bench/cpu.py): a call or a copy added per
datagram shows there.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence

from actors.protocol.fences import Claim
from actors.protocol.recovery import Recovery
from actors.protocol.requests import Bulk, BulkSpan, OnTheWire, Piece, Request
from messages.scp.enums import SCPResult
from messages.scp.layout import (
    RESULT_AND_SEQUENCE,
    RESULT_OFFSET,
    SEQUENCE,
    SEQUENCE_OFFSET,
)

_RC_OK = SCPResult.RC_OK.value


class BulkLane(Recovery):
    """Bulks' pieces queued, sent, answered and handed over; and a piece
    that leaves the happy path made a Request."""

    # The window's state the lane uses besides Recovery's (window.py's
    # table says where a request lives; Window.__init__ sets it up).
    _queue: list[Request | BulkSpan]
    _queue_head: int
    _next_seq: int
    _refill_at: int
    _draining: bool
    _arrived: list[tuple[Bulk, list[tuple[int, bytes]]]]
    _arrived_bulk: Bulk | None
    _arrived_to: list[tuple[int, bytes]]
    _rtt_pending: float
    _sampled: bool
    _finished_bulks: list[Bulk]
    _owed_since: float
    #: Window.receive(): one datagram, whatever it is.
    receive: Callable[[bytes, float], bytearray | None]

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
        parked = bool(held or retired)  # (seldom: a busy code, a failed job)
        while index < stop:
            # (Window._free_sequence(), inlined: this loop is the lane's cost)
            while seq in flight or (parked and (seq in held or seq in retired)):
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

    def receive_all(
        self, datagrams: Sequence[tuple[bytes, object]], board: object, now: float
    ) -> int:
        """receive() each (datagram, sender) from ``board`` (the owner's
        address for it: opaque here); the others are not looked at, and
        how many there were is returned for the owner to count. What was
        waiting after a wake comes here at once: a bulk piece's RC_OK of
        the right length takes the happy path of _piece_answered()
        inlined (this loop is a large read's cost), the rest receive()."""
        flight, unpack = self._flight, RESULT_AND_SEQUENCE.unpack_from
        fast_after = self._fast_after
        others = 0
        for datagram, sender in datagrams:
            if sender != board:
                others += 1
                continue
            try:
                code, seq = unpack(datagram, RESULT_OFFSET)
            except struct.error:
                self.receive(datagram, now)  # (counted as malformed there)
                continue
            piece = flight.get(seq)
            if (
                type(piece) is not Piece
                or code != _RC_OK
                or (piece.reply_size and len(datagram) != piece.reply_size)
            ):
                self.receive(datagram, now)
                continue
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
            if fast_after:
                for oldest in flight.values():
                    if oldest.order < piece.order:
                        self._check_oldest(piece.order)
                    break
        if others < len(datagrams):  # (whatever is on the wire owed from now)
            self._counters.last_heard = self._owed_since = now
        return others

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

    # -- a piece that leaves the happy path ------------------------------------

    def _check_oldest(self, order: int) -> None:
        """A reply to the request sent ``order``-th came: it overtook the
        oldest one on the wire if that was sent before it."""
        for seq, oldest in self._flight.items():
            if oldest.order < order:
                self._overtaken(self._request_at(seq, oldest))
            return

    def _request_at(self, seq: int, entry: OnTheWire) -> Request:
        """The Request on the wire as ``seq`` (a bulk piece made one)."""
        if isinstance(entry, Piece):
            return self._promote(seq, entry)
        return entry

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
