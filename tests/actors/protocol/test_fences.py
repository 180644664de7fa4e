"""Write fences, played out exactly: a late copy of a write never lands
on top of a later write (fake clock, a board model that applies each write
datagram when the test delivers it)."""

from __future__ import annotations

import math
import struct

import pytest

from actors.errors import RequestTimeout
from actors.protocol.fences import WriteFences
from actors.protocol.requests import Request
from actors.protocol.settings import WindowSettings
from actors.protocol.window import Window
from messages.scp.bulk import ChunkBuilder
from messages.scp.enums import SCPCommand, SCPResult

BUILDER = ChunkBuilder(0, 0, 0)
CHIP = (0, 0)
BASE = 0x6000_0000
AGE = 0.1
A, B = b"A" * 256, b"B" * 256


class Board:
    """Memory as the monitor leaves it: each write lands when delivered."""

    def __init__(self) -> None:
        self.memory = bytearray(1024)

    def deliver(self, datagram: bytes) -> bytes:
        """Run ``datagram``; the reply the board sends."""
        command, seq, address, size = struct.unpack_from("<2H2I", datagram, 10)
        start = address - BASE
        payload = b""
        if command == SCPCommand.CMD_WRITE.value:
            data = datagram[26:]
            self.memory[start : start + len(data)] = data
        else:
            payload = bytes(self.memory[start : start + size])
        return bytes(10) + struct.pack("<2H", SCPResult.RC_OK.value, seq) + payload

    def at(self, offset: int, size: int = 256) -> bytes:
        return bytes(self.memory[offset : offset + size])


def window(**options: object) -> Window:
    settings = WindowSettings(
        **{
            "max_datagram_age": AGE,  # type: ignore[arg-type]
            "initial_rto": 1.0,
            **options,
        }
    )
    return Window(settings)


def write(key: object, data: bytes, offset: int = 0) -> Request:
    return Request(key, BUILDER.write(BASE + offset, data))


def read(key: object, offset: int = 0x200) -> Request:
    return Request(key, BUILDER.read(BASE + offset, 4), reply_size=18)


def sent(w: Window, now: float) -> list[bytes]:
    return [bytes(datagram) for datagram in w.poll(now)]


def seq_of(datagram: bytes) -> int:
    return int(struct.unpack_from("<H", datagram, 12)[0])


@pytest.mark.timeout(10)
@pytest.mark.parametrize("fenced", [True, False])
def test_a_held_original_after_a_fast_resend_cannot_overwrite_a_later_write(
    fenced: bool,
) -> None:
    board, w = Board(), window(size=4)
    claim_a = w.claim(CHIP, BASE, BASE + 256) if fenced else None
    first = write("a", A)
    w.add(first, 0.0, claim_a)
    for key in range(3):
        w.add(read(key), 0.0)
    original, *reads = sent(w, 0.0)
    for datagram in reads:  # three replies overtake the write
        w.receive(board.deliver(datagram), 0.001)
    (resend,) = sent(w, 0.001)  # the fast resend
    assert seq_of(resend) == seq_of(original)
    w.receive(board.deliver(resend), 0.002)
    assert first in w.take_completed() and first.error is None
    w.ended(0.002, claim_a, clean=False)
    claim_b = w.claim(CHIP, BASE, BASE + 256) if fenced else None
    second = write("b", B)
    w.add(second, 0.003, claim_b)
    if not fenced:
        # The hazard: B goes at once, and the held original lands on it.
        (datagram,) = sent(w, 0.003)
        w.receive(board.deliver(datagram), 0.004)
        board.deliver(original)
        assert board.at(0) == A
        return
    assert sent(w, 0.003) == []  # B waits ...
    wakeup = w.next_wakeup()
    assert wakeup is not None and wakeup <= 0.002 + AGE
    board.deliver(original)  # ... while A's copy lands
    assert sent(w, 0.002 + AGE / 2) == []
    (datagram,) = sent(w, 0.002 + AGE)
    w.receive(board.deliver(datagram), 0.11)
    assert w.take_completed() == [second] and second.error is None
    assert board.at(0) == B


@pytest.mark.timeout(10)
def test_a_failed_writes_late_copies_cannot_overwrite_a_later_write() -> None:
    board, w = (
        Board(),
        window(size=2, retries=1, initial_rto=0.01, rto_floor=0.01, rto_ceiling=0.01),
    )
    claim_a = w.claim(CHIP, BASE, BASE + 512)
    pieces = [write(("a", 0), A), write(("a", 1), A, 256)]
    w.add_all(pieces, claim_a)
    wire = sent(w, 0.0)
    assert len(wire) == 2
    wire += sent(w, 0.02)  # both lost; resent once
    assert len(wire) == 4
    assert sent(w, 0.04) == []  # out of tries: the job fails
    done = w.take_completed()
    assert done and all(isinstance(r.error, RequestTimeout) for r in done)
    w.ended(0.04, claim_a, unwanted=lambda r: r.key[0] == "a")  # type: ignore[index]
    assert w.open_requests == 0
    claim_b = w.claim(CHIP, BASE, BASE + 512)
    later = [write(("b", 0), B), write(("b", 1), B, 256)]
    w.add_all(later, claim_b)
    assert sent(w, 0.05) == []
    for datagram in wire:  # every copy of A lands, late
        w.receive(board.deliver(datagram), 0.06)
    assert board.at(0, 512) == A * 2
    assert sent(w, 0.04 + AGE) != []  # now B goes
    for request in later:
        w.receive(board.deliver(bytes(request.datagram)), 0.15)
    assert sorted((r.key for r in w.take_completed()), key=repr) == [("b", 0), ("b", 1)]
    assert board.at(0, 512) == B * 2


@pytest.mark.timeout(10)
def test_a_failed_job_sends_nothing_more_and_its_late_replies_are_counted() -> None:
    board, w = Board(), window(size=4)
    claim = w.claim(CHIP, BASE, BASE + 512)
    pieces = [write(("a", 0), A), write(("a", 1), A, 256)]
    w.add_all(pieces, claim)
    first, second = sent(w, 0.0)
    # Piece 0 fails with an error code; the job ends while piece 1 flies.
    w.receive(
        board.deliver(first)[:10]
        + struct.pack("<2H", SCPResult.RC_ARG.value, seq_of(first)),
        0.001,
    )
    (failed,) = w.take_completed()
    assert failed.key == ("a", 0)
    w.ended(0.001, claim, unwanted=lambda r: r.key[0] == "a")  # type: ignore[index]
    assert w.counters.retired == 1 and w.open_requests == 0
    w.receive(board.deliver(second), 0.002)
    assert w.counters.late == 1 and w.take_completed() == []
    # Its sequence number is not reused while a late copy may come.
    w.add(read("r"), 0.003)
    (datagram,) = sent(w, 0.003)
    assert seq_of(datagram) != seq_of(second)
    w.receive(board.deliver(datagram), 0.004)
    assert [r.key for r in w.take_completed()] == ["r"]
    assert sent(w, 5.0) == []  # never resent, even past its rto
    assert w.open_requests == 0


@pytest.mark.timeout(10)
def test_a_successor_window_respects_copies_its_predecessor_had_in_flight() -> None:
    board, old = Board(), window()
    claim = old.claim(CHIP, BASE, BASE + 256)
    old.add(write("a", A), 0.0, claim)
    (in_flight,) = sent(old, 0.0)
    holds = old.holds(0.01)  # the actor failed at 0.01
    assert holds == [(CHIP, BASE, BASE + 256, pytest.approx(0.01 + AGE))]  # type: ignore[comparison-overlap]
    new = Window(old.settings, first_sequence=old.next_sequence, holds=holds)
    claim_b = new.claim(CHIP, BASE + 128, BASE + 384)
    second = write("b", B[:256], 128)
    new.add(second, 0.02, claim_b)
    assert sent(new, 0.02) == []
    board.deliver(in_flight)  # the old copy lands late
    (datagram,) = sent(new, 0.01 + AGE)
    new.receive(board.deliver(datagram), 0.12)
    assert new.take_completed() == [second]
    assert board.at(0, 128) == A[:128] and board.at(128, 256) == B


@pytest.mark.timeout(10)
def test_reads_and_writes_elsewhere_never_wait_for_a_fence() -> None:
    w = window()
    claim = w.claim(CHIP, BASE, BASE + 256)
    w.add(write("a", A), 0.0, claim)
    (datagram,) = sent(w, 0.0)
    w.receive(Board().deliver(datagram), 0.001)
    w.ended(0.001, claim, clean=False)
    w.add(read("same place", 0), 0.002)  # a read passes
    elsewhere = w.claim(CHIP, BASE + 256, BASE + 512)
    w.add(write("elsewhere", B, 256), 0.002, elsewhere)
    other_chip = w.claim((1, 0), BASE, BASE + 256)
    w.add(write("other chip", B), 0.002, other_chip)
    assert len(sent(w, 0.002)) == 3


@pytest.mark.timeout(10)
def test_overlapping_writes_are_granted_in_the_order_they_were_asked() -> None:
    fences = WriteFences(AGE)
    first = fences.claim(CHIP, 0, 100)
    second = fences.claim(CHIP, 50, 150)
    third = fences.claim(CHIP, 120, 200)  # overlaps only the second
    assert (first.granted, second.granted, third.granted) == (True, False, False)
    assert fences.end(first, 1.0, clean=True) == []  # duplicates possible
    assert fences.next_release == pytest.approx(1.0 + AGE)
    assert fences.expire(1.0 + AGE / 2) == []
    assert fences.expire(1.0 + AGE) == [second]
    assert fences.end(second, 2.0, clean=False) == []
    assert fences.expire(2.0 + AGE) == [third]
    assert fences.next_release == math.inf


@pytest.mark.timeout(10)
def test_without_network_duplicates_a_clean_write_frees_its_range_at_once() -> None:
    fences = WriteFences(AGE, duplicates=False)
    first = fences.claim(CHIP, 0, 100)
    second = fences.claim(CHIP, 0, 100)
    assert fences.end(first, 1.0, clean=True) == [second]
    third = fences.claim(CHIP, 0, 100)
    assert fences.end(second, 2.0, clean=False) == []  # it was resent
    assert fences.expire(2.0 + AGE) == [third]


@pytest.mark.timeout(10)
def test_a_claim_that_ends_before_it_was_granted_holds_nothing() -> None:
    fences = WriteFences(AGE)
    first = fences.claim(CHIP, 0, 100)
    second = fences.claim(CHIP, 0, 100)
    third = fences.claim(CHIP, 200, 300)
    assert third.granted
    assert fences.end(second, 0.5, clean=False) == []
    assert fences.end(first, 1.0, clean=False) == []
    assert len(fences) == 2
    assert fences.expire(1.0 + AGE) == []
    assert len(fences) == 1


@pytest.mark.timeout(10)
def test_max_datagram_age_is_checked() -> None:
    with pytest.raises(ValueError, match="max_datagram_age"):
        WindowSettings(max_datagram_age=-1)
