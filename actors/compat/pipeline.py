"""SCPRequestPipeLine: SpiNNMan's pipeline, driven by a ConnectionActor.

Code written for SpiNNMan keeps working: the same constructor, the same
send_request / finish calls, callbacks run on the caller's thread inside
those calls, and the same counters. Behind it, requests go to the one
ConnectionActor of the connection in batches, each with its own
retransmission timer, so a lost packet costs one resend, not a stalled
window.
"""

from __future__ import annotations

import itertools
import queue
from collections.abc import Callable, Hashable, Iterable
from dataclasses import replace
from types import TracebackType
from typing import Any, Generic, TypeVar

import pykka

from actors.compat.coalesce import RUN_LIMIT, Run, span_of, start_run
from actors.compat.foreign import (
    ForeignRequest,
    check_request,
    datagram_maker,
    speaks_spinnman,
    spinnman_error,
)
from actors.compat.shared import SHARED, ConnectionGroup
from actors.connection.book import next_outcomes
from actors.errors import RequestTimeout, ShutDown
from actors.lifetime import track
from actors.protocol.jobs import Job, Outcome, SCPJob
from actors.protocol.settings import WindowSettings
from actors.supervision.messages import SupervisorStats
from messages.errors import InvalidArgumentError
from messages.scp.base import AbstractSCPRequest, AbstractSCPResponse
from messages.scp.enums import SCPResult
from messages.scp.layout import parse_reply
from messages.validate import caller_names, check_int
from transport.connections.driven import cannot_send, is_plain
from transport.connections.scamp import SCAMPConnection
from transport.logs import get_logger

log = get_logger(__name__)

R = TypeVar("R", bound=AbstractSCPResponse)
Callback = Callable[[R], None]
ErrorCallback = Callable[
    [AbstractSCPRequest[R], Exception, TracebackType | None, SCAMPConnection], None
]

#: SpiNNMan's defaults.
N_RETRIES = 10
SCP_TIMEOUT = 1.0
#: Requests handed to the actor in one message.
_BATCH = 32


def pipeline_boards() -> list[tuple[str, pykka.ActorRef[Any] | None]]:
    """The boards SCPRequestPipeLines talk to now, each with the
    ConnectionActor of its connection (None while it restarts): code
    written for SpiNNMan has no Client to ask."""
    return SHARED.boards()


def given_up_pipeline_boards() -> list[tuple[str, SupervisorStats]]:
    """The boards SCPRequestPipeLines talked to whose connection's
    supervisor gave up, until their connection's owner closes it, each
    with that supervisor's last figures (it has stopped)."""
    return SHARED.given_up()


def window_settings(
    n_channels: int | None,
    intermediate_channel_waits: int | None,
    n_retries: int,
    packet_timeout: float,
    non_fail_retry_codes: Iterable[SCPResult] | None,
) -> WindowSettings:
    """SpiNNMan's pipeline parameters as a window's settings, each refused
    under SpiNNMan's name for it. A receive threshold at or past the
    window's size becomes size - 1 (a sliding window)."""
    with caller_names(
        size="n_channels", retries="n_retries", initial_rto="packet_timeout"
    ):
        settings = WindowSettings.from_timeout(
            packet_timeout,
            size=8 if n_channels is None else n_channels,
            retries=n_retries,
            non_fail_retry_codes=frozenset(
                # (SpiNNMan's SCPResult has the same values as ours)
                SCPResult(getattr(code, "value", code))
                for code in non_fail_retry_codes or ()
            ),
        )
    waits = intermediate_channel_waits
    if waits is None:
        waits = max(settings.size - 8, 0)
    check_int("intermediate_channel_waits", waits, 0)
    return replace(settings, refill_at=min(waits, settings.size - 1))


class SCPRequestPipeLine(Generic[R]):
    """Pipelines SCP requests over one connection, SpiNNMan-style.

    ``n_channels`` requests are on the wire at once; once that many are,
    new ones wait until no more than ``intermediate_channel_waits`` are
    outstanding (SpiNNMan's meaning: 0 drains the window first). Each
    request may be resent ``n_retries`` times; ``packet_timeout`` is the
    longest wait for a reply (the actual wait adapts to the round trips
    seen). A result in ``non_fail_retry_codes`` that persists past the
    retries is handed to the callback instead of failing.

    ``connection`` is any object with SpiNNMan's connection surface
    (``send``, ``receive_scp_response`` or ``receive``,
    ``is_ready_to_receive``, ``close``, and ``get_scp_data`` if it stamps
    requests its own way): SpiNNMan's SCAMP, BMP or spalloc-proxied
    connections, a subclass or wrapper that logs or counts, a mock. It is
    driven through those methods; only an unmodified SCAMPConnection of
    ours has its socket used directly (the fast path). One with no remote
    address is refused only if its ``send`` is a UDP connection's own.

    ``request`` may be ours or SpiNNMan's (see actors/compat/foreign.py):
    SpiNNMan's get SpiNNMan's exceptions in their error callbacks.

    The connection's actor is supervised (see actors/compat/shared.py):
    one that fails mid-transfer is restarted and its requests resent, each
    still answered once.
    """

    def __init__(
        self,
        connection: SCAMPConnection,
        n_channels: int | None = 1,
        intermediate_channel_waits: int | None = 0,
        n_retries: int = N_RETRIES,
        packet_timeout: float = SCP_TIMEOUT,
        non_fail_retry_codes: Iterable[SCPResult] | None = None,
    ) -> None:
        if cannot_send(connection):
            raise InvalidArgumentError(
                "connection",
                connection,
                "has no remote address: a pipeline must be able to send "
                "(give the connection a remote_host)",
            )
        self._settings = window_settings(
            n_channels,
            intermediate_channel_waits,
            n_retries,
            packet_timeout,
            non_fail_retry_codes,
        )
        self._packet_timeout = packet_timeout
        self._connection = connection
        #: How the connection makes a request into a datagram (its own
        #: get_scp_data, SpiNNMan's way); for our requests only on a
        #: connection driven through its methods (an unmodified one of ours
        #: has the actor stamp them).
        self._datagram = datagram_maker(connection)
        self._stamp_ours = not is_plain(connection) and hasattr(
            connection, "get_scp_data"
        )
        self._group: ConnectionGroup | None = None
        self._outcomes: queue.SimpleQueue[list[Outcome]] = queue.SimpleQueue()
        self._keys = itertools.count()
        self._pending: dict[
            int, tuple[AbstractSCPRequest[R], Callback[R] | None, ErrorCallback[R]]
        ] = {}
        self._batch: list[Job] = []
        #: SpiNNMan's reads or writes of one region being gathered, and
        #: those handed over, by key (actors/compat/coalesce.py).
        self._run: Run | None = None
        self._runs: dict[Hashable, Run] = {}
        #: Outcomes taken but not yet called back (an error callback raised).
        self._leftover: list[Outcome] = []
        #: Requests handed over before send_request waits for callbacks: a
        #: few batches, or eight of SpiNNMan's runs (with fewer queued, a
        #: board answering at a real board's pace goes idle at each run's
        #: end, as the connection actor's jobs end one by one).
        self._high_water = max(4 * _BATCH, 4 * self._settings.size, 8 * RUN_LIMIT)
        self._n_resent = 0
        self._n_retry_code_resent = 0
        self._n_timeouts = 0
        track(self._abandon)  # let go of at exit if finish() never came

    # -- SpiNNMan's API --------------------------------------------------------

    def send_request(
        self,
        request: AbstractSCPRequest[R],
        callback: Callback[R] | None,
        error_callback: ErrorCallback[R],
    ) -> None:
        """Queue ``request``; ``callback(response)`` or
        ``error_callback(request, exception, traceback, connection)`` runs
        later, on this thread, inside send_request or finish."""
        check_request(request)
        if callback is not None and not callable(callback):
            raise InvalidArgumentError("callback", callback, "must be callable or None")
        if not callable(error_callback):
            raise InvalidArgumentError(
                "error_callback", error_callback, "must be callable"
            )
        key = next(self._keys)
        span = None if isinstance(request, AbstractSCPRequest) else span_of(request)
        job = None if span is not None else self._job(key, request)
        if self._group is None:
            self._group = SHARED.acquire(self._connection, self._settings)
        self._pending[key] = (request, callback, error_callback)
        if span is None:
            assert job is not None
            self._batch.append(job)
        else:
            self._gather(key, request, span)
        if len(self._batch) >= _BATCH:
            self._flush(close_run=False)
        self._run_callbacks(block=False)
        while self._handed_over > self._high_water:
            self._flush(close_run=False)
            self._run_callbacks(block=True)

    def finish(self) -> None:
        """Return once every request sent has had one of its callbacks
        (including requests those callbacks sent)."""
        try:
            while self._pending or self._leftover:
                self._flush()
                self._run_callbacks(block=True)
        finally:
            if self._group is not None and not self._pending:
                self._group = None
                SHARED.release(self._connection)

    @property
    def n_channels(self) -> int:
        return self._settings.size

    @property
    def n_resent(self) -> int:
        """Resends for any reason (timeouts and busy codes)."""
        return self._n_resent

    @property
    def n_retry_code_resent(self) -> int:
        """Resends because the board answered with a retry code."""
        return self._n_retry_code_resent

    @property
    def n_timeouts(self) -> int:
        """Replies waited for in vain (each led to a resend or a failure)."""
        return self._n_timeouts

    # -- inside ----------------------------------------------------------------

    def _job(self, key: int, request: Any) -> SCPJob:
        """The job for ``request``: ours as it is (made into a datagram by
        the actor, or by a driven connection's get_scp_data); anyone
        else's as a ForeignRequest, its datagram made here, on the
        caller's thread, as SpiNNMan's pipeline makes it."""
        if isinstance(request, AbstractSCPRequest):
            if self._stamp_ours:
                return SCPJob(key, request, datagram=self._datagram(request))
            return SCPJob(key, request)
        return SCPJob(
            key, ForeignRequest(request), None, self._datagram(request), False
        )

    def _gather(self, key: int, request: Any, span: Any) -> None:
        """Add a SpiNNMan read or write to the run it carries on, or start
        a run with it (handing over the run it does not fit)."""
        run = self._run
        if run is None or not run.takes(span):
            self._close_run()
            run = self._run = start_run(("run", key), span)
        run.add(key, span, self._datagram(request) if span.kind == "write" else None)
        if len(run.members) >= RUN_LIMIT:
            self._close_run()

    def _close_run(self) -> None:
        """Hand the run being gathered over, as one ReadJob or WriteJob,
        with whatever else is waiting to go."""
        run, self._run = self._run, None
        if run is not None:
            self._runs[run.key] = run
            self._batch.append(run.job())
            self._flush(close_run=False)  # (a run is a batch's worth)

    def _abandon(self) -> None:
        """At exit, without finish(): the caller has gone, so no callback
        runs; requests not yet handed over end with ShutDown here, and
        letting go of the connection (the last user stops its actor) ends
        the rest with ShutDown and closes nothing it does not own."""
        batch, self._batch = self._batch, []
        if batch:
            error = ShutDown("the interpreter is exiting")
            self._outcomes.put([Outcome(job.key, error=error) for job in batch])
        if self._group is not None:
            self._group = None
            SHARED.release(self._connection)

    @property
    def _handed_over(self) -> int:
        """Requests sent and not yet called back, less those of the run
        still being gathered (waiting cannot bring those back)."""
        gathering = 0 if self._run is None else len(self._run.members)
        return len(self._pending) - gathering

    def _flush(self, close_run: bool = True) -> None:
        """Hand the requests gathered over to the connection actor (and
        the run being gathered, unless ``close_run`` is False)."""
        if close_run:
            self._close_run()
        if not self._batch:
            return
        batch, self._batch = self._batch, []
        group = self._group
        assert group is not None
        if not group.alive:
            error = ShutDown("the connection's supervisor has stopped")
            self._outcomes.put([Outcome(job.key, error=error) for job in batch])
            return
        group.post(batch, self._outcomes)

    def _run_callbacks(self, block: bool) -> None:
        """Take the outcomes that have come (waiting for some if
        ``block``) and call each request's callback or error callback."""
        if self._leftover:
            outcomes, self._leftover = self._leftover, []
        elif not block and self._outcomes.empty():
            return  # (the usual case inside send_request: no exception raised)
        else:
            try:
                outcomes = self._outcomes.get_nowait()
            except queue.Empty:
                if not block:
                    return
                outcomes = self._wait_for_outcomes()
        if self._runs:
            outcomes = self._expand(outcomes)
        for index, outcome in enumerate(outcomes):
            try:
                self._run_callback(outcome)
            except BaseException:
                # An error callback raised: the caller sees it, and the
                # rest of the batch waits for the next call.
                self._leftover = outcomes[index + 1 :]
                raise

    def _expand(self, outcomes: list[Outcome]) -> list[Outcome]:
        """Each run's outcome as its requests' outcomes: their replies
        (the run's resends counted with the first); a failed run's reads
        sent again one by one (a run of one too: SpiNNMan's response then
        reads the board's error code, and raises what SpiNNMan's callers
        expect), its writes failed (coalesce.py says why). A run the board
        never answered fails every request in it, as SpiNNMan's pipeline
        fails each of them against a silent board."""
        out: list[Outcome] = []
        for outcome in outcomes:
            run = self._runs.pop(outcome.key, None)
            if run is None:
                out.append(outcome)
                continue
            counts = (outcome.resends, outcome.retry_code_resent, outcome.timeouts)
            unanswered = isinstance(outcome.error, RequestTimeout)
            if outcome.error is None:
                for key, reply in run.replies(outcome.value):
                    out.append(Outcome(key, reply, None, *counts))
                    counts = (0, 0, 0)
            elif run.kind == "read" and not unanswered:
                for key, _ in run.members:
                    request = self._pending[key][0]
                    self._batch.append(self._job(key, request))
                self._n_resent += outcome.resends
                self._n_retry_code_resent += outcome.retry_code_resent
                self._n_timeouts += outcome.timeouts
            else:
                for key, _ in run.members:
                    out.append(Outcome(key, None, outcome.error, *counts))
                    counts = (0, 0, 0)
        return out

    def _wait_for_outcomes(self) -> list[Outcome]:
        group = self._group
        batch = next_outcomes(self._outcomes, lambda: group is not None and group.alive)
        if batch is None:
            error = ShutDown("the connection actor stopped without answering")
            return [Outcome(key, error=error) for key in self._pending]
        return batch

    def _run_callback(self, outcome: Outcome) -> None:
        entry = self._pending.pop(outcome.key, None)  # type: ignore[call-overload]
        if entry is None:
            return
        request, callback, error_callback = entry
        self._n_resent += outcome.resends
        self._n_retry_code_resent += outcome.retry_code_resent
        self._n_timeouts += outcome.timeouts
        error = outcome.error
        if error is None:
            try:
                response = parse_reply(request, outcome.value)
                if callback is not None:
                    callback(response)
                return
            except Exception as failure:  # noqa: BLE001 - goes to the caller
                error = failure
        elif speaks_spinnman(request):
            error = spinnman_error(error, request, self._packet_timeout)
        assert isinstance(error, Exception)
        error_callback(request, error, error_traceback(error), self._connection)


def error_traceback(error: BaseException) -> TracebackType | None:
    """The error's traceback; one made here for an error that was never
    raised (the window's), as SpiNNMan hands a real one."""
    if error.__traceback__ is not None:
        return error.__traceback__
    try:
        raise error
    except BaseException as raised:  # noqa: BLE001 - only to take its traceback
        return raised.__traceback__
