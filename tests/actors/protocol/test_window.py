"""The sans-IO pipeline window, played out exactly on explicit ``now`` floats.

No sockets, threads or sleeps: the test is the board. Requests are read
datagrams from ChunkBuilder; replies are built by hand (padding, SDP header,
result code, the request's sequence number, and the data a read returns) so
that every loss, duplicate, reordering, late answer and busy code happens
exactly when the test says.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import struct
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.errors import (
    DeadlineExceeded,
    MalformedReply,
    RequestTimeout,
    RetriesExhausted,
    ShutDown,
)
from actors.protocol.requests import Request
from actors.protocol.settings import WindowSettings
from actors.protocol.window import Window
from messages.errors import InvalidArgumentError, MalformedDatagramError
from messages.scp.bulk import ChunkBuilder
from messages.scp.enums import RETRY_CODES, SCPResult

BUILDER = ChunkBuilder(0, 0, 1)
OK = SCPResult.RC_OK
BUSY = SCPResult.RC_P2P_BUSY
BASE = 0x6000_0000
#: Codes a board answers with that mean "your request is wrong", not "busy".
ERROR_CODES = sorted(
    (code for code in SCPResult if code is not OK and code not in RETRY_CODES),
    key=lambda code: code.value,
)
#: Codes that mean "busy, try again".
BUSY_CODES = [code for code in SCPResult if code in RETRY_CODES]
_TIMEOUT_REASON = "timeout"
_OVERTAKEN_REASON = "overtaken"


# -- the test's side of the wire --------------------------------------------


def seq_of(datagram: bytes | bytearray) -> int:
    return int(struct.unpack_from("<H", datagram, 12)[0])


def span_of(datagram: bytes | bytearray) -> tuple[int, int]:
    """The address and size a read datagram asks for."""
    address, size = struct.unpack_from("<2I", datagram, 14)
    return address, size


def payload_for(address: int, size: int) -> bytes:
    """What the simulated board's memory holds at ``address``."""
    return bytes((a * 7 + (a >> 8)) & 0xFF for a in range(address, address + size))


def reply(
    datagram: bytes | bytearray, code: SCPResult = OK, payload: bytes | None = None
) -> bytes:
    """The board's answer to ``datagram``: padding, SDP header, result code,
    the request's sequence, then (for RC_OK) the data the read asked for."""
    if payload is None:
        payload = payload_for(*span_of(datagram)) if code is OK else b""
    return (
        bytes(2) + bytes(8) + struct.pack("<2H", code.value, seq_of(datagram)) + payload
    )


def read(key: int, size: int = 4, **options: object) -> Request:
    """A read request of ``size`` bytes at an address that depends on key."""
    address = BASE + 0x100 * key
    return Request(key, BUILDER.read(address, size), reply_size=14 + size, **options)  # type: ignore[arg-type]


def expected_reply(request: Request) -> bytes:
    """The RC_OK reply ``request`` must end with."""
    return reply(request.datagram)


class Link:
    """The wire between window and board, under the test's control.

    ``pump`` polls the window and puts copies of what it sends on the wire
    (the window patches sequence numbers into the request's own buffer, so
    the wire keeps bytes). The test then answers, drops, duplicates,
    reorders or delays them as it likes.
    """

    def __init__(self, window: Window) -> None:
        self.window = window
        self.wire: list[bytes] = []
        self.log: list[bytes] = []
        self.max_in_flight = 0

    def pump(self, now: float, budget: int | None = None) -> list[bytes]:
        out = [bytes(datagram) for datagram in self.window.poll(now, budget)]
        self.wire += out
        self.log += out
        self.max_in_flight = max(self.max_in_flight, self.window.in_flight)
        return out

    def take(self, seq: int) -> bytes:
        """The oldest copy on the wire of the request with ``seq``."""
        for index, datagram in enumerate(self.wire):
            if seq_of(datagram) == seq:
                return self.wire.pop(index)
        raise AssertionError(f"seq {seq} is not on the wire")

    def drop(self, seq: int) -> None:
        self.take(seq)

    def answer(
        self, seq: int, now: float, code: SCPResult = OK, copies: int = 1
    ) -> None:
        """The board answers one copy; the link may duplicate the reply."""
        answer = reply(self.take(seq), code)
        for _ in range(copies):
            self.window.receive(answer, now)

    def answer_all(
        self,
        now: float,
        order: Callable[[list[bytes]], Iterable[bytes]] = lambda wire: wire,
    ) -> None:
        wire, self.wire = self.wire, []
        for datagram in order(wire):
            self.window.receive(reply(datagram), now)


def window(**options: object) -> tuple[Window, Link]:
    w = Window(WindowSettings(**options))  # type: ignore[arg-type]
    return w, Link(w)


def completed_keys_of(requests: Iterable[Request]) -> list[Any]:
    return [request.key for request in requests]


def completed_keys(w: Window) -> list[Any]:
    return [request.key for request in w.take_completed()]


# -- settings ------------------------------------------------------------------


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"size": 0}, "size"),
        ({"size": 65536}, "size"),
        ({"size": 8.0}, "size"),
        ({"size": 4, "refill_at": 4}, "refill_at"),
        ({"refill_at": -1}, "refill_at"),
        ({"retries": -1}, "retries"),
        ({"retries": True}, "retries"),
        ({"rto_floor": 0.0}, "rto_floor"),
        ({"rto_floor": 2.0, "rto_ceiling": 1.0}, "rto_floor"),
        ({"rto_ceiling": math.nan}, "rto_ceiling"),
        ({"initial_rto": 0.0}, "initial_rto"),
        ({"initial_rto": "1"}, "initial_rto"),
        ({"retry_pause": -0.1}, "retry_pause"),
        ({"fast_resend_after": -1}, "fast_resend_after"),
        ({"max_datagram_age": 601}, "max_datagram_age"),
    ],
)
def test_bad_settings_are_refused(options: dict[str, object], named: str) -> None:
    """Each setting is refused with the project's argument error, named."""
    with pytest.raises(InvalidArgumentError) as caught:
        WindowSettings(**options)  # type: ignore[arg-type]
    assert caught.value.name == named
    assert caught.value.value is options[named]


@pytest.mark.timeout(10)
def test_settings_from_a_timeout_keep_the_floor_below_it() -> None:
    """A timeout is the first wait and the longest; the floor never above it."""
    settings = WindowSettings.from_timeout(0.002, size=4)
    assert (settings.initial_rto, settings.rto_ceiling) == (0.002, 0.002)
    assert (settings.rto_floor, settings.size) == (0.002, 4)
    assert WindowSettings.from_timeout(2.0, rto_floor=0.1).rto_floor == 0.1
    for timeout in (0, -1.0, "1", None):
        with pytest.raises(InvalidArgumentError) as caught:
            WindowSettings.from_timeout(timeout)  # type: ignore[arg-type]
        assert caught.value.name == "initial_rto"
    with pytest.raises(InvalidArgumentError) as caught:
        WindowSettings.from_timeout(1.0, rto_floor="fast")  # type: ignore[arg-type]
    assert caught.value.name == "rto_floor"


@pytest.mark.timeout(10)
def test_initial_rto_is_clamped_to_the_ceiling() -> None:
    w = Window(WindowSettings(initial_rto=5.0, rto_ceiling=2.0))
    assert w.rtt.rto == 2.0


# -- pacing: the window's size and its refill threshold -------------------------


@pytest.mark.timeout(10)
def test_never_more_than_size_in_flight() -> None:
    w, link = window(size=4, fast_resend_after=0)
    for key in range(10):
        w.add(read(key), 0.0)
    assert len(link.pump(0.0)) == 4
    assert link.pump(0.0) == []
    assert (w.in_flight, w.queued, w.open_requests) == (4, 6, 10)
    link.answer(seq_of(link.wire[1]), 0.001)
    assert len(link.pump(0.001)) == 1
    assert w.in_flight == 4
    # Answer in a shuffled order until all are done: never more than 4.
    rng = random.Random(7)
    now = 0.001
    while w.open_requests:
        now += 0.001
        rng.shuffle(link.wire)
        for datagram in link.wire[: rng.randint(1, len(link.wire))]:
            link.answer(seq_of(datagram), now)
        link.pump(now)
        assert w.in_flight <= 4
    assert link.max_in_flight == 4
    assert sorted(completed_keys(w)) == list(range(10))
    assert w.counters.sent == 10 and w.counters.resent == 0


@pytest.mark.timeout(10)
def test_sliding_window_sends_one_for_each_answer() -> None:
    w, link = window(size=4)
    for key in range(12):
        w.add(read(key), 0.0)
    first = link.pump(0.0)
    for count, datagram in enumerate(first, start=1):
        link.answer(seq_of(datagram), 0.01)
        sent = link.pump(0.01)
        assert len(sent) == 1, f"after answer {count}"
        assert w.in_flight == 4


@pytest.mark.timeout(10)
def test_refill_at_zero_drains_the_window_before_sending_more() -> None:
    w, link = window(size=4, refill_at=0)
    for key in range(8):
        w.add(read(key), 0.0)
    first = link.pump(0.0)
    assert len(first) == 4
    for datagram in first[:3]:
        link.answer(seq_of(datagram), 0.01)
        assert link.pump(0.01) == []
    assert w.in_flight == 1
    link.answer(seq_of(first[3]), 0.02)
    second = link.pump(0.02)
    assert len(second) == 4
    assert [w.in_flight, w.queued] == [4, 0]
    assert sorted(completed_keys(w)) == [0, 1, 2, 3]


@pytest.mark.timeout(10)
def test_refill_at_between_is_a_hysteresis() -> None:
    w, link = window(size=4, refill_at=2)
    for key in range(10):
        w.add(read(key), 0.0)
    first = link.pump(0.0)
    link.answer(seq_of(first[0]), 0.01)
    assert link.pump(0.01) == []  # 3 outstanding > 2
    link.answer(seq_of(first[1]), 0.01)
    assert len(link.pump(0.01)) == 2  # 2 outstanding: fill up again
    assert w.in_flight == 4


@pytest.mark.timeout(10)
def test_budget_limits_what_one_poll_sends() -> None:
    w, link = window(size=8)
    for key in range(5):
        w.add(read(key), 0.0)
    assert len(link.pump(0.0, budget=2)) == 2
    assert len(link.pump(0.0, budget=0)) == 0
    assert len(link.pump(0.0)) == 3
    assert [seq_of(d) for d in link.log] == [0, 1, 2, 3, 4]


# -- loss and the retransmission timeout ------------------------------------------


@pytest.mark.timeout(10)
def test_loss_is_resent_after_the_rto_and_not_before() -> None:
    w, link = window(initial_rto=0.5, rto_ceiling=4.0)
    request = read(0)
    w.add(request, 0.0)
    (datagram,) = link.pump(0.0)
    assert w.next_wakeup() == 0.5
    link.drop(seq_of(datagram))
    assert link.pump(0.25) == []
    assert link.pump(0.4999) == []
    assert (w.counters.timeouts, w.counters.resent) == (0, 0)
    (again,) = link.pump(0.5)
    assert again == datagram  # same bytes, same sequence
    assert (w.counters.sent, w.counters.resent, w.counters.timeouts) == (2, 1, 1)
    assert (request.sends, request.resends, request.timeouts) == (2, 1, 1)
    assert request.reasons == [_TIMEOUT_REASON]
    # Backed off: the resend waits twice the RTO.
    assert w.rtt.rto == 1.0
    assert w.next_wakeup() == 1.5
    link.answer(seq_of(again), 0.6)
    assert w.take_completed() == [request]
    assert request.reply == expected_reply(request)
    assert request.error is None
    assert w.counters.completed == 1 and w.open_requests == 0


@pytest.mark.timeout(10)
def test_timer_due_says_when_a_poll_would_expire_requests() -> None:
    # The owner asks before it polls: a reply that came while it was
    # stalled, taken first, saves its request from expiring.
    w, link = window(initial_rto=0.5, rto_ceiling=4.0)
    w.add(read(0), 0.0)
    (datagram,) = link.pump(0.0)
    assert not w.timer_due(0.4999)
    assert w.timer_due(0.5)
    link.answer(seq_of(datagram), 0.6)
    assert link.pump(0.6) == []  # its timer ran: nothing was due after all
    assert (w.counters.timeouts, w.counters.resent) == (0, 0)
    assert not w.timer_due(1e9)  # nothing on the wire, no timer


@pytest.mark.timeout(10)
def test_one_loss_resends_only_that_request() -> None:
    w, link = window(size=4, initial_rto=0.5, rto_ceiling=4.0)
    for key in range(4):
        w.add(read(key), 0.0)
    sent = link.pump(0.0)
    link.drop(seq_of(sent[2]))
    link.answer_all(0.01)
    assert sorted(completed_keys(w)) == [0, 1, 3]
    (again,) = link.pump(0.5)
    assert again == sent[2]
    assert w.counters.resent == 1


@pytest.mark.timeout(10)
def test_fast_resend_after_later_replies_overtake_the_oldest() -> None:
    w, link = window(size=8, initial_rto=1.0, fast_resend_after=3)
    requests = [read(key) for key in range(5)]
    for request in requests:
        w.add(request, 0.0)
    sent = link.pump(0.0)
    link.drop(seq_of(sent[0]))
    link.answer(seq_of(sent[1]), 0.01)
    link.answer(seq_of(sent[2]), 0.01)
    assert link.pump(0.01) == []
    assert w.next_wakeup() == 1.0
    link.answer(seq_of(sent[3]), 0.02)
    assert w.next_wakeup() == -math.inf  # something to send right now
    (again,) = link.pump(0.02)  # long before the RTO
    assert again == sent[0]
    assert (w.counters.fast_resent, w.counters.resent, w.counters.timeouts) == (1, 1, 0)
    assert requests[0].reasons == [_OVERTAKEN_REASON]
    assert requests[0].timeouts == 0
    # The resent request now counts as the newest: more replies to older
    # requests do not overtake it again.
    link.answer(seq_of(sent[4]), 0.03)
    assert link.pump(0.03) == []
    link.answer(seq_of(again), 0.04)
    assert w.open_requests == 0
    assert w.counters.fast_resent == 1


@pytest.mark.timeout(10)
def test_fast_resend_after_zero_turns_it_off() -> None:
    w, link = window(size=8, initial_rto=1.0, fast_resend_after=0)
    for key in range(8):
        w.add(read(key), 0.0)
    sent = link.pump(0.0)
    link.drop(seq_of(sent[0]))
    link.answer_all(0.01)
    assert link.pump(0.5) == []
    assert w.counters.fast_resent == 0
    (again,) = link.pump(1.0)  # only the RTO resends it
    assert again == sent[0]
    assert w.counters.timeouts == 1


@pytest.mark.timeout(10)
def test_fast_resend_never_resends_what_may_not_run_twice() -> None:
    w, link = window(size=8, initial_rto=1.0, fast_resend_after=1)
    w.add(read(0, may_resend=False), 0.0)
    for key in range(1, 4):
        w.add(read(key), 0.0)
    sent = link.pump(0.0)
    link.drop(seq_of(sent[0]))
    link.answer_all(0.01)
    assert link.pump(0.02) == []
    assert w.counters.fast_resent == 0


# -- duplicates, reordering, late answers --------------------------------------------


@pytest.mark.timeout(10)
def test_duplicated_replies_are_counted_and_ignored() -> None:
    w, link = window(size=8)
    requests = [read(key) for key in range(6)]
    for request in requests:
        w.add(request, 0.0)
    for datagram in link.pump(0.0):
        link.answer(seq_of(datagram), 0.01, copies=3)
    done = w.take_completed()
    assert done == requests  # each exactly once, in order
    assert all(r.reply == expected_reply(r) for r in requests)
    assert w.counters.duplicates == 12
    assert w.counters.completed == 6
    # A duplicate arriving much later changes nothing either.
    w.receive(reply(link.log[0]), 5.0)
    assert w.take_completed() == []
    assert w.counters.duplicates == 13 and w.counters.completed == 6


@pytest.mark.timeout(10)
def test_reordered_replies_each_complete_their_own_request() -> None:
    w, link = window(size=8)
    requests = [read(key, size=1 + 3 * key) for key in range(8)]
    for request in requests:
        w.add(request, 0.0)
    link.pump(0.0)
    link.answer_all(0.01, order=lambda wire: reversed(wire))
    assert w.take_completed() == requests[::-1]
    for request in requests:
        assert request.reply == expected_reply(request)
    assert w.counters.duplicates == 0


@pytest.mark.timeout(10)
def test_a_request_sent_once_gives_an_rtt_sample() -> None:
    w, link = window()
    w.add(read(0), 0.0)
    link.pump(1.0)
    link.answer(seq_of(link.wire[0]), 1.25)
    stats = w.rtt.stats()
    assert stats.count == 1
    assert stats.minimum == pytest.approx(0.25)


@pytest.mark.timeout(10)
def test_late_reply_to_the_first_copy_completes_once_without_rtt_sample() -> None:
    w, link = window(initial_rto=0.2, rto_ceiling=1.0)
    request = read(0)
    w.add(request, 0.0)
    (first,) = link.pump(0.0)
    (second,) = link.pump(0.2)  # the first copy is only slow
    assert first == second
    link.answer(seq_of(first), 0.25)  # answers the first copy
    assert w.take_completed() == [request]
    assert request.reply == expected_reply(request)
    assert request.sends == 2
    assert w.rtt.stats().count == 0  # Karn: it may answer either copy
    assert w.rtt.rto == 0.4  # still backed off
    link.answer(seq_of(second), 0.3)  # the second copy's answer
    assert w.take_completed() == []
    assert w.counters.duplicates == 1
    assert (w.counters.completed, w.counters.failed) == (1, 0)


@pytest.mark.timeout(10)
def test_no_rtt_sample_from_a_fast_resent_or_busy_retried_request() -> None:
    w, link = window(size=4, fast_resend_after=1, retry_pause=0.01)
    a, b, c = read(0), read(1), read(2)
    for request in (a, b, c):
        w.add(request, 0.0)
    sent = link.pump(0.0)
    link.answer(seq_of(sent[1]), 0.01)  # overtakes a
    assert w.rtt.stats().count == 1
    link.pump(0.01)  # a again
    link.answer(seq_of(sent[2]), 0.02, code=BUSY)
    link.pump(0.03)  # c again
    link.answer_all(0.04)
    assert w.open_requests == 0
    assert a.sends == 2 and c.sends == 2
    assert w.rtt.stats().count == 1  # only b's


# -- the adaptive timeout -------------------------------------------------------------


def _answer_after(w: Window, link: Link, key: int, now: float, rtt: float) -> None:
    w.add(read(key), now)
    (datagram,) = link.pump(now)
    link.answer(seq_of(datagram), now + rtt)
    assert w.take_completed()[0].key == key


@pytest.mark.timeout(10)
def test_rto_adapts_towards_measured_round_trips() -> None:
    w, link = window(size=1, initial_rto=1.0, rto_floor=0.01, rto_ceiling=2.0)
    now = 0.0
    for key in range(60):
        _answer_after(w, link, key, now, 0.1)
        now += 1.0
    assert 0.0999 <= w.rtt.rto < 0.11
    assert w.rtt.srtt == pytest.approx(0.1)
    # The next request expires after the adapted RTO, not the initial one.
    w.add(read(100), now)
    link.pump(now)
    assert w.next_wakeup() == pytest.approx(now + w.rtt.rto)


@pytest.mark.timeout(10)
def test_rto_never_below_the_floor() -> None:
    w, link = window(size=1, initial_rto=1.0, rto_floor=0.02, rto_ceiling=2.0)
    now = 0.0
    for key in range(60):
        _answer_after(w, link, key, now, 0.0005)
        now += 1.0
        assert w.rtt.rto >= 0.02
    assert w.rtt.rto == 0.02
    w.add(read(100), now)
    link.pump(now)
    assert w.next_wakeup() == pytest.approx(now + 0.02)


@pytest.mark.timeout(10)
def test_rto_never_above_the_ceiling() -> None:
    w, link = window(size=1, initial_rto=0.1, rto_floor=0.01, rto_ceiling=0.5)
    _answer_after(w, link, 0, 0.0, 3.0)  # one very slow answer
    assert w.rtt.rto == 0.5


@pytest.mark.timeout(10)
def test_rto_doubles_on_each_timeout_up_to_the_ceiling() -> None:
    w, link = window(initial_rto=0.1, rto_floor=0.01, rto_ceiling=1.0, retries=10)
    w.add(read(0), 0.0)
    link.pump(0.0)
    now, expected = 0.0, 0.1
    seen = []
    for _ in range(6):
        wake = w.next_wakeup()
        assert wake is not None
        now = wake
        assert link.pump(now) != []
        expected = min(expected * 2, 1.0)
        seen.append(w.rtt.rto)
        assert w.rtt.rto == pytest.approx(expected)
    assert seen == pytest.approx([0.2, 0.4, 0.8, 1.0, 1.0, 1.0])
    # Expiry times followed the doubled RTO.
    assert now == pytest.approx(0.1 + 0.2 + 0.4 + 0.8 + 1.0 + 1.0)


@pytest.mark.timeout(10)
def test_several_expiries_at_once_back_off_once() -> None:
    w, link = window(size=4, initial_rto=0.1, rto_ceiling=10.0)
    for key in range(4):
        w.add(read(key), 0.0)
    link.pump(0.0)
    assert len(link.pump(0.1)) == 4
    assert w.counters.timeouts == 4
    assert w.rtt.rto == pytest.approx(0.2)


# -- sequence numbers --------------------------------------------------------------------


@pytest.mark.timeout(10)
def test_sequence_numbers_start_where_asked_and_wrap() -> None:
    w = Window(WindowSettings(size=8), first_sequence=65533)
    link = Link(w)
    for key in range(6):
        w.add(read(key), 0.0)
    assert [seq_of(d) for d in link.pump(0.0)] == [65533, 65534, 65535, 0, 1, 2]


@pytest.mark.timeout(10)
def test_sequence_numbers_wrap_and_never_reuse_an_outstanding_one() -> None:
    """70,000 requests go through a window of 4 while one request stays on
    the wire (never answered, never expiring) and one stays parked after a
    busy code, across more than one wrap of the 16-bit sequence."""
    w, link = window(size=4, initial_rto=1.0, retry_pause=1e9, fast_resend_after=0)
    lost, parked = read(0), read(1)
    w.add(lost, 0.0)
    w.add(parked, 0.0)
    (lost_dg, parked_dg) = link.pump(0.0)
    link.answer(seq_of(parked_dg), 0.0, code=BUSY)
    assert w.in_flight == 1 and w.open_requests == 2
    held = {seq_of(lost_dg), seq_of(parked_dg)}
    assert held == {0, 1}
    n = 70_000
    seen: set[int] = set()
    builder_read = BUILDER.read
    key = 2
    completed = 0
    while key < n + 2 or w.queued or w.in_flight > 1:
        while key < n + 2 and w.queued < 8:
            w.add(Request(key, builder_read(BASE, 4), reply_size=18), 0.0)
            key += 1
        out = w.poll(0.0)
        for datagram in out:
            seq = struct.unpack_from("<H", datagram, 12)[0]
            assert seq not in held, f"seq {seq} reused while outstanding"
            seen.add(seq)
            w.receive(reply(datagram), 0.0)
        completed += len(w.take_completed())
    assert completed == n
    assert len(seen) == 65536 - 2  # every other seq was used
    assert lost.seq == 0 and parked.seq == 1
    assert w.open_requests == 2 and w.counters.resent == 0
    # Both still end normally afterwards.
    w.receive(reply(lost_dg), 0.0)
    w.receive(reply(parked_dg), 0.0)
    assert {r.key for r in w.take_completed()} == {0, 1}
    assert lost.reply == expected_reply(lost)
    assert parked.reply == expected_reply(parked)
    assert w.open_requests == 0


# -- busy codes -------------------------------------------------------------------------


@pytest.mark.timeout(10)
@pytest.mark.parametrize("code", BUSY_CODES, ids=lambda c: str(getattr(c, "name", c)))
def test_busy_code_parks_the_request_while_others_flow(code: SCPResult) -> None:
    w, link = window(size=2, retry_pause=0.25, initial_rto=4.0, rto_ceiling=4.0)
    requests = [read(key) for key in range(4)]
    for request in requests:
        w.add(request, 0.0)
    a_dg, b_dg = link.pump(0.0)
    link.answer(seq_of(a_dg), 0.125, code=code)
    assert w.take_completed() == []
    assert w.in_flight == 1  # a is parked, not on the wire
    assert w.next_wakeup() == 0.375
    (c_dg,) = link.pump(0.125)  # c goes out meanwhile
    assert seq_of(c_dg) not in (seq_of(a_dg), seq_of(b_dg))
    link.answer(seq_of(b_dg), 0.1875)
    link.answer(seq_of(c_dg), 0.1875)
    (d_dg,) = link.pump(0.1875)
    link.answer(seq_of(d_dg), 0.25)
    assert link.pump(0.374) == []
    assert completed_keys(w) == [1, 2, 3]
    (again,) = link.pump(0.375)
    assert again == a_dg  # same sequence number
    a = requests[0]
    assert a.retry_code_resent == 1 and a.sends == 2 and a.timeouts == 0
    assert a.reasons == [code.name]
    assert (w.counters.retry_code_resent, w.counters.resent, w.counters.timeouts) == (
        1,
        1,
        0,
    )
    link.answer(seq_of(again), 0.5)
    assert w.take_completed() == [a]
    assert a.reply == expected_reply(a) and a.error is None


@pytest.mark.timeout(10)
def test_a_parked_retry_waits_for_room_in_the_window() -> None:
    w, link = window(size=1, retry_pause=0.01, initial_rto=1.0)
    a, b = read(0), read(1)
    w.add(a, 0.0)
    w.add(b, 0.0)
    (a_dg,) = link.pump(0.0)
    link.answer(seq_of(a_dg), 0.0, code=BUSY)
    (b_dg,) = link.pump(0.0)
    assert link.pump(0.02) == []  # due, but the window is full
    link.answer(seq_of(b_dg), 0.03)
    assert link.pump(0.03) == [bytes(a_dg)]
    link.answer(seq_of(a_dg), 0.04)
    assert completed_keys(w) == [1, 0]


@pytest.mark.timeout(10)
def test_late_ok_to_an_earlier_copy_completes_a_parked_request() -> None:
    w, link = window(initial_rto=0.1, rto_ceiling=1.0, retry_pause=0.5)
    request = read(0)
    w.add(request, 0.0)
    (first,) = link.pump(0.0)
    link.pump(0.1)  # resent after a timeout
    link.answer(seq_of(first), 0.15, code=BUSY)  # the second copy: busy
    assert w.open_requests == 1
    link.answer(seq_of(first), 0.2)  # the first copy: done
    assert w.take_completed() == [request]
    assert request.reply == expected_reply(request)
    assert link.pump(0.6) == []  # no retry after all
    assert w.counters.retry_code_resent == 0


@pytest.mark.timeout(10)
def test_retries_exhausted_by_timeouts_is_a_request_timeout() -> None:
    w, link = window(retries=2, initial_rto=0.125, rto_floor=0.125, rto_ceiling=0.125)
    request = read(0)
    w.add(request, 0.0)
    assert len(link.pump(0.0)) == 1
    assert len(link.pump(0.125)) == 1
    assert len(link.pump(0.25)) == 1
    assert link.pump(0.374) == [] and not request.done
    assert link.pump(0.375) == []
    assert w.take_completed() == [request]
    assert isinstance(request.error, RequestTimeout)
    assert isinstance(request.error, TimeoutError)
    assert "3 tries" in str(request.error)
    assert request.reply is None
    assert (request.sends, request.timeouts) == (3, 3)
    assert (
        w.counters.sent,
        w.counters.resent,
        w.counters.timeouts,
        w.counters.failed,
        w.counters.completed,
    ) == (3, 2, 3, 1, 0)
    assert w.open_requests == 0 and w.in_flight == 0


@pytest.mark.timeout(10)
def test_retries_zero_means_one_try() -> None:
    w, link = window(retries=0, initial_rto=0.1)
    request = read(0)
    w.add(request, 0.0)
    link.pump(0.0)
    assert link.pump(0.1) == []
    assert isinstance(request.error, RequestTimeout)
    assert "1 tries" in str(request.error) or "1 try" in str(request.error)


@pytest.mark.timeout(10)
def test_retries_exhausted_by_busy_codes() -> None:
    w, link = window(retries=2, retry_pause=0.01)
    request = read(0)
    w.add(request, 0.0)
    now = 0.0
    for _ in range(3):
        (datagram,) = link.pump(now)
        link.answer(seq_of(datagram), now, code=BUSY)
        now += 0.01
    assert w.take_completed() == [request]
    assert type(request.error) is RetriesExhausted
    assert "3 tries" in str(request.error)
    assert "RC_P2P_BUSY" in str(request.error)
    assert request.reply is None
    assert (request.sends, request.retry_code_resent) == (3, 2)
    assert (w.counters.failed, w.counters.retry_code_resent) == (1, 2)
    assert link.pump(1.0) == []


@pytest.mark.timeout(10)
def test_non_fail_retry_codes_hand_over_the_last_busy_reply() -> None:
    w, link = window(
        retries=1, retry_pause=0.01, non_fail_retry_codes=frozenset({BUSY})
    )
    request = read(0)
    w.add(request, 0.0)
    (datagram,) = link.pump(0.0)
    w.receive(reply(datagram, BUSY), 0.0)
    link.pump(0.01)
    last = reply(datagram, BUSY)
    w.receive(last, 0.01)
    assert w.take_completed() == [request]
    assert request.error is None
    assert request.reply == last
    assert w.counters.completed == 1 and w.counters.failed == 0


@pytest.mark.timeout(10)
def test_non_fail_retry_codes_do_not_cover_other_busy_codes() -> None:
    w, link = window(retries=0, non_fail_retry_codes=frozenset({BUSY}))
    request = read(0)
    w.add(request, 0.0)
    (datagram,) = link.pump(0.0)
    w.receive(reply(datagram, SCPResult.RC_TIMEOUT), 0.0)
    assert isinstance(request.error, RetriesExhausted)


# -- requests that must not run twice ------------------------------------------


@pytest.mark.timeout(10)
def test_may_resend_false_is_never_resent_after_a_timeout() -> None:
    w, link = window(retries=10, initial_rto=0.1)
    request = read(0, may_resend=False)
    w.add(request, 0.0)
    link.pump(0.0)
    assert link.pump(0.1) == []
    assert w.take_completed() == [request]
    assert isinstance(request.error, RequestTimeout)
    assert "1 try" in str(request.error)
    assert (request.sends, request.timeouts) == (1, 1)
    assert (w.counters.resent, w.counters.timeouts) == (0, 1)


@pytest.mark.timeout(10)
def test_may_resend_false_is_still_retried_after_a_busy_code() -> None:
    w, link = window(retries=10, retry_pause=0.01)
    request = read(0, may_resend=False)
    w.add(request, 0.0)
    (datagram,) = link.pump(0.0)
    link.answer(seq_of(datagram), 0.0, code=BUSY)
    assert link.pump(0.01) == [datagram]
    link.answer(seq_of(datagram), 0.02)
    assert w.take_completed() == [request]
    assert request.reply == expected_reply(request)
    assert request.retry_code_resent == 1


# -- deadlines --------------------------------------------------------------------------


@pytest.mark.timeout(10)
def test_deadline_ends_a_request_in_flight() -> None:
    w, link = window(initial_rto=1.0)
    request = read(0, deadline=0.3)
    w.add(request, 0.0)
    link.pump(0.0)
    assert w.next_wakeup() == 0.3  # before the RTO
    assert link.pump(0.29) == []
    assert link.pump(0.3) == []  # no resend at the deadline
    assert w.take_completed() == [request]
    assert type(request.error) is DeadlineExceeded
    assert "after 1 try" in str(request.error)
    assert w.counters.resent == 0 and w.in_flight == 0
    assert w.open_requests == 0
    link.answer(seq_of(link.wire[0]), 0.4)  # too late
    assert w.take_completed() == []
    assert w.counters.duplicates == 1


@pytest.mark.timeout(10)
def test_deadline_ends_a_request_still_queued() -> None:
    w, link = window(size=1, initial_rto=10.0)
    first, late = read(0), read(1, deadline=0.2)
    w.add(first, 0.0)
    w.add(late, 0.0)
    assert w.next_wakeup() == 0.2
    link.pump(0.0)
    assert link.pump(0.2) == []
    assert w.take_completed() == [late]
    assert type(late.error) is DeadlineExceeded
    assert "before it could be sent" in str(late.error)
    assert late.sends == 0
    link.answer(seq_of(link.wire[0]), 0.3)
    assert link.pump(0.3) == []  # the expired one is not sent
    assert completed_keys(w) == [0]
    assert w.open_requests == 0 and w.counters.sent == 1


@pytest.mark.timeout(10)
def test_deadline_already_passed_when_added() -> None:
    w, link = window()
    request = read(0, deadline=1.0)
    w.add(request, 2.0)
    assert link.pump(2.0) == []
    assert isinstance(request.error, DeadlineExceeded)


@pytest.mark.timeout(10)
def test_deadline_ends_a_parked_request() -> None:
    w, link = window(retry_pause=1.0)
    request = read(0, deadline=0.5)
    w.add(request, 0.0)
    (datagram,) = link.pump(0.0)
    link.answer(seq_of(datagram), 0.1, code=BUSY)
    assert link.pump(0.5) == []
    assert isinstance(request.error, DeadlineExceeded)
    assert link.pump(1.2) == []
    assert w.take_completed() == [request]
    assert w.counters.retry_code_resent == 0


@pytest.mark.timeout(10)
def test_deadline_with_resends_counts_the_tries() -> None:
    w, link = window(initial_rto=0.1, rto_ceiling=0.1)
    request = read(0, deadline=0.25)
    w.add(request, 0.0)
    link.pump(0.0)
    link.pump(0.1)
    link.pump(0.2)
    assert w.next_wakeup() == 0.25  # the deadline cuts the expiry
    link.pump(0.25)
    assert isinstance(request.error, DeadlineExceeded)
    assert "after 3 tries" in str(request.error)


# -- board errors and junk -----------------------------------------------------------------


@pytest.mark.timeout(10)
@pytest.mark.parametrize("code", ERROR_CODES, ids=lambda c: str(getattr(c, "name", c)))
def test_board_error_code_completes_with_that_reply(code: SCPResult) -> None:
    w, link = window(retry_pause=0.01)
    request = read(0)
    w.add(request, 0.0)
    (datagram,) = link.pump(0.0)
    answer = reply(datagram, code)
    w.receive(answer, 0.01)
    assert w.take_completed() == [request]
    assert request.reply == answer and request.error is None
    assert w.counters.completed == 1 and w.counters.failed == 0
    assert link.pump(1.0) == [] and w.counters.resent == 0


def three_reads_sent() -> tuple[Window, Link, list[Request], list[bytes]]:
    """A window with three 8-byte reads on the wire."""
    w, link = window(size=4, initial_rto=1.0)
    requests = [read(key, size=8) for key in range(3)]
    for request in requests:
        w.add(request, 0.0)
    return w, link, requests, link.pump(0.0)


@pytest.mark.timeout(10)
def test_unmatched_junk_is_counted_and_changes_nothing() -> None:
    w, link, requests, sent = three_reads_sent()
    before = (w.in_flight, w.queued, w.open_requests, w.next_wakeup(), w.rtt.stats())
    good = reply(sent[0])
    junk = [
        b"",
        good[:13],  # too short
        good[:10] + struct.pack("<2H", 0x90, seq_of(sent[0])),  # no such code
        good[:10] + struct.pack("<2H", 0x7F, seq_of(sent[1])),
    ]
    for datagram in junk:
        w.receive(datagram, 0.01)
    assert w.counters.malformed == len(junk)
    assert w.take_completed() == []
    assert (
        w.in_flight,
        w.queued,
        w.open_requests,
        w.next_wakeup(),
        w.rtt.stats(),
    ) == before
    assert (
        w.counters.completed,
        w.counters.duplicates,
        w.counters.failed,
        w.counters.resent,
    ) == (0, 0, 0, 0)
    assert link.pump(0.02) == []
    link.answer_all(0.03)
    assert w.take_completed() == requests
    assert all(r.reply == expected_reply(r) for r in requests)


@pytest.mark.timeout(10)
def test_a_malformed_reply_is_a_loss_and_is_resent() -> None:
    w, link, requests, sent = three_reads_sent()
    wrong = [
        reply(sent[0]) + b"\0",  # read of 8, 9 bytes
        reply(sent[1])[:-1],  # read of 8, 7 bytes
        reply(sent[2], payload=b""),
    ]  # read of 8, no data
    for datagram in wrong:
        w.receive(datagram, 0.01)
    assert w.counters.malformed == 3 and w.take_completed() == []
    again = link.pump(0.01)  # resent at once, not after the rto
    assert sorted(map(seq_of, again)) == sorted(map(seq_of, sent))
    assert w.counters.resent == 3
    link.wire = again
    link.answer_all(0.02)
    assert sorted(completed_keys(w)) == [0, 1, 2]
    assert all(r.reply == expected_reply(r) and r.error is None for r in requests)


@pytest.mark.timeout(10)
def test_only_malformed_replies_end_in_malformed_reply_naming_the_tries() -> None:
    w, link = window(size=1, retries=2)
    request = read(0, size=8)
    w.add(request, 0.0)
    for now in (0.0, 0.01, 0.02):
        (datagram,) = link.pump(now)
        w.receive(reply(datagram)[:-1], now)
    assert link.pump(0.03) == []
    assert w.take_completed() == [request]
    assert isinstance(request.error, MalformedReply)
    assert isinstance(request.error, MalformedDatagramError)
    assert "malformed reply after 3 tries" in str(request.error)


@pytest.mark.timeout(10)
def test_a_check_refusing_a_reply_makes_it_a_loss() -> None:
    w, link = window()
    request = Request(
        "v", BUILDER.write(BASE, b"abcd"), check=lambda datagram: len(datagram) > 14
    )
    w.add(request, 0.0)
    (datagram,) = link.pump(0.0)
    w.receive(reply(datagram, payload=b""), 0.01)
    assert w.take_completed() == [] and w.counters.malformed == 1
    (again,) = link.pump(0.01)
    w.receive(reply(again, payload=b"ok"), 0.02)
    assert w.take_completed() == [request] and request.error is None


@pytest.mark.timeout(10)
def test_any_length_is_accepted_without_a_reply_size() -> None:
    w, link = window()
    request = Request("w", BUILDER.write(BASE, b"abcd"))
    w.add(request, 0.0)
    (datagram,) = link.pump(0.0)
    answer = reply(datagram, payload=b"")
    w.receive(answer, 0.01)
    assert request.reply == answer


# -- the owner's controls ----------------------------------------------------------------


@pytest.mark.timeout(10)
def test_drop_queued_forgets_only_unsent_requests() -> None:
    w, link = window(size=2)
    requests = [read(key) for key in range(6)]
    for request in requests:
        w.add(request, 0.0)
    link.pump(0.0)
    assert w.drop_queued(lambda r: r.key in (0, 3, 5)) == 2  # 0 is sent
    assert w.open_requests == 4
    assert w.take_completed() == []
    now = 0.0
    while w.open_requests:
        now += 0.01
        link.answer_all(now)
        link.pump(now)
    assert completed_keys(w) == [0, 1, 2, 4]
    assert sorted(span_of(d)[0] for d in link.log) == [
        BASE + 0x100 * key for key in (0, 1, 2, 4)
    ]
    assert requests[3].reply is None and requests[3].error is None
    assert w.drop_queued(lambda r: True) == 0


@pytest.mark.timeout(10)
def test_fail_all_ends_every_open_request_exactly_once() -> None:
    w, link = window(size=3, initial_rto=0.1, retry_pause=1.0)
    requests = [read(key) for key in range(7)]
    for request in requests:
        w.add(request, 0.0)
    sent = link.pump(0.0)  # 0, 1, 2 in flight
    link.answer(seq_of(sent[0]), 0.01)  # 0 done (not yet taken)
    link.answer(seq_of(sent[1]), 0.01, code=BUSY)  # 1 parked
    link.pump(0.01)  # 3 sent
    assert link.pump(0.1, budget=0) == []  # 2 expired, waiting to resend
    w.drop_queued(lambda r: r.key == 6)  # 6 dropped
    error = ShutDown("stopping")
    w.fail_all(error)
    done = w.take_completed()
    assert completed_keys_of(done).count(0) == 1
    assert sorted(completed_keys_of(done)) == [0, 1, 2, 3, 4, 5]
    assert requests[0].error is None
    for request in requests[1:6]:
        assert request.error is error and request.reply is None
    assert requests[6].error is None and requests[6].reply is None
    assert (w.open_requests, w.in_flight, w.queued) == (0, 0, 0)
    assert w.next_wakeup() is None
    assert (w.counters.completed, w.counters.failed) == (1, 5)
    # Nothing comes back to life afterwards.
    assert link.pump(5.0) == []
    link.answer_all(5.0)
    assert w.take_completed() == []
    w.fail_all(error)
    assert w.take_completed() == [] and w.counters.failed == 5


@pytest.mark.timeout(10)
def test_window_is_usable_after_fail_all() -> None:
    w, link = window(size=2)
    for key in range(3):
        w.add(read(key), 0.0)
    link.pump(0.0)
    w.fail_all(ShutDown("restart"))
    w.take_completed()
    link.wire.clear()
    fresh = read(10)
    w.add(fresh, 1.0)
    (datagram,) = link.pump(1.0)
    link.answer(seq_of(datagram), 1.01)
    assert w.take_completed() == [fresh]
    assert fresh.reply == expected_reply(fresh)


@pytest.mark.timeout(10)
def test_open_requests_and_next_wakeup_through_a_lifetime() -> None:
    w, link = window(size=1, initial_rto=0.5, rto_ceiling=4.0, retry_pause=0.0625)
    assert w.open_requests == 0 and w.next_wakeup() is None
    a, b = read(0), read(1, deadline=3.0)
    w.add(a, 0.0)
    assert w.open_requests == 1
    w.add(b, 0.0)
    assert w.next_wakeup() == 3.0  # b's deadline
    (a_dg,) = link.pump(0.0)
    assert w.next_wakeup() == 0.5  # a's expiry
    assert (w.in_flight, w.queued, w.open_requests) == (1, 1, 2)
    link.answer(seq_of(a_dg), 0.125, code=BUSY)
    assert w.next_wakeup() == 0.1875  # the retry
    assert w.in_flight == 0 and w.open_requests == 2
    (b_dg,) = link.pump(0.125)  # b takes the free slot
    link.answer(seq_of(b_dg), 0.15)
    assert w.open_requests == 1
    assert link.pump(0.1875) == [a_dg]
    link.answer(seq_of(a_dg), 0.2)
    assert w.open_requests == 0
    assert completed_keys(w) == [1, 0]


@pytest.mark.timeout(10)
def test_request_repr_and_resends() -> None:
    request = read(5)
    assert "open" in repr(request) and request.resends == 0
    w, link = window(initial_rto=0.1)
    w.add(request, 0.0)
    link.pump(0.0)
    link.pump(0.1)
    assert request.resends == 1
    link.answer(seq_of(link.wire[0]), 0.15)
    assert "ok" in repr(request) and "sends=2" in repr(request)


# -- regressions (bugs found and fixed) ----------------------------------------


@pytest.mark.timeout(10)
def test_resends_while_draining_are_counted_as_sent() -> None:
    w, link = window(size=2, refill_at=0, initial_rto=1.0)
    for key in range(3):
        w.add(read(key), 0.0)
    link.pump(0.0)
    assert len(link.pump(1.0)) == 2  # both expired: resent
    assert w.counters.resent == 2
    assert w.counters.sent == len(link.log) == 4


@pytest.mark.timeout(10)
def test_wrong_length_reply_to_a_parked_request_is_malformed() -> None:
    w, link = window(retry_pause=1.0)
    request = read(0, size=4)
    w.add(request, 0.0)
    (datagram,) = link.pump(0.0)
    link.answer(seq_of(datagram), 0.01, code=BUSY)
    w.receive(reply(datagram, payload=b"12345678"), 0.02)  # 8 bytes, not 4
    assert w.counters.malformed == 1
    assert not request.done and w.take_completed() == []


@pytest.mark.timeout(10)
def test_busy_reply_cancels_a_pending_fast_resend() -> None:
    w, link = window(size=8, fast_resend_after=3, retry_pause=0.5, initial_rto=1.0)
    a = read(0)
    w.add(a, 0.0)
    for key in range(1, 4):
        w.add(read(key), 0.0)
    sent = link.pump(0.0)
    first_copy_of_a = sent[0]
    for datagram in sent[1:]:
        link.answer(seq_of(datagram), 0.01)  # overtake a 3 times
    # Before the owner polls again, the busy answer to a's first copy comes.
    w.receive(reply(first_copy_of_a, BUSY), 0.01)
    assert w.in_flight == 0
    assert link.pump(0.02) == []  # parked: wait retry_pause
    assert a.sends == 1
    assert link.pump(0.51) == [first_copy_of_a]
    assert a.sends == 2


@pytest.mark.timeout(10)
def test_busy_reply_cancels_a_pending_timeout_resend() -> None:
    w, link = window(retry_pause=0.5, initial_rto=0.1, rto_ceiling=1.0)
    request = read(0)
    w.add(request, 0.0)
    (datagram,) = link.pump(0.0)
    assert link.pump(0.1, budget=0) == []  # expired; resend pending
    w.receive(reply(datagram, BUSY), 0.11)
    assert link.pump(0.12) == []  # parked until 0.61
    assert request.sends == 1


@pytest.mark.timeout(10)
def test_unanswered_after_a_fast_resend_is_still_a_request_timeout() -> None:
    w, link = window(
        size=4,
        retries=2,
        fast_resend_after=1,
        initial_rto=0.125,
        rto_floor=0.125,
        rto_ceiling=0.125,
    )
    a, b = read(0), read(1)
    w.add(a, 0.0)
    w.add(b, 0.0)
    a_dg, b_dg = link.pump(0.0)
    link.answer(seq_of(b_dg), 0.0625)  # overtakes a
    assert link.pump(0.0625) == [a_dg]  # fast resend
    assert link.pump(0.1875) == [a_dg]  # resend after expiry
    assert link.pump(0.3125) == []  # 3 tries, none answered
    assert a.sends == 3 and a.error is not None
    assert a.reasons == [_OVERTAKEN_REASON, _TIMEOUT_REASON, _TIMEOUT_REASON]
    assert isinstance(a.error, RequestTimeout), repr(a.error)


# -- a lossy link, many seeds ---------------------------------------------------------------


@pytest.mark.timeout(10)
@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 2**32 - 1),
    drop=st.sampled_from([0.0, 0.05, 0.2]),
    duplicate=st.sampled_from([0.0, 0.1, 0.3]),
    busy=st.sampled_from([0.0, 0.05, 0.2]),
    short=st.sampled_from([0.0, 0.02]),
    size=st.integers(1, 8),
    fast=st.sampled_from([0, 1, 3]),
    n=st.integers(1, 300),
)
def test_lossy_link_every_request_ends_once_and_counters_add_up(
    seed: int,
    drop: float,
    duplicate: float,
    busy: float,
    short: float,
    size: int,
    fast: int,
    n: int,
) -> None:
    rng = random.Random(seed)
    retries = 40
    w = Window(
        WindowSettings(
            size=size,
            retries=retries,
            initial_rto=0.02,
            rto_floor=0.002,
            rto_ceiling=0.1,
            retry_pause=0.003,
            fast_resend_after=fast,
        )
    )
    requests = [read(key, size=1 + rng.randrange(256)) for key in range(n)]
    for request in requests:
        w.add(request, 0.0)
    tie = itertools.count()
    transit: list[tuple[float, int, bytes]] = []
    ended: dict[Any, Request] = {}
    polled = delivered = 0
    now = 0.0
    for _ in range(1_000_000):
        for datagram in w.poll(now):
            polled += 1
            assert w.in_flight <= size
            if rng.random() < drop:
                continue  # request or reply lost
            code = BUSY if rng.random() < busy else OK
            answer = reply(bytes(datagram), code)
            for _ in range(2 if rng.random() < duplicate else 1):
                copy = answer[: rng.randrange(14)] if rng.random() < short else answer
                heapq.heappush(
                    transit, (now + rng.uniform(0.0005, 0.03), next(tie), copy)
                )
        for request in w.take_completed():
            assert request.key not in ended, f"{request!r} ended twice"
            ended[request.key] = request
        if not w.open_requests:
            break
        times = [
            t
            for t in (w.next_wakeup(), transit[0][0] if transit else None)
            if t is not None
        ]
        assert times, "stuck: nothing to wait for"
        now = max(now, min(times))
        while transit and transit[0][0] <= now:
            w.receive(heapq.heappop(transit)[2], now)
            delivered += 1
    else:
        pytest.fail("did not finish")
    for request in w.take_completed():
        assert request.key not in ended
        ended[request.key] = request
    # What is still in transit arrives too: all duplicates or junk.
    counters = w.counters
    before = (counters.completed, counters.failed)
    while transit:
        w.receive(heapq.heappop(transit)[2], now)
        delivered += 1
    assert w.take_completed() == []
    assert (counters.completed, counters.failed) == before

    # Every request ended exactly once, with its own reply or a reason.
    assert sorted(ended) == list(range(n))
    ok = [r for r in requests if r.error is None]
    for request in requests:
        assert request.done
        if request.error is None:
            assert request.reply == expected_reply(request)
        else:
            assert isinstance(request.error, (RequestTimeout, RetriesExhausted))
            assert request.reply is None
            assert request.sends == retries + 1
            assert f"{retries + 1} tries" in str(request.error)
    # The counters agree with the requests and with what went over the wire.
    assert counters.completed == len(ok)
    assert counters.failed == n - len(ok)
    assert counters.sent == polled == sum(r.sends for r in requests)
    assert counters.sent == n + counters.resent
    assert counters.resent == sum(r.resends for r in requests)
    assert counters.retry_code_resent == sum(r.retry_code_resent for r in requests)
    assert counters.timeouts == sum(r.timeouts for r in requests)
    reasons = [reason for r in requests for reason in (r.reasons or [])]
    assert counters.fast_resent == reasons.count(_OVERTAKEN_REASON)
    assert counters.timeouts == reasons.count(_TIMEOUT_REASON)
    busy_notes = reasons.count(BUSY.name)
    # Every reply that arrived was used exactly once: it completed a
    # request, parked (or finally failed) one, or was a duplicate or junk.
    assert delivered == (
        counters.duplicates + counters.malformed + busy_notes + len(ok)
    )
    if fast == 0:
        assert counters.fast_resent == 0
    # Karn: samples only from requests answered after a single send (at
    # most one per poll), and some if any were.
    once = sum(1 for r in ok if r.sends == 1)
    assert w.rtt.stats().count <= once
    assert (w.rtt.stats().count > 0) == (once > 0)
    assert (w.open_requests, w.in_flight, w.queued) == (0, 0, 0)
