"""The window's bulk lane: reads and writes queued as spans of pieces.

Played out exactly, as in test_window.py: a ReadRun or WriteRun is given to
a Window with add_bulk(), the test is the board, and the owner's loop
(poll, send, settle, collect) is done by hand. Each piece that leaves the
happy path must get every rule a Request gets.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.errors import ShutDown
from actors.protocol.jobs import Outcome, ReadJob, WriteJob
from actors.protocol.requests import Request
from actors.protocol.runs import JobRun
from actors.protocol.settings import WindowSettings
from actors.protocol.window import Window
from messages.scp.bulk import ChunkBuilder
from messages.scp.enums import SCPResult

OK = SCPResult.RC_OK
BASE = 0x7000_0000
SOURCE = (255, 255)


class Sink:
    def put(self, item: list[Outcome], /) -> None:
        raise AssertionError("the test collects outcomes itself")


def memory(address: int, size: int) -> bytes:
    return bytes((a * 13 + (a >> 8)) & 0xFF for a in range(address, address + size))


def seq_of(datagram: bytes | bytearray) -> int:
    return int(struct.unpack_from("<H", datagram, 12)[0])


def reply(datagram: bytes | bytearray, code: SCPResult = OK, extra: int = 0) -> bytes:
    """The board's answer: a read gets the memory it asked for."""
    command = struct.unpack_from("<H", datagram, 10)[0]
    address, size = struct.unpack_from("<2I", datagram, 14)
    payload = memory(address, size) if code is OK and command == 2 else b""
    return (
        bytes(10)
        + struct.pack("<2H", code.value, seq_of(datagram))
        + payload
        + bytes(extra)
    )


class Owner:
    """What the connection actor does with a window, by hand."""

    def __init__(self, run: JobRun, **settings: object) -> None:
        self.window = Window(WindowSettings(**settings))  # type: ignore[arg-type]
        self.run = run
        span = run.take_span()
        assert span is not None
        self.window.add_bulk(run, *span)  # type: ignore[arg-type]
        self.outcomes: list[Outcome] = []
        self.wire: list[bytes] = []
        self.sent: list[bytes] = []

    def pump(self, now: float) -> list[bytes]:
        window = self.window
        out = [bytes(datagram) for datagram in window.poll(now)]
        self.wire += out
        self.sent += out
        window.settle()
        for run in window.take_finished_bulks():
            assert isinstance(run, JobRun) and run is self.run
            self.outcomes.append(self.run.take_outcome())
        for request in window.take_completed():
            outcome = self.run.complete(request)
            if outcome is not None:
                self.outcomes.append(outcome)
                if outcome.error is not None:
                    window.drop_queued(lambda r: True, self.run)  # type: ignore[arg-type]
        return out

    def take(self, seq: int) -> bytes:
        for index, datagram in enumerate(self.wire):
            if seq_of(datagram) == seq:
                return self.wire.pop(index)
        raise AssertionError(f"seq {seq} is not on the wire")

    def answer(self, seq: int, now: float, code: SCPResult = OK) -> bytes:
        answer = reply(self.take(seq), code)
        self.window.receive(answer, now)
        return answer

    def answer_all(self, now: float) -> None:
        wire, self.wire = self.wire, []
        for datagram in wire:
            self.window.receive(reply(datagram), now)


def read_run(length: int, address: int = BASE) -> JobRun:
    return JobRun.of(ReadJob("r", 1, 2, 3, address, length), Sink(), 0.0, SOURCE)


@pytest.mark.timeout(10)
def test_pieces_are_the_datagrams_chunk_builder_makes() -> None:
    owner = Owner(read_run(1000, BASE + 3), size=8)
    owner.pump(0.0)
    builder = ChunkBuilder(1, 2, 3, *SOURCE)
    expected = []
    for offset in range(0, 1000, 256):
        datagram = builder.read(BASE + 3 + offset, min(256, 1000 - offset))
        struct.pack_into("<H", datagram, 12, offset // 256)
        expected.append(bytes(datagram))
    assert owner.sent == expected


@pytest.mark.timeout(10)
def test_a_clean_read_makes_no_request_and_ends_once() -> None:
    owner = Owner(read_run(5000, BASE + 1), size=4)
    now = 0.0
    while not owner.outcomes:
        owner.pump(now)
        owner.answer_all(now)
        assert not owner.window.take_completed()
        now += 0.001
    owner.pump(now)
    (outcome,) = owner.outcomes
    assert outcome.ok and bytes(outcome.value) == memory(BASE + 1, 5000)
    counters = owner.window.counters
    assert (counters.sent, counters.completed, counters.resent) == (20, 20, 0)
    assert owner.window.open_requests == 0
    assert owner.window.rtt.stats().count > 0


@pytest.mark.timeout(10)
def test_a_lost_piece_expires_and_is_resent_with_its_sequence() -> None:
    owner = Owner(
        read_run(512), size=2, initial_rto=0.1, rto_ceiling=0.1, fast_resend_after=0
    )
    owner.pump(0.0)
    owner.take(0)  # lost
    owner.answer(1, 0.01)
    owner.pump(0.01)
    assert owner.window.next_wakeup() == pytest.approx(0.1)
    (resent,) = owner.pump(0.1)
    assert seq_of(resent) == 0
    owner.answer(0, 0.12)
    owner.pump(0.12)
    (outcome,) = owner.outcomes
    assert outcome.ok and bytes(outcome.value) == memory(BASE, 512)
    assert (outcome.resends, outcome.timeouts) == (1, 1)
    assert owner.window.counters.timeouts == 1


@pytest.mark.timeout(10)
def test_an_overtaken_piece_is_resent_without_waiting() -> None:
    owner = Owner(read_run(256 * 5), size=5, fast_resend_after=3)
    owner.pump(0.0)
    owner.take(0)  # lost
    for seq in (1, 2, 3):
        owner.answer(seq, 0.001)
    out = owner.pump(0.001)
    assert [seq_of(datagram) for datagram in out] == [0, 5][: len(out)]
    assert seq_of(out[0]) == 0
    assert owner.window.counters.fast_resent == 1
    owner.answer_all(0.002)
    owner.pump(0.002)
    (outcome,) = owner.outcomes
    assert outcome.ok and bytes(outcome.value) == memory(BASE, 256 * 5)
    assert outcome.resends == 1 and outcome.timeouts == 0


@pytest.mark.timeout(10)
def test_a_busy_piece_is_parked_and_the_rest_carry_on() -> None:
    owner = Owner(read_run(256 * 4), size=2, retry_pause=0.05)
    owner.pump(0.0)
    owner.answer(0, 0.001, SCPResult.RC_P2P_BUSY)
    owner.answer(1, 0.001)
    out = owner.pump(0.001)
    # The busy piece keeps its sequence number while parked; new pieces
    # never take it.
    assert [seq_of(datagram) for datagram in out] == [2, 3]
    owner.answer_all(0.002)
    owner.pump(0.002)
    assert not owner.outcomes
    assert owner.pump(0.05) == []  # due at 0.051
    (retry,) = owner.pump(0.06)
    assert seq_of(retry) == 0
    owner.answer_all(0.07)
    owner.pump(0.07)
    (outcome,) = owner.outcomes
    assert outcome.ok and outcome.retry_code_resent == 1
    assert owner.window.counters.retry_code_resent == 1


@pytest.mark.timeout(10)
def test_bad_lengths_and_duplicates_are_counted_not_taken() -> None:
    owner = Owner(read_run(300), size=2)
    owner.pump(0.0)
    first = owner.take(0)
    owner.window.receive(reply(first, extra=1), 0.001)  # one byte too many
    assert owner.window.counters.malformed == 1
    assert owner.window.in_flight == 2
    good = reply(first)
    owner.window.receive(good, 0.001)
    owner.window.receive(good, 0.001)  # duplicated
    assert owner.window.counters.duplicates == 1
    owner.answer_all(0.002)
    owner.pump(0.002)
    (outcome,) = owner.outcomes
    assert outcome.ok and bytes(outcome.value) == memory(BASE, 300)


@pytest.mark.timeout(10)
def test_an_error_code_ends_the_job_and_drops_its_unsent_pieces() -> None:
    owner = Owner(read_run(256 * 10), size=2)
    owner.pump(0.0)
    owner.answer(0, 0.001, SCPResult.RC_ARG)
    owner.pump(0.001)
    (outcome,) = owner.outcomes
    assert outcome.error is not None and "CMD_READ" in str(outcome.error)
    # What is on the wire is answered; nothing more is sent.
    assert owner.window.open_requests == owner.window.in_flight == 2
    owner.answer_all(0.002)
    assert owner.pump(0.002) == []
    assert owner.window.open_requests == 0
    assert len(owner.outcomes) == 1


@pytest.mark.timeout(10)
def test_fail_all_ends_queued_and_flying_pieces() -> None:
    owner = Owner(read_run(256 * 10), size=3)
    owner.pump(0.0)
    owner.answer(0, 0.001)  # arrived, not yet settled
    owner.window.fail_all(ShutDown("stop"))
    assert owner.window.open_requests == 0
    assert owner.window.in_flight == 0 and owner.window.poll(0.002) == []
    failed = owner.window.take_completed()
    assert {request.seq for request in failed} == {1, 2}
    assert owner.window.counters.failed == 9


@pytest.mark.timeout(10)
def test_a_write_goes_the_bulk_lane_too() -> None:
    data = bytes(range(256)) * 3 + b"tail"
    run = JobRun.of(WriteJob("w", 0, 0, 1, BASE, data), Sink(), 0.0, SOURCE)
    owner = Owner(run, size=8)
    owner.pump(0.0)
    assert len(owner.sent) == 4
    assert owner.sent[3].endswith(b"tail")
    owner.answer_all(0.001)
    owner.pump(0.001)
    (outcome,) = owner.outcomes
    assert outcome.ok and outcome.value is None


@pytest.mark.timeout(10)
def test_a_restarted_run_asks_again_only_for_what_had_no_reply() -> None:
    run = read_run(256 * 6)
    owner = Owner(run, size=4)
    owner.pump(0.0)
    owner.answer(1, 0.001)
    owner.answer(3, 0.001)
    owner.window.settle()
    # The window is lost with the actor; its successor asks again.
    assert run.restart() is None
    assert run.take_span() is None  # pieces to ask again come first
    again = run.take(2)
    assert sorted(request.key[1] for request in again) == [0, 2]  # type: ignore[index]
    # Then the rest, after the last piece done, as a span again.
    assert run.take_span() == (4, 6)


@pytest.mark.timeout(10)
def test_a_single_request_goes_ahead_of_a_transfer_being_sent() -> None:
    """A version asked while a large read is under way goes out on the
    next poll, not after every piece of the read; requests keep their own
    order among themselves."""
    owner = Owner(read_run(256 * 1000), size=4)
    owner.pump(0.0)
    assert len(owner.wire) == 4
    first = Request("first", bytearray(bytes(10) + bytes(16)))
    second = Request("second", bytearray(bytes(10) + bytes(16)))
    owner.window.add(first, 0.0)
    owner.window.add_all([second])
    owner.answer(seq_of(owner.wire[0]), 0.001)
    owner.answer(seq_of(owner.wire[0]), 0.001)
    out = owner.pump(0.001)
    assert out == [bytes(first.datagram), bytes(second.datagram)]
    owner.window.receive(reply(owner.take(first.seq)), 0.002)
    owner.window.receive(reply(owner.take(second.seq)), 0.002)
    owner.window.settle()
    done = owner.window.take_completed()
    assert [request.key for request in done] == ["first", "second"]
    # ...and the read carries on from where it was.
    assert len(owner.pump(0.002)) == 2


def piece_datagram(address: int, size: int, seq: int) -> bytes:
    datagram = ChunkBuilder(1, 2, 3, *SOURCE).read(address, size)
    struct.pack_into("<H", datagram, 12, seq)
    return bytes(datagram)


@pytest.mark.timeout(10)
def test_one_at_a_time_a_reply_hands_back_the_next_piece() -> None:
    """With send_next, the reply that empties the window returns the next
    piece, stamped and counted as sent, so the owner can send it before
    any bookkeeping; poll() then has nothing more to send."""
    owner = Owner(read_run(256 * 3 + 10), size=1)
    (first,) = owner.pump(0.0)
    assert first == piece_datagram(BASE, 256, 0)
    now = 0.0
    following = []
    while True:
        now += 0.001
        (datagram,) = owner.wire
        owner.wire.clear()
        out = owner.window.receive(reply(datagram), now, True)
        if out is None:
            break
        following.append(bytes(out))
        owner.wire.append(bytes(out))
        assert owner.window.in_flight == 1
        assert owner.window.poll(now) == []
        owner.window.settle()
    assert following == [
        piece_datagram(BASE + 256, 256, 1),
        piece_datagram(BASE + 512, 256, 2),
        piece_datagram(BASE + 768, 10, 3),
    ]
    owner.pump(now)
    (outcome,) = owner.outcomes
    assert outcome.ok and bytes(outcome.value) == memory(BASE, 256 * 3 + 10)
    counters = owner.window.counters
    assert (counters.sent, counters.completed, counters.resent) == (4, 4, 0)
    assert owner.window.open_requests == 0
    assert owner.window.rtt.stats().count == 4


@pytest.mark.timeout(10)
def test_send_next_leaves_it_to_poll_when_anything_else_is_due() -> None:
    """No piece jumps a single request, a due timer, a resend or the rest
    of a window still on the wire: then poll() decides, as before."""
    # Pieces still on the wire: the replies are gathered for a burst.
    owner = Owner(read_run(256 * 8), size=2)
    owner.pump(0.0)
    assert owner.window.receive(reply(owner.take(0)), 0.001, True) is None
    # Without send_next, never.
    assert owner.window.receive(reply(owner.take(1)), 0.001) is None
    assert len(owner.pump(0.001)) == 2

    # A single request waiting goes first.
    owner = Owner(read_run(256 * 8), size=1)
    owner.pump(0.0)
    owner.window.settle()
    version = Request("version", bytearray(bytes(10) + bytes(16)))
    owner.window.add_all([version])
    assert owner.window.receive(reply(owner.take(0)), 0.001, True) is None
    assert owner.pump(0.001) == [bytes(version.datagram)]

    # A timer due (here the piece's own expiry has passed, at the RTO).
    owner = Owner(read_run(256 * 8), size=1, initial_rto=0.1)
    owner.pump(0.0)
    owner.window.settle()
    assert owner.window.receive(reply(owner.take(0)), 0.5, True) is None
    assert [seq_of(datagram) for datagram in owner.pump(0.5)] == [1]

    # A busy piece waiting to be resent.
    owner = Owner(read_run(256 * 8), size=2, retry_pause=0.05)
    owner.pump(0.0)
    owner.window.settle()
    owner.answer(0, 0.001, SCPResult.RC_P2P_BUSY)
    assert owner.window.receive(reply(owner.take(1)), 0.001, True) is None


# -- receive_all: what was waiting after a wake, in one go --------------------

BOARD = ("board", 1)
#: What happens to one datagram on the wire before it comes back.
FATES = ("ok", "ok", "ok", "twice", "long", "busy", "error", "junk", "foreign")


def _batch(owner: Owner, fates: list[tuple[int, str]]) -> list[tuple[bytes, object]]:
    """Replies to datagrams on ``owner``'s wire, picked and treated as
    ``fates`` says (an index into the wire, and what befalls it)."""
    batch: list[tuple[bytes, object]] = []
    for pick, fate in fates:
        if not owner.wire:
            break
        datagram = owner.wire.pop(pick % len(owner.wire))
        if fate == "busy":
            batch.append((reply(datagram, SCPResult.RC_P2P_BUSY), BOARD))
        elif fate == "error":
            batch.append((reply(datagram, SCPResult.RC_ARG), BOARD))
        elif fate == "long":
            batch.append((reply(datagram, extra=1), BOARD))
        elif fate == "junk":
            batch.append((reply(datagram)[:5], BOARD))
        elif fate == "foreign":
            batch.append((reply(datagram), ("elsewhere", 1)))
        else:
            batch += [(reply(datagram), BOARD)] * (2 if fate == "twice" else 1)
    return batch


def _state(owner: Owner, now: float) -> object:
    window = owner.window
    return (
        vars(window.counters),
        window.in_flight,
        window.open_requests,
        window.rtt.rto,
        window.silent_for(now),
        owner.sent,
        [(o.key, o.value, repr(o.error), o.resends) for o in owner.outcomes],
    )


@pytest.mark.timeout(60)
@settings(max_examples=80, deadline=None, derandomize=True)
@given(
    size=st.integers(1, 8),
    rounds=st.lists(
        st.lists(st.tuples(st.integers(0, 7), st.sampled_from(FATES)), max_size=10),
        max_size=30,
    ),
)
def test_receive_all_is_receive_one_by_one(
    size: int, rounds: list[list[tuple[int, str]]]
) -> None:
    # Two owners of the same read, the same replies: one hands them over
    # one by one, counting other senders' itself; the other in one go.
    one_by_one, all_at_once = (
        Owner(read_run(256 * 40 + 7), size=size, initial_rto=0.01) for _ in range(2)
    )
    now = 0.0
    for fates in rounds:
        one_by_one.pump(now)
        all_at_once.pump(now)
        assert one_by_one.wire == all_at_once.wire
        batch = _batch(one_by_one, fates)
        all_at_once.wire = list(one_by_one.wire)
        now += 0.003
        foreign = 0
        for datagram, sender in batch:
            if sender == BOARD:
                one_by_one.window.receive(datagram, now)
            else:
                foreign += 1
        assert all_at_once.window.receive_all(batch, BOARD, now) == foreign
        assert _state(all_at_once, now) == _state(one_by_one, now)
    one_by_one.pump(now)
    all_at_once.pump(now)
    assert _state(all_at_once, now) == _state(one_by_one, now)


@pytest.mark.timeout(10)
def test_a_read_hands_over_a_buffer_the_caller_may_resize() -> None:
    # (accept() writes through a memoryview of it, released at the end.)
    owner = Owner(read_run(256 * 3), size=8)
    owner.pump(0.0)
    batch = [(reply(datagram), BOARD) for datagram in owner.wire]
    assert owner.window.receive_all(batch, BOARD, 0.001) == 0
    owner.pump(0.001)
    (outcome,) = owner.outcomes
    assert outcome.ok and bytes(outcome.value) == memory(BASE, 256 * 3)
    outcome.value.extend(b"more")  # (BufferError while a view is held)
    assert outcome.value.endswith(b"more")
