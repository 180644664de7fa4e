"""How long a board has owed a reply (Window.silent_for), played out on
explicit ``now`` floats as in test_window.py: what health calls silence.

The figure must count from when the board was first owed an answer (its
last reply, or the first request sent after it), never from its last reply
alone: an idle board owes nothing however long ago it answered, and the
first request ever sent to a board that never answers is timed from its
send.
"""

from __future__ import annotations

import pytest

from actors.errors import RequestTimeout
from actors.protocol.settings import WindowSettings
from actors.protocol.window import Window
from tests.actors.protocol.test_bulk_lane import Owner, read_run
from tests.actors.protocol.test_window import Link, read, seq_of


def window(**options: object) -> tuple[Window, Link]:
    w = Window(WindowSettings(**options))  # type: ignore[arg-type]
    return w, Link(w)


@pytest.mark.timeout(10)
def test_a_board_that_answered_everything_owes_nothing_however_long_idle() -> None:
    w, link = window()
    assert w.silent_for(0.0) is None  # nothing ever sent
    w.add(read(1), 0.0)
    link.pump(0.0)
    assert w.silent_for(0.002) == pytest.approx(0.002)
    link.answer_all(0.003)
    assert w.silent_for(0.003) is None
    assert w.silent_for(1e6) is None  # idle, not silent


@pytest.mark.timeout(10)
def test_the_first_request_ever_is_timed_from_its_first_send() -> None:
    """No reply yet at all: the silence runs from the first send, and the
    resends after each expiry do not start it again."""
    w, link = window(initial_rto=0.5, rto_ceiling=0.5, retries=10)
    w.add(read(1), 10.0)
    link.pump(10.0)
    for now in (10.6, 11.2, 11.8):  # each expiry resends it
        assert len(link.pump(now)) == 1
    assert w.counters.resent == 3
    assert w.silent_for(12.0) == pytest.approx(2.0)


@pytest.mark.timeout(10)
def test_after_an_idle_spell_the_silence_runs_from_the_next_send() -> None:
    w, link = window()
    w.add(read(1), 0.0)
    link.pump(0.0)
    link.answer_all(0.001)
    w.add(read(2), 100.0)  # the last reply was 100 s ago
    link.pump(100.0)
    assert w.silent_for(100.5) == pytest.approx(0.5)


@pytest.mark.timeout(10)
def test_replies_that_stop_mid_flight_are_timed_from_the_last_one() -> None:
    """Requests still on the wire when the last reply came have been owed
    since that reply, not since a later resend."""
    w, link = window(size=4, initial_rto=1.0, rto_ceiling=1.0, fast_resend_after=0)
    for key in range(4):
        w.add(read(key), 0.0)
    sent = link.pump(0.0)
    link.answer(seq_of(sent[0]), 0.5)
    assert link.pump(0.5) == []  # nothing more to send
    assert len(link.pump(1.1)) == 3  # the rest expired: resent
    assert w.silent_for(2.0) == pytest.approx(1.5)


@pytest.mark.timeout(10)
def test_requests_that_ended_unanswered_leave_the_board_owing() -> None:
    """A caller reading in a loop from a board gone quiet: each read times
    out, the next one carries the silence on; only a datagram from the
    board ends it."""
    w, link = window(initial_rto=0.5, rto_ceiling=0.5, retries=1)
    w.add(read(1), 0.0)
    link.pump(0.0)
    link.pump(0.6)  # resent once
    link.pump(1.2)  # out of tries
    (ended,) = w.take_completed()
    assert isinstance(ended.error, RequestTimeout)
    assert (w.in_flight, w.open_requests) == (0, 0)
    assert w.silent_for(1.5) == pytest.approx(1.5)  # nothing open, still owed
    w.add(read(2), 1.5)
    link.pump(1.5)
    assert w.silent_for(2.0) == pytest.approx(2.0)
    link.answer(seq_of(link.wire[-1]), 2.0)
    assert w.silent_for(2.0) is None
    assert w.silent_for(50.0) is None


@pytest.mark.timeout(10)
def test_a_late_reply_to_a_resent_request_ends_the_silence() -> None:
    """Any datagram from the board says it is there: the silence starts
    again from it for what is still on the wire."""
    w, link = window(size=2, initial_rto=0.5, rto_ceiling=0.5, fast_resend_after=0)
    w.add(read(1), 0.0)
    w.add(read(2), 0.0)
    first, second = link.pump(0.0)
    assert len(link.pump(0.6)) == 2  # both resent
    assert w.silent_for(3.0) == pytest.approx(3.0)
    link.answer(seq_of(first), 3.0)
    assert w.silent_for(3.5) == pytest.approx(0.5)  # the other is still owed
    link.answer(seq_of(second), 3.6)
    assert w.silent_for(4.0) is None


@pytest.mark.timeout(10)
def test_a_bulk_read_is_timed_like_single_requests() -> None:
    owner = Owner(read_run(1024), size=4, initial_rto=0.5, rto_ceiling=0.5)
    owner.pump(5.0)
    assert owner.window.silent_for(5.0) == pytest.approx(0.0)
    owner.pump(5.6)  # every piece expired and was resent
    assert owner.window.silent_for(6.5) == pytest.approx(1.5)
    owner.answer_all(6.5)
    owner.pump(6.5)
    assert owner.outcomes and owner.outcomes[0].ok
    assert owner.window.silent_for(9.0) is None
