"""The connection actor: one per board, owning its socket and its window.

Jobs arrive in batches (Submit, or put in the JobBook and a Wake). Between
inbox messages the actor pumps the socket: it sends while the window has
room, waits for replies (MAX_BLOCK at a time, then looks at its timers and
inbox), takes every reply already waiting before sending again, and hands
finished jobs' outcomes back in batches. When the board answers at its own
pace, one reply at a time, the actor sleeps as its Coalescer says (never
longer than MAX_BLOCK / 2) and takes the replies that gathered in one go.
A pump runs for at most one slice or until a message is waiting, then posts
itself a _Pump to carry on, so stop and stats are never stuck behind I/O.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any

from actors.connection.book import JobBook
from actors.connection.messages import ConnectionStats as ConnectionStats
from actors.connection.messages import GetConnectionStats as GetConnectionStats
from actors.connection.messages import Submit as Submit
from actors.connection.messages import Wake as Wake
from actors.errors import Cancelled, PortRefused, RequestTimeout, ShutDown
from actors.protocol.coalesce import Coalescer
from actors.protocol.fences import Claim
from actors.protocol.jobs import Outcome, OutcomeSink, written_span
from actors.protocol.requests import Request
from actors.protocol.runs import JobRun, MemoryRun
from actors.protocol.settings import WindowSettings
from actors.protocol.window import Window
from actors.ratelimit.lease import RateLimit
from actors.ratelimit.limiter import Limiter
from actors.supervision.child import CrashInjected, Supervised, Watch
from transport.connections.abstract import BoardConnection
from transport.errors import (
    ConnectionClosed,
    ReceiveTimeout,
    TransportError,
    refused_text,
)
from transport.links.endpoint import DatagramEndpoint, UDPEndpoint
from transport.logs import get_logger

log = get_logger(__name__)

#: How long one blocking receive lasts at most: how late a message in the
#: inbox, or a timer, can be noticed while replies are awaited.
MAX_BLOCK = 0.002
#: A receive that returns sooner than this found its reply already waiting,
#: so more may be: a burst worth taking before sending again.
ALREADY_WAITING = 20e-6
#: The longest one pump runs before letting the inbox in.
PUMP_SLICE = 0.02
#: Outcomes are held back to go in one batch, but no more than this many
#: and no longer than FLUSH_DELAY (not at all once their sink has no other
#: job open here: a version() asked during a long read is not held up).
_FLUSH_AT = 256
FLUSH_DELAY = 0.001
#: How many windows' worth of requests are made ahead of sending.
_QUEUE_WINDOWS = 4


@dataclass(frozen=True)
class _Pump:
    """Carry on with the I/O (posted by the actor to itself)."""


class ConnectionActor(Supervised):
    """Runs jobs over one connection (a SCAMPConnection, or any other
    object as a transport.connections.driven.DrivenConnection) through one Window.

    ``connect`` makes the connection when the actor starts (and, under a
    supervisor, again after a restart). ``owns_connection`` False leaves a
    caller's connection open when the actor stops. ``fail_refused`` ends
    every open job with PortRefused as soon as a receive is refused (the
    board's port is closed) instead of trying again. Jobs live in ``book``:
    under a supervisor (``watch`` given) a failed actor leaves its open
    jobs there for the next incarnation, which resends what had no reply;
    otherwise they end with ShutDown. ``sleep`` is how it sleeps while a
    paced board's replies gather (with ``clock``, a FakeClock's in tests).
    """

    def __init__(
        self,
        connect: Callable[[], BoardConnection],
        settings: WindowSettings | None = None,
        *,
        limiter: Limiter | None = None,
        lease_size: int = 32,
        owns_connection: bool = True,
        book: JobBook | None = None,
        fail_refused: bool = False,
        watch: Watch | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(watch=watch)
        self._fail_refused = fail_refused
        self._book = book if book is not None else JobBook()
        self._rate = (
            None if limiter is None else RateLimit(limiter, lease_size=lease_size)
        )
        self._connect = connect
        self._settings = settings or WindowSettings()
        self._owns_connection = owns_connection
        self._clock = clock
        self._sleep = sleep
        self._coalesce = Coalescer(max_wait=MAX_BLOCK / 2)
        self._connection: BoardConnection | None = None
        self._endpoint: DatagramEndpoint | None = None
        self._window = Window(
            self._settings,
            first_sequence=self._book.next_sequence,
            holds=self._book.take_holds(),
        )
        #: The write fences of this incarnation's runs.
        self._fences: dict[JobRun, Claim | None] = {}
        #: Runs with pieces still to hand to the window, oldest first.
        self._runs: deque[JobRun] = deque()
        #: Outcomes held back to go in one batch (see _FLUSH_AT).
        self._pending: list[tuple[OutcomeSink, Outcome]] = []
        #: Open runs by their sink's id: a sink with none left is owed
        #: nothing more, so what it is owed goes at once.
        self._open_by_sink: dict[int, int] = {}
        #: Open jobs of one request (a version(), a small read): while one
        #: is on the wire, replies are not slept on (see coalesce.py).
        self._lone: set[JobRun] = set()
        self._starved = False
        self._flush_by = 0.0
        self._foreign = 0
        self._pump_posted = False
        self._send_errors = 0
        self._cancelled = 0
        self._log = log.bind(actor="connection")

    # -- pykka hooks -----------------------------------------------------------

    def on_start(self) -> None:
        try:
            self._connection = connection = self._connect()
        except Exception as error:
            # pykka does not call on_failure for on_start: say why here.
            self._log.error("connection.start_failed", error=repr(error))
            self.report_exit(error)
            raise
        host, port = connection.remote_ip_address, connection.remote_port
        assert host is not None
        assert port is not None
        self._remote = (host, port)
        self._endpoint = endpoint = connection.endpoint
        self._send_to = endpoint.send_to
        self._send_many = (
            endpoint.send_many if isinstance(endpoint, UDPEndpoint) else None
        )
        self._receive = endpoint.receive_from
        self._receive_waiting = endpoint.receive_waiting
        self._log = self._log.bind(peer=f"{host}:{port}")
        self._log.debug(
            "connection.start",
            window=self._settings.size,
            open_jobs=len(self._book.open),
        )
        for run in list(self._book.open):  # left by a failed incarnation
            outcome = run.restart()
            if outcome is not None:
                del self._book.open[run]
                self._pending.append((run.sink, outcome))
            else:
                self._opened(run)
                if run.has_more:
                    self._runs.append(run)
        if self._book.open or self._book.has_incoming:
            self._pump()
        self._flush()  # e.g. a job ended by restart() with nothing to send

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _Pump):
            self._pump_posted = False
            self._pump()
            return None
        if isinstance(message, Submit):
            self._book.put(message.jobs, message.sink)
            self._pump()
            return None
        if isinstance(message, Wake):
            self._pump()
            return None
        if isinstance(message, GetConnectionStats):
            return self.stats()
        return super().on_receive(message)

    def on_stop(self) -> None:
        if self._book.parked:  # left for whoever parked them
            self._flush()
        else:
            self._end_all(ShutDown("the connection was stopped"))
        self._close()
        self._log.debug("connection.stop")
        super().on_stop()

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if isinstance(exception_value, CrashInjected):  # asked for: no error
            self._log.info("connection.crash_injected", error=str(exception_value))
        else:
            self._log.error("connection.failed", error=repr(exception_value))
        if self.watch is None:
            self._end_all(ShutDown(f"the connection failed: {exception_value!r}"))
        else:
            self._flush()  # what is done is delivered; the rest waits
        self._close()
        super().on_failure(exception_type, exception_value, traceback)

    # -- work --------------------------------------------------------------------

    def stats(self) -> ConnectionStats:
        counters = self._window.counters
        connection = self._connection
        now = self._clock()
        return ConnectionStats(
            remote=(
                ""
                if connection is None
                else f"{connection.remote_ip_address}:{connection.remote_port}"
            ),
            window=self._settings.size,
            sent=counters.sent,
            resent=counters.resent,
            fast_resent=counters.fast_resent,
            retry_code_resent=counters.retry_code_resent,
            timeouts=counters.timeouts,
            completed=counters.completed,
            failed=counters.failed,
            duplicates=counters.duplicates,
            malformed=counters.malformed
            + (0 if connection is None else getattr(connection, "n_unreadable", 0)),
            foreign=self._foreign + (0 if connection is None else connection.n_foreign),
            send_errors=self._send_errors,
            open_jobs=len(self._book.open),
            rtt=self._window.rtt.stats(),
            retired=counters.retired,
            late=counters.late,
            refused=self._refused(),
            local=_text(None if connection is None else self._endpoint),
            cancelled=self._cancelled,
            in_flight=self._window.in_flight,
            error_codes=dict(counters.error_codes),
            last_reply_age=(
                None
                if counters.last_heard == -math.inf
                else max(0.0, now - counters.last_heard)
            ),
            silent_for=self._window.silent_for(now),
            wakes=self._coalesce.wakes,
            coalesced=self._coalesce.coalesced,
        )

    def _take_jobs(self) -> None:
        """Start runs for the jobs put in the book since the last look."""
        connection = self._connection
        assert connection is not None
        source = (connection.chip_x, connection.chip_y)
        now = self._clock()
        for hold in self._book.take_holds():
            self._window.hold(hold)
        for jobs, sink in self._book.take_incoming():
            for job in jobs:
                run = JobRun.of(job, sink, now, source)
                if run.n_pieces == 0:
                    self._pending.append((sink, run.finish_empty()))
                    continue
                self._runs.append(run)
                self._book.open[run] = None
                self._opened(run)

    def _opened(self, run: JobRun) -> None:
        key = id(run.sink)
        self._open_by_sink[key] = self._open_by_sink.get(key, 0) + 1

    def _feed(self, now: float) -> None:
        """Top up the window's queue from the jobs, a few windows' worth at
        a time, making the requests only as they are wanted."""
        window, runs = self._window, self._runs
        wanted = _QUEUE_WINDOWS * self._settings.size - window.queued
        while wanted > 0 and runs:
            run = runs[0]
            if run.ended:  # (cancelled, or failed before all was fed)
                runs.popleft()
                continue
            fence = self._fence(run)
            if run.n_pieces == 1:
                self._lone.add(run)
            span = run.take_span()
            if span is not None:
                # A read or write: one queue entry, pieces made as sent.
                assert isinstance(run, MemoryRun)
                window.add_bulk(run, *span, fence)
                runs.popleft()
                wanted -= 1
                continue
            requests = run.take(wanted)
            wanted -= len(requests)
            if run.deadline is None:
                window.add_all(requests, fence)
            else:
                for request in requests:
                    window.add(request, now, fence)
            if not run.has_more:
                runs.popleft()

    def _fence(self, run: JobRun) -> Claim | None:
        """The claim on the memory ``run`` writes (None for the rest)."""
        fences = self._fences
        if run in fences:
            return fences[run]
        written = written_span(run.job)
        fence = None if written is None else self._window.claim(*written)
        fences[run] = fence
        return fence

    def _pump(self) -> None:
        """Send and receive until the work is done, the slice is over or a
        message is waiting."""
        window, clock = self._window, self._clock
        inbox_waiting = _inbox_probe(self.actor_inbox)
        if self._book.has_incoming:
            self._take_jobs()
        now = clock()
        if self._book.has_cancels:
            self._cancel(now)
        slice_end = now + PUMP_SLICE
        while True:
            self._send_due(now)
            # What the replies left for later, now that the board has its
            # next requests.
            if window.settle():
                self._collect(now)
            if not window.open_requests or now >= slice_end or inbox_waiting():
                break
            if self._pending and (
                now >= self._flush_by or len(self._pending) >= _FLUSH_AT
            ):
                self._flush()
            if self._rate is not None and window.resends_waiting and not self._starved:
                now = clock()  # (only a rate limit leaves resends unsent)
                continue
            now = self._await_replies()
            self._hand_over_lone(now)
        self._flush()
        if window.open_requests and not self._pump_posted:
            self._pump_posted = True
            self.actor_ref.tell(_Pump())

    def _send_due(self, now: float) -> None:
        """Top up the window from the jobs and send what it says is due,
        within the rate limit's budget."""
        window, rate = self._window, self._rate
        if self._runs and window.queued < self._settings.size:
            self._feed(now)
        if window.timer_due(now) and window.in_flight:
            self._take_waiting(now)
            self._hand_over_lone(now)
        if rate is None:
            self._send(window.poll(now))
        else:
            budget = rate.available(now)
            datagrams = window.poll(now, budget)
            rate.spend(len(datagrams))
            self._starved = len(datagrams) == budget
            self._send(datagrams)

    def _take_waiting(self, now: float) -> None:
        """Before timers run, the replies already waiting: a thread that
        was stalled past a timeout (descheduled by the host) finds them
        there, and the requests they answer must not expire."""
        owed = self._window.in_flight
        taken = self._receive_waiting(owed)
        if taken:
            self._foreign += self._window.receive_all(taken, self._remote, now)
            self._coalesce.took(now, len(taken), owed, now)

    def _hand_over_lone(self, now: float) -> None:
        """While a job of one request is open (a version() during a long
        read), whose caller waits for its reply alone: what has ended goes
        now, before the refill is sent."""
        if self._lone and self._window.has_completed:
            self._collect(now)
            self._flush()

    def _await_replies(self) -> float:
        """Sleep as the coalescer says and take the replies that gathered;
        or wait up to MAX_BLOCK for a reply and, if it was already waiting,
        take every other reply waiting too (so the board gets its next
        requests in a burst). The time after."""
        clock, window, coalesce = self._clock, self._window, self._coalesce
        waited_from = clock()
        owed = window.in_flight
        wait = coalesce.wait(waited_from, window, bool(self._lone))
        if wait:
            self._sleep(wait)
            now = clock()
            taken = self._receive_waiting(owed)
            coalesce.took(now, len(taken), owed, waited_from)
            if taken:
                self._foreign += window.receive_all(taken, self._remote, now)
                return now
            waited_from = now
        try:
            # Always the same wait, so the socket's timeout is set once;
            # timers fire up to MAX_BLOCK late.
            data, sender = self._receive(MAX_BLOCK)
        except ReceiveTimeout:
            if self._fail_refused and self._refused() > 0:
                host, port = self._remote
                self._end_all(PortRefused(refused_text(host, port)))
            now = clock()
            coalesce.took(now, 0, owed, waited_from)
            return now
        now = clock()
        if sender != self._remote:  # (an unconnected socket lets them in)
            self._foreign += 1
            following = None
        else:
            following = window.receive(data, now, self._rate is None)
        if following is not None:
            # The next piece goes before any bookkeeping: one request at a
            # time, the board waits for nothing else.
            self._send((following,))
            return now
        in_flight = window.in_flight
        n = 1
        if in_flight and now - waited_from < ALREADY_WAITING:
            # (A reply that had to be waited for came alone, from a paced
            # board: looking for more would only cost a receive that fails.)
            more = self._receive_waiting(in_flight)
            n += len(more)
            self._foreign += window.receive_all(more, self._remote, now)
        coalesce.took(now, n, owed, waited_from)
        return now

    def _send(self, datagrams: Sequence[bytearray]) -> None:
        """Send to the board (several in one system call where the
        endpoint can); a send the OS refuses is resent like a loss, a
        closed connection fails the actor."""
        send, remote = self._send_to, self._remote
        if len(datagrams) > 1 and self._send_many is not None:
            went = self._send_many(datagrams, remote)
            if went:
                datagrams = datagrams[went:]
        for datagram in datagrams:
            try:
                send(datagram, remote)
            except TransportError as error:
                self._send_failed(error)

    def _send_failed(self, error: TransportError) -> None:
        if isinstance(error, ConnectionClosed):
            raise error
        # Not sent: the request expires and is resent like a lost one.
        self._send_errors += 1
        self._log.warning("connection.send_failed", error=str(error))

    def _collect(self, now: float) -> None:
        """Route finished requests to their jobs; queue the outcomes."""
        window = self._window
        for bulk in window.take_finished_bulks():
            assert isinstance(bulk, JobRun)
            self._ended(bulk, bulk.take_outcome(), now)
        for request in window.take_completed():
            run: JobRun = request.key[0]  # type: ignore[index]
            outcome = run.complete(request)
            if outcome is not None:
                self._ended(run, outcome, now)

    def _ended(self, run: JobRun, outcome: Outcome, now: float) -> None:
        if not self._pending:
            self._flush_by = now + FLUSH_DELAY
        key, by_sink = id(run.sink), self._open_by_sink
        left = by_sink[key] - 1
        if left:
            by_sink[key] = left
        else:
            del by_sink[key]
            self._flush_by = now  # the last this sink is owed
        del self._book.open[run]
        self._lone.discard(run)
        fence = self._fences.pop(run, None)
        if type(outcome.error) is RequestTimeout:
            outcome = replace(outcome, error=self._unanswered(outcome.error, run, now))
        if outcome.error is not None:
            # Nothing of a failed job is sent again: its pieces on the wire
            # are retired, and its fence held until no copy can land.
            self._window.ended(
                now,
                fence,
                unwanted=_of_run(run),
                bulk=run if isinstance(run, MemoryRun) else None,
            )
        elif fence is not None:
            self._window.ended(
                now, fence, clean=not (outcome.resends or outcome.timeouts)
            )
        self._pending.append((run.sink, outcome))

    def _refused(self) -> int:
        """Receives refused so far (only a connected UDP socket counts)."""
        return int(getattr(self._endpoint, "refused", 0))

    def _unanswered(
        self, error: RequestTimeout, run: JobRun, now: float
    ) -> RequestTimeout:
        """A timeout that says where, how long (to the ms under 0.1 s: a
        learnt wait is a few ms), and what to check."""
        host, port = self._remote
        hint = (
            "check the address, or that a board answers there "
            "(spinnactors board serves a virtual one)"
            if not self._refused()
            else "its port is closed (ICMP refused): is a board there?"
        )
        text = str(error).replace("no reply", f"no reply from {host}:{port}", 1)
        took = now - run.started
        return RequestTimeout(
            f"{text} in {took:.{1 if took >= 0.1 else 3}f} s; {hint}",
            sends=error.sends,
            waited=took,
            address=self._remote,
        )

    def _cancel(self, now: float) -> None:
        """End the jobs their callers gave up on: what of them is queued
        leaves the window, what is on the wire is retired (its late
        replies counted and dropped), and each gets its one outcome,
        Cancelled, which its sink then discards."""
        wanted = self._book.take_cancels()
        for run in [
            run for run in self._book.open if (id(run.sink), run.job.key) in wanted
        ]:
            self._cancelled += 1
            self._ended(run, run.fail(Cancelled(f"job {run.job.key!r}")), now)

    def _flush(self) -> None:
        """Hand the outcomes held back to their sinks, a batch per sink."""
        if self._pending:
            pending, self._pending = self._pending, []
            self._book.deliver(pending)

    def _end_all(self, error: BaseException) -> None:
        """Give every open job its outcome: ``error``."""
        self._window.fail_all(ShutDown(str(error)))
        self._window.take_completed()
        for jobs, sink in self._book.take_incoming():
            for job in jobs:
                self._pending.append((sink, Outcome(job.key, error=error)))
        for run in self._book.open:
            self._pending.append((run.sink, run.fail(error)))
        self._book.open.clear()
        self._open_by_sink.clear()
        self._runs.clear()
        self._flush()

    def _close(self) -> None:
        self._book.next_sequence = self._window.next_sequence
        # A successor must not write under copies of ours still in flight.
        self._book.hold(self._window.holds(self._clock()))
        if self._connection is not None and self._owns_connection:
            self._connection.close()


def _text(endpoint: DatagramEndpoint | None) -> str:
    return "" if endpoint is None else "{}:{}".format(*endpoint.address)


def _of_run(run: JobRun) -> Callable[[Request], bool]:
    def belongs(request: Request) -> bool:
        return request.key[0] is run  # type: ignore[index]

    return belongs


def _inbox_probe(inbox: Any) -> Callable[[], bool]:
    """A cheap "is a message waiting?" for the pump's inner loop: the
    length of a queue.Queue's deque (atomic under the GIL) instead of
    empty(), which takes a lock."""
    items = getattr(inbox, "queue", None)
    if isinstance(items, deque):
        return items.__len__  # type: ignore[return-value]
    return lambda: not inbox.empty()
