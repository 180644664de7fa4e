"""When to take replies: once per several from a paced board (sans-IO).

A board that serves one request every T seconds (a real one, about 70 us
a read) answers a client that keeps W requests on the wire one reply at a
time. A client that receives as soon as a reply can come sleeps and wakes
for each, and the sleep and wake-up cost more CPU than the reply's own
work. Nothing obliges it to: the board has W requests queued, so the
client may sleep about (W - keep) x T, take the replies that gathered in
one go and send as many new requests, and the board still had ``keep``
to serve while the client woke and refilled. Network cards do the same
(interrupt coalescing, Linux's NAPI).

Coalescer says how long the owner (the connection actor) may sleep before
taking replies; the owner sleeps as told and says what it took. It never
touches a clock, a socket or a sleep, so its rules play out exactly under
a fake clock (tests/actors/protocol/test_coalesce.py).

What it learns from what it is told, in rounds of a few takes during
which the board always owed requests (so it was serving all along):

* the board's pace T, as the round's time over its replies, when the
  owner spent a good part of the round waiting (so the board, not the
  owner, set the pace; an owner that found its replies already there is
  the slower one, and sleeping would only let the board run dry): the
  fastest of the last few such rounds, since a pause of the host or the
  board (or a lost reply's wait) only ever makes a round slower, and a
  pace learnt too slow sleeps past the requests the board had left;
* how late a sleep ends (timer slack, scheduling): the sleep asked for
  is that much shorter, with a margin for how much it varies;
* ``keep``: one more after a wake that found the board owing at most the
  one it serves (it may run dry before the refill reaches it), back one
  after a run of takes that left it enough.

What it never does:

* wait with fewer than keep + 2 requests owed: a lone request (a
  version(), a window of 1, a transfer's last replies) is taken as soon
  as it comes; nor while the owner says a job of one request is on the
  wire (a version() asked during a long read);
* wait past the window's next timer (an expiry, a deadline, a busy
  code's retry, a fence's release) or while a resend waits to go;
* wait for a while after the window left the happy path (a resend or an
  expiry): a lossy board's resends go as they did;
* wait before it has learnt a pace, when the wait would gather fewer
  than ``min_gather`` replies, or when it would be shorter than how much
  a sleep's lateness varies: a fast board, whose replies come back to
  back, is never slept on.
"""

from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from actors.protocol.window import Window

#: A sleep ends this late, and varies this much, until measured: on the
#: safe side of Linux's (its default timer slack is 50 us).
_FIRST_LATE = 60e-6
_FIRST_LATE_SPREAD = 20e-6
#: Replies in a round of pace-learning.
_ROUND = 16
#: The share of a round the owner must have spent waiting for the round
#: to say the board's pace.
_PACED = 0.3
#: Paced rounds the pace is the fastest of: a pause of the host or the
#: board only ever makes a round slower, and a board that slows down for
#: good is followed when this many rounds in a row say so.
_PACE_ROUNDS = 4
#: Paced rounds in a row with no sleep before the margin eases.
_EASE_AFTER = 16
#: A wake that finds the board owing fewer than this (at most the one it
#: is serving) may have let it run dry before the refill reaches it.
_LOW = 2
#: Takes in a row that left the board ``keep`` or more before ``keep``
#: comes back down by one (a dry wake put it up).
_RELAX_AFTER = 16


class Coalescer:
    """How long to sleep before taking a paced board's replies.

    ``keep`` is how many requests the board should still owe when the
    owner wakes, at least (more while wakes find it owing one or none): one in
    service, one for the time the refill takes to reach it, and one for
    a board that answers a little after it has served (the virtual
    board's own timer is as late as ours);
    ``max_wait`` caps one sleep (the owner's inbox waits that long at
    most); ``learn`` is how many paced rounds come before the first sleep,
    and ``quiet`` how many replies are taken one by one after the window
    leaves the happy path.
    """

    __slots__ = (
        "keep",
        "interval",
        "late",
        "late_spread",
        "wakes",
        "coalesced",
        "_keep_least",
        "_max_wait",
        "_min_gather",
        "_learn",
        "_quiet_replies",
        "_paced_rounds",
        "_round_time",
        "_round_replies",
        "_round_waited",
        "_round_wakes",
        "_samples",
        "_sleepless",
        "_quiet",
        "_good",
        "_recoveries",
        "_last_take",
        "_wake_at",
    )

    def __init__(
        self,
        *,
        keep: int = 3,
        max_wait: float = 0.001,
        min_gather: int = 3,
        learn: int = 2,
        quiet: int = 16,
    ) -> None:
        if keep < 1:
            raise ValueError(f"keep={keep}: the board must be left at least 1")
        if min_gather < 2:
            raise ValueError(f"min_gather={min_gather}: a wake must gather 2 or more")
        if max_wait <= 0:
            raise ValueError(f"max_wait={max_wait}: must be > 0")
        self.keep = keep
        #: The board's pace: seconds between replies while it is busy
        #: (0 until learnt).
        self.interval = 0.0
        #: How late a sleep ends, and how much that varies (RFC 6298's
        #: smoothing, as the round trip's).
        self.late = _FIRST_LATE
        self.late_spread = _FIRST_LATE_SPREAD
        #: Coalesced wakes so far, and the replies they took.
        self.wakes = 0
        self.coalesced = 0
        self._keep_least = keep
        self._max_wait = max_wait
        self._min_gather = min_gather
        self._learn = learn
        self._quiet_replies = quiet
        #: Rounds in a row that found the board setting the pace.
        self._paced_rounds = 0
        #: The round so far: its time, replies, and time spent waiting.
        self._round_time = 0.0
        self._round_replies = 0
        self._round_waited = 0.0
        self._round_wakes = 0
        #: The last paced rounds' times a reply.
        self._samples: deque[float] = deque(maxlen=_PACE_ROUNDS)
        #: Paced rounds in a row with no sleep.
        self._sleepless = 0
        #: Replies still to take one by one after the happy path was left.
        self._quiet = 0
        #: Takes in a row that left the board ``keep`` or more.
        self._good = 0
        self._recoveries = 0
        #: When replies were last taken with the board still owing some
        #: (-inf: it owed none, so the time since says nothing of its pace).
        self._last_take = -math.inf
        #: When the sleep asked for should end (-inf: no sleep asked).
        self._wake_at = -math.inf

    def wait(self, now: float, window: Window, lone: bool = False) -> float:
        """How long to sleep before taking ``window``'s replies (0.0: take
        the next one as soon as it comes). ``lone``: a job of one request
        (a version(), a small read) is on the wire, whose caller waits for
        that one reply: it is taken as it comes, even amid a long read."""
        if self._paced_rounds < self._learn or self._quiet > 0:
            return 0.0  # (the usual answer for a fast board: first, and quick)
        if lone:
            return 0.0
        recoveries = window.recoveries
        if recoveries != self._recoveries:
            self._recoveries = recoveries
            self._quiet = self._quiet_replies
            return 0.0
        gather = window.in_flight - self.keep
        if gather < 2:
            return 0.0
        interval = self.interval
        # The board has served since the last take, not since now.
        since = self._last_take if self._last_take > -math.inf else now
        margin = self.late + self.late_spread
        wake_by = since + gather * interval - margin
        timer = window.next_wakeup()
        if timer is not None and timer - margin < wake_by:
            # (next_wakeup() may be early: the exact time, only when it
            # would cut the sleep short)
            timer = window.exact_wakeup()
            if timer is not None and timer - margin < wake_by:
                wake_by = timer - margin
        wait = min(wake_by - now, self._max_wait)
        # (A sleep shorter than its lateness varies is a gamble.)
        if wait <= self.late_spread or wait + self.late < self._min_gather * interval:
            return 0.0
        self._wake_at = now + wait
        return wait

    def took(self, now: float, n: int, owed: int, since: float) -> None:
        """``n`` replies were taken at ``now``, of ``owed`` on the wire;
        the owner had waited for them (slept, or blocked in a receive)
        from ``since``."""
        woke = self._wake_at > -math.inf
        if woke:
            self._wake_at, wake_at = -math.inf, self._wake_at
            self._sleep_ended(now - wake_at)
            self.wakes += 1
            self.coalesced += n
        if self._quiet > 0:
            self._quiet -= n
        left = owed - n
        last = self._last_take
        self._last_take = now if left > 0 and n > 0 else -math.inf
        if n <= 0:
            return
        if woke and left < _LOW:
            self._ran_low(left, math.inf if last == -math.inf else (now - last) / n)
        elif last > -math.inf:
            self._round_time += now - last
            self._round_replies += n
            self._round_waited += now - since
            if left >= self.keep:
                self._good += 1
                if self._good >= _RELAX_AFTER and self.keep > self._keep_least:
                    self.keep -= 1
                    self._good = 0
            if self._round_replies >= _ROUND:
                self._end_round()

    def _end_round(self) -> None:
        """The board owed requests all round: if the owner waited a good
        part of it, the board set the pace, and the pace is the fastest of
        the last _PACE_ROUNDS such rounds (a board that slows down for good
        is followed when they all say so; one that speeds up, at once)."""
        sample = self._round_time / self._round_replies
        paced = self._round_waited >= _PACED * self._round_time
        self._round_time = self._round_waited = 0.0
        self._round_replies = 0
        if paced and self.wakes == self._round_wakes:
            self._sleepless += 1
            if self._sleepless >= _EASE_AFTER:
                # Perhaps the margin forbids every sleep: it eases halfway
                # back to a sleep's usual lateness, or no sleep would ever
                # show that lateness has come down again.
                self._sleepless = 0
                self.late += (_FIRST_LATE - self.late) * 0.5
                self.late_spread += (_FIRST_LATE_SPREAD - self.late_spread) * 0.5
        else:
            self._sleepless = 0
        self._round_wakes = self.wakes
        if not paced:
            self._paced_rounds = 0
            self._samples.clear()
        else:
            samples = self._samples
            samples.append(sample)
            self.interval = min(samples)
            self._paced_rounds += 1

    def _ran_low(self, left: int, sample: float) -> None:
        """A wake found the board owing fewer than _LOW: it may run dry
        before the refill reaches it. Leave it one more next time; if it
        owed nothing, its pace was at most ``sample``."""
        self.keep += 1
        self._good = 0
        if left <= 0 and sample < self.interval:
            self._samples.append(sample)
            self.interval = sample

    def _sleep_ended(self, late: float) -> None:
        """A sleep asked for ended ``late`` seconds after it should have.
        A stall (more than twice as late as usual) counts as twice: the
        odd one is the board's to bear (``keep``, and a wake that finds it
        low), and a margin that grew with each would forbid the sleeps,
        and with them the learning."""
        late = min(max(late, 0.0), 2 * self.late)
        error = late - self.late
        self.late += error * 0.125
        self.late_spread += (abs(error) - self.late_spread) * 0.125
