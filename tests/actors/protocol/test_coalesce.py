"""Coalesced wake-ups, played out on explicit ``now`` floats.

A real Window and a Coalescer, driven as the connection actor drives them
(poll and send, ask how long to wait, sleep or block for the next reply,
hand the replies to the window), against a board the test models: it
serves one request every ``pace`` seconds in arrival order, and a reply
reaches the client ``latency`` after it is served. A sleep ends late by a
seeded random amount, as a real one does. Nothing sleeps for real.
"""

from __future__ import annotations

import heapq
import math
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from actors.protocol.coalesce import Coalescer
from actors.protocol.jobs import ReadJob
from actors.protocol.requests import Request
from actors.protocol.runs import JobRun
from actors.protocol.settings import WindowSettings
from actors.protocol.window import Window
from messages.scp.bulk import ChunkBuilder
from messages.scp.enums import SCPResult

BUILDER = ChunkBuilder(0, 0, 1)
BASE = 0x6000_0000
#: A real board's pace (transport.virtual.board.REALISTIC_SERVICE_TIME).
PACE = 70e-6
#: How long a blocking receive lasts at most (the actor's MAX_BLOCK), and
#: how soon a receive must return to have found its reply already there.
MAX_BLOCK = 0.002
ALREADY_WAITING = 20e-6


def read(key: int) -> Request:
    return Request(key, BUILDER.read(BASE + 4 * key, 4), reply_size=14 + 4)


def reply_to(datagram: bytes) -> bytes:
    """RC_OK with as many bytes as the read asks for (its second argument)."""
    (seq,) = struct.unpack_from("<H", datagram, 12)
    (length,) = struct.unpack_from("<I", datagram, 18)
    return bytes(10) + struct.pack("<2H", SCPResult.RC_OK.value, seq) + bytes(length)


def bulk_read(pieces: int) -> tuple[JobRun, int, int]:
    """A read of ``pieces`` 256-byte pieces, as the actor queues one."""
    run = JobRun.of(ReadJob("read", 0, 0, 1, BASE, 256 * pieces), None, 0.0, (0, 0))  # type: ignore[arg-type]
    span = run.take_span()
    assert span is not None
    return run, *span


@dataclass
class Board:
    """Serves requests one at a time, ``pace`` seconds each, in the order
    they arrive; drops the ``drop``-th requests it is sent (counting from
    0). ``idle`` adds up the time it had nothing to serve between its
    first request and its last."""

    pace: float
    latency: float = 10e-6
    drop: set[int] = field(default_factory=set)
    #: Pauses (the board's host, a stalled link): after each
    #: ``pause_every``-th request it serves, it serves nothing for ``pause``.
    pause_every: int = 0
    pause: float = 0.0
    idle: float = 0.0
    served: int = 0
    busy_until: float = -math.inf
    #: When the reply to each read (by its key) reaches the client.
    replied: dict[int, float] = field(default_factory=dict)
    _replies: list[tuple[float, int, bytes]] = field(default_factory=list)
    _received: int = 0

    def send(self, datagram: bytes, now: float) -> None:
        index, self._received = self._received, self._received + 1
        if index in self.drop:
            return
        arrives = now + self.latency
        if self.busy_until > -math.inf and arrives > self.busy_until:
            self.idle += arrives - self.busy_until
        self.busy_until = max(arrives, self.busy_until) + self.pace
        self.served += 1
        if self.pause_every and self.served % self.pause_every == 0:
            self.busy_until += self.pause
        heapq.heappush(
            self._replies,
            (self.busy_until + self.latency, index, reply_to(datagram)),
        )
        (address,) = struct.unpack_from("<I", datagram, 14)
        self.replied[(address - BASE) // 4] = self.busy_until + self.latency

    def next_reply(self) -> float:
        return self._replies[0][0] if self._replies else math.inf

    def replies_by(self, now: float, limit: int) -> list[bytes]:
        out: list[bytes] = []
        while self._replies and self._replies[0][0] <= now and len(out) < limit:
            out.append(heapq.heappop(self._replies)[2])
        return out


@dataclass
class Take:
    """One time the client took replies."""

    at: float
    n: int
    owed: int
    slept: bool


class Client:
    """The connection actor's loop (_pump and _await_replies) in model
    time: ``reply_cost`` and ``send_cost`` are its work per datagram, and
    a sleep ends ``late()`` after it should."""

    def __init__(
        self,
        board: Board,
        settings: WindowSettings | None = None,
        coalescer: Coalescer | None = None,
        seed: int = 1,
        reply_cost: float = 3e-6,
        send_cost: float = 4e-6,
    ) -> None:
        self.board = board
        self.window = Window(settings or WindowSettings(fast_resend_after=0))
        self.coalescer = coalescer if coalescer is not None else Coalescer()
        self.now = 0.0
        self.takes: list[Take] = []
        #: (when, wait asked, the window's next timer then)
        self.waits: list[tuple[float, float, float | None]] = []
        #: When each datagram was sent, by its bytes' sequence number.
        self.sends: list[tuple[float, int]] = []
        self.done: dict[int, float] = {}
        #: Keys of jobs of one request: while one is open the coalescer is
        #: told (as the actor tells it of its open one-request jobs).
        self.lone: set[int] = set()
        self._rng = random.Random(seed)
        self._reply_cost = reply_cost
        self._send_cost = send_cost

    def late(self) -> float:
        return 50e-6 + self._rng.random() * 60e-6

    def run(self, requests: list[Request]) -> None:
        self.window.add_all(requests)
        while self.window.open_requests:
            self.step()

    def step(self) -> None:
        window = self.window
        for datagram in window.poll(self.now):
            self.board.send(bytes(datagram), self.now)
            self.sends.append((self.now, struct.unpack_from("<H", datagram, 12)[0]))
            self.now += self._send_cost
        window.settle()
        for request in window.take_completed():
            self.done[request.key] = self.now  # type: ignore[index]
            self.lone.discard(request.key)
        if window.open_requests:
            self.await_replies()

    def await_replies(self) -> None:
        window, coalescer = self.window, self.coalescer
        owed = window.in_flight
        wait = coalescer.wait(self.now, window, bool(self.lone))
        self.waits.append((self.now, wait, window.next_wakeup()))
        if wait:
            slept_from = self.now
            self.now += wait + self.late()
            taken = self.board.replies_by(self.now, owed)
            coalescer.took(self.now, len(taken), owed, slept_from)
            if taken:
                self.takes.append(Take(self.now, len(taken), owed, True))
                self.hand_over(taken)
                return
        waited_from = self.now
        arrives = self.board.next_reply()
        if arrives > self.now + MAX_BLOCK:
            self.now += MAX_BLOCK
            coalescer.took(self.now, 0, owed, waited_from)
            return
        waited = arrives - self.now >= ALREADY_WAITING
        self.now = max(self.now, arrives)
        taken = self.board.replies_by(self.now, 1 if waited else owed)
        coalescer.took(self.now, len(taken), owed, waited_from)
        self.takes.append(Take(self.now, len(taken), owed, False))
        self.hand_over(taken)

    def hand_over(self, replies: list[bytes]) -> None:
        for datagram in replies:
            self.window.receive(datagram, self.now)
            self.now += self._reply_cost


def never_and_coalesced(board: Callable[[], Board], n: int) -> tuple[Client, Client]:
    """The same read of ``n`` requests from a new ``board()``, by a client
    that never sleeps and by one that coalesces."""

    def transfer(coalescer: Coalescer) -> Client:
        client = Client(board(), coalescer=coalescer)
        client.run([read(key) for key in range(n)])
        return client

    return transfer(Coalescer(learn=10**9)), transfer(Coalescer())


def paced_read(pace: float = PACE, n: int = 2000, **options: object) -> Client:
    client = Client(Board(pace), **options)  # type: ignore[arg-type]
    client.run([read(key) for key in range(n)])
    return client


def test_a_paced_boards_replies_are_taken_several_per_wake() -> None:
    client = paced_read()
    slept = [take for take in client.takes if take.slept]
    # After a few replies to learn the pace, nearly every take is a wake.
    assert len(slept) > 0.9 * len(client.takes) - 20
    assert sum(take.n for take in slept) / len(slept) >= 4
    assert len(client.takes) < 2000 / 4
    assert client.coalescer.interval == pytest.approx(PACE, rel=0.1)


def test_the_boards_queue_never_empties_while_the_client_sleeps() -> None:
    client = paced_read()
    assert client.board.served == 2000
    assert client.board.idle == 0.0
    # So the client is as fast as the board: a request every PACE.
    assert client.now == pytest.approx(2000 * PACE, rel=0.01)
    # And no wake found the board owing nothing.
    assert all(take.n < take.owed for take in client.takes[:-1] if take.slept)


@pytest.mark.parametrize("seed", range(5))
def test_sleeps_that_end_later_and_vary_more_cost_the_board_next_to_nothing(
    seed: int,
) -> None:
    # 50-250 us late: three paces of spread, where a real sleep's p99 is
    # about two (the margin is learnt, so the board may idle for a few us
    # when the spread is at its widest).
    class Sluggish(Client):
        def late(self) -> float:
            return 50e-6 + self._rng.random() * 200e-6

    client = Sluggish(Board(PACE), seed=seed)
    client.run([read(key) for key in range(2000)])
    assert client.board.idle < 0.0005 * client.now
    assert client.coalescer.wakes > 300
    assert client.coalescer.late == pytest.approx(150e-6, rel=0.35)


def test_a_lone_request_is_taken_as_soon_as_its_reply_comes() -> None:
    client = paced_read()
    assert client.coalescer.wakes > 100  # it has learnt the board is paced
    for key in range(2000, 2010):
        client.window.add(read(key), client.now)
        client.step()  # sent, and its reply taken
        sent_at = client.sends[-1][0]
        # No sleep: taken the moment it came (a round trip and one pace).
        assert client.waits[-1][1] == 0.0
        assert client.takes[-1].at == pytest.approx(sent_at + 2 * 10e-6 + PACE)
        assert not client.takes[-1].slept
        client.step()  # handed over


@pytest.mark.parametrize("told", [True, False])
def test_a_lone_request_amid_a_paced_read_is_taken_as_its_reply_comes(
    told: bool,
) -> None:
    # A version() asked every so often during a long read goes ahead of
    # the read's pieces; its caller waits for that one reply, so none is
    # slept on while it is out.
    client = Client(Board(PACE))
    run, start, stop = bulk_read(4000)
    client.window.add_bulk(run, start, stop)  # type: ignore[arg-type]
    delays = []
    for lone in range(1 << 20, (1 << 20) + 20):
        while client.window.counters.completed < (lone - (1 << 20) + 1) * 150:
            client.step()
        client.window.add(read(lone), client.now)
        if told:
            client.lone.add(lone)
        while lone not in client.done:
            client.step()
        delays.append(client.done[lone] - client.board.replied[lone])
    while client.window.open_requests:
        client.step()
    assert client.coalescer.wakes > 400  # the read was coalesced all along
    assert client.board.idle < 4 * PACE
    if told:
        # Handed over with the replies that came with it, and the refill
        # sent: a few datagrams' work.
        assert max(delays) < 60e-6, delays
    else:  # (what telling it is for: otherwise most wait out a sleep)
        assert sum(delays) / len(delays) > 60e-6, delays


def test_a_window_of_one_never_waits() -> None:
    client = paced_read(n=500, settings=WindowSettings(size=1))
    assert all(wait == 0.0 for _, wait, _ in client.waits)
    assert all(not take.slept for take in client.takes)


def test_no_sleep_ends_past_the_windows_next_timer() -> None:
    # A request's reply lost: it expires and is resent. Every sleep asked
    # for, lateness margin included, ends before the window's next timer.
    client = Client(Board(PACE, drop={900}))
    client.run([read(key) for key in range(2000)])
    coalescer = client.coalescer
    margin_at_most = 50e-6 + 60e-6
    for when, wait, timer in client.waits:
        if wait and timer is not None:
            assert when + wait + margin_at_most <= timer + margin_at_most
    assert client.window.counters.resent == 1
    assert coalescer.wakes > 100


def test_a_resend_goes_as_soon_as_without_coalescing() -> None:
    lost = 900
    timed = []
    for coalescer in (Coalescer(), Coalescer(learn=10**9)):  # the second never waits
        client = Client(Board(PACE, drop={lost}), coalescer=coalescer)
        client.run([read(key) for key in range(2000)])
        assert client.window.counters.resent == 1
        resent_seq = client.sends[lost][1]
        times = [at for at, seq in client.sends if seq == resent_seq]
        # (the sequence number is reused later; the resend is the second use)
        timed.append(times[1] - times[0])
    with_coalescing, without = timed
    assert with_coalescing <= without


def test_after_a_resend_replies_are_taken_one_by_one_for_a_while() -> None:
    client = Client(Board(PACE, drop={900}))
    client.run([read(key) for key in range(2000)])
    seq = client.sends[900][1]
    resend_at = [at for at, sent in client.sends if sent == seq][1]
    after = [take for take in client.takes if take.at > resend_at]
    quiet = after[:12]  # (16 replies, one by one)
    assert quiet and not any(take.slept for take in quiet)
    assert any(take.slept for take in after[40:])


@pytest.mark.parametrize("new_pace", [140e-6, 35e-6])
def test_the_interval_follows_the_board_when_its_pace_changes(
    new_pace: float,
) -> None:
    client = Client(Board(PACE))
    client.window.add_all([read(key) for key in range(4000)])
    while client.window.counters.completed < 1500:
        client.step()
    assert client.coalescer.interval == pytest.approx(PACE, rel=0.1)
    client.board.pace = new_pace
    while client.window.open_requests:
        client.step()
    assert client.coalescer.interval == pytest.approx(new_pace, rel=0.15)
    last = client.takes[-200:-10]
    assert sum(take.slept for take in last) >= 0.9 * len(last)
    assert sum(take.n for take in last) / len(last) >= 3
    # After the change, the board ran dry for no more than the change's
    # first few wakes.
    assert client.board.idle < 4 * PACE


def test_a_board_that_turns_fast_is_no_longer_slept_on() -> None:
    client = Client(Board(PACE))
    client.window.add_all([read(key) for key in range(4000)])
    while client.window.counters.completed < 1500:
        client.step()
    assert client.coalescer.wakes > 100
    client.board.pace = 2e-6
    wakes = client.coalescer.wakes
    while client.window.open_requests:
        client.step()
    assert client.coalescer.wakes - wakes < 10
    assert all(wait == 0.0 for _, wait, _ in client.waits[-500:])


def test_a_fast_board_is_never_slept_on() -> None:
    client = paced_read(pace=2e-6, n=4000)
    assert client.coalescer.wakes == 0
    assert all(wait == 0.0 for _, wait, _ in client.waits)


def test_the_policy_refuses_settings_that_make_no_sense() -> None:
    with pytest.raises(ValueError, match="keep"):
        Coalescer(keep=0)
    with pytest.raises(ValueError, match="min_gather"):
        Coalescer(min_gather=1)
    with pytest.raises(ValueError, match="max_wait"):
        Coalescer(max_wait=0)


@pytest.mark.parametrize("pace", [1e-6, 5e-6, 10e-6, 20e-6, 35e-6, 70e-6, 300e-6])
def test_at_any_pace_a_transfer_takes_no_longer_than_with_no_sleeps(
    pace: float,
) -> None:
    never, coalesced = never_and_coalesced(lambda: Board(pace), 3000)
    assert never.coalescer.wakes == 0
    assert coalesced.now <= never.now * 1.002
    # Where the board is slower than the client's work on a reply, a
    # wake takes several.
    if pace >= 35e-6:
        assert coalesced.coalescer.coalesced >= 0.8 * 3000
        # (at most max_wait, 1 ms, apart)
        per_take = 3 if pace < 70e-6 else min(4, 1e-3 / pace)
        assert len(coalesced.takes) <= 3000 / per_take


@pytest.mark.parametrize("stall", [3e-3, 30e-3])
def test_a_sleep_that_stalls_does_not_stop_the_sleeps_for_good(stall: float) -> None:
    # A loaded machine may run a thread milliseconds after its sleep
    # ended: the margin learnt from it must not forbid every later sleep
    # (after which no sleep would show that lateness came down again).
    class Stalling(Client):
        sleeps = 0

        def late(self) -> float:
            self.sleeps += 1
            return stall if self.sleeps in (20, 21, 22) else super().late()

    client = Stalling(Board(PACE))
    client.run([read(key) for key in range(4000)])
    assert client.sleeps > 22
    later = [take for take in client.takes if take.at > client.now / 2]
    assert sum(take.slept for take in later) >= 0.8 * len(later)
    assert client.coalescer.late < 2 * 110e-6


def test_the_exact_wakeup_is_the_soonest_timer_and_timers_still_fire() -> None:
    # next_wakeup() may be early (it moves on only when timers run): the
    # exact one is what a sleep is cut short by, and a request still
    # expires, and is resent, when it should.
    window = Window(WindowSettings(initial_rto=0.01, rto_ceiling=0.01))
    first, second = read(1), read(2)
    window.add(first, 0.0)
    (sent_first,) = window.poll(0.0)
    window.add(second, 0.005)
    (sent_second,) = window.poll(0.005)
    window.receive(reply_to(bytes(sent_first)), 0.006)
    window.settle()
    assert window.next_wakeup() == pytest.approx(0.01)  # the first's expiry
    assert window.exact_wakeup() == pytest.approx(0.015)
    assert window.next_wakeup() == pytest.approx(0.015)
    assert window.poll(0.0149) == []
    assert [bytes(d) for d in window.poll(0.015)] == [bytes(sent_second)]
    assert window.counters.resent == 1 and window.recoveries == 2  # (+ expiry)


@pytest.mark.parametrize("pace", [2e-6, 8e-6, 15e-6])
@pytest.mark.parametrize("pause_every", [100, 333])
def test_a_fast_board_that_pauses_now_and_then_is_never_slept_on(
    pace: float, pause_every: int
) -> None:
    # A fast board in a process of its own: its replies take 60 us to
    # come back, so that the client waits a good part of the time, and a
    # pause of 300 us (the host, a lost reply's wait) makes a round of
    # them look as slow as a paced board's. A pace learnt from such rounds
    # sleeps past what the board had left, and leaves it idle.
    never, coalesced = never_and_coalesced(
        lambda: Board(pace, latency=60e-6, pause_every=pause_every, pause=300e-6),
        8000,
    )
    assert coalesced.coalescer.wakes == 0
    assert coalesced.now <= never.now * 1.002


def test_a_paced_board_that_pauses_now_and_then_is_still_slept_on() -> None:
    board = Board(PACE, latency=60e-6, pause_every=333, pause=300e-6)
    client = Client(board)
    client.run([read(key) for key in range(8000)])
    assert client.coalescer.coalesced >= 0.8 * 8000
    assert client.coalescer.interval == pytest.approx(PACE, rel=0.1)
