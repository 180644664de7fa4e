"""Prometheus metrics and a health check, read from the live objects.

Nothing here runs on the hot path: the counters are the ones ``stats()``
already keeps, and they are read only when someone scrapes. ``enable()``
registers one collector that, at each scrape, finds what is open in this
process (clients and Machines, whose workers send their boards' figures
back, the connections SCPRequestPipeLines drive, listeners, supervisors,
rate limiters and virtual boards) and asks each for a snapshot, all of
a kind at once and within one timeout (actors/scrape.py); the
sensors of the BMPs registered with actors.boot.watch_bmp are read then
too (actors/cold_metrics.py).
``serve()`` answers ``/metrics`` and ``/healthz``.

A connection's counters start again from 0 when its actor restarts;
Prometheus's ``rate()`` and ``increase()`` take that as a counter reset.
Its board stays in the scrape while it restarts (up 0, counters 0), so
that no series vanishes and comes back; one whose actor does not answer
in time stays in it too, up 0 (its counters go on in the stuck actor:
they are left out of that scrape rather than read as a reset).

Needs the ``metrics`` extra (``prometheus_client``).
"""

from __future__ import annotations

import json
import threading
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from actors.board.health import BoardHealth
from actors.boot.bmp import COUNTS
from actors.boot.sensors import BMPStatus, read_watched
from actors.cold_metrics import boot_families, sensor_families
from actors.connection.messages import ConnectionStats
from actors.http_server import (
    CLIENT_TIMEOUT,
    REQUEST_DEADLINE,
    BoundedHTTPServer,
    Handler,
)
from actors.lifetime import track
from actors.listening.listener import GetListenerStats, ListenerActor, ListenerStats
from actors.ratelimit.limiter import LimiterCounters, LimiterStats, RateLimiterActor
from actors.scrape import (
    ask_all,
    client_healths,
    machine_healths,
    open_objects,
    pipeline_healths,
)
from actors.supervision.messages import GetSupervisorStats, SupervisorStats
from actors.supervision.supervisor import Supervisor
from transport.logs import get_logger
from transport.virtual.board import BoardStats, serving_boards

log = get_logger(__name__)

#: The RTT histogram's bucket edges (seconds): a board on a LAN answers in
#: 100 us to a few ms; a resend waits up to a second.
RTT_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
)
#: How long a scrape waits for the actors it asks at once (each kind:
#: clients, Machines, pipeline connections, supervisors ...) before it
#: leaves out those that did not answer, or shows their boards as
#: unresponsive (board_up 0), so that a stuck actor cannot hold /metrics.
ASK_TIMEOUT = 2.0


# -- what a scrape sees ------------------------------------------------------------


@dataclass
class Snapshot:
    """Everything one scrape reads, taken once."""

    #: Each board's health, by its "host:port" (a board two clients talk
    #: to has two entries).
    boards: dict[str, list[BoardHealth]] = field(default_factory=dict)
    supervisors: list[SupervisorStats] = field(default_factory=list)
    listeners: list[ListenerStats] = field(default_factory=list)
    limiters: list[tuple[str, LimiterCounters]] = field(default_factory=list)
    virtual_boards: list[tuple[str, BoardStats]] = field(default_factory=list)
    #: The watched BMPs' boards' sensors, and this process's boots and
    #: power commands (actors/cold_metrics.py).
    bmps: list[BMPStatus] = field(default_factory=list)
    boot_counts: dict[str, int] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return all(h.up for healths in self.boards.values() for h in healths)


def snapshot(timeout: float | None = None) -> Snapshot:
    """Read every open client, Machine, SCPRequestPipeLine connection,
    listener, supervisor, limiter and virtual board of this process now,
    waiting ``timeout`` seconds (default ASK_TIMEOUT) for each kind."""
    timeout = ASK_TIMEOUT if timeout is None else timeout
    shot = Snapshot()
    clients, machines = open_objects()
    healths = client_healths(clients, timeout)
    on_machines, shot.supervisors = machine_healths(machines, timeout)
    healths += on_machines
    on_pipelines, lost = pipeline_healths(timeout)
    healths += on_pipelines
    shot.supervisors += lost
    for health in healths:
        if health.state != "closed":
            shot.boards.setdefault(health.board, []).append(health)
    shot.supervisors += [
        s for _, s in ask_all(Supervisor, GetSupervisorStats(), timeout)
    ]
    shot.listeners = [s for _, s in ask_all(ListenerActor, GetListenerStats(), timeout)]
    shot.limiters = list(ask_all(RateLimiterActor, LimiterStats(), timeout))
    shot.virtual_boards = [
        (board.address_text, board.stats) for board in serving_boards()
    ]
    shot.bmps = read_watched()
    shot.boot_counts = COUNTS.snapshot()
    return shot


def health(timeout: float | None = None) -> tuple[bool, dict[str, Any]]:
    """Whether every board of this process is served, and the details
    (what ``/healthz`` answers); ``timeout`` as in snapshot()."""
    shot = snapshot(timeout)
    return shot.healthy, {
        "status": "ok" if shot.healthy else "failing",
        "boards": [h.as_dict() for healths in shot.boards.values() for h in healths],
    }


# -- the collector -----------------------------------------------------------------


def _counter(name: str, text: str, labels: Iterable[str]) -> CounterMetricFamily:
    return CounterMetricFamily(name, text, labels=list(labels))


def _gauge(name: str, text: str, labels: Iterable[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, text, labels=list(labels))


def _rtt_buckets(
    stats: list[ConnectionStats],
) -> tuple[list[tuple[str, float]], float]:
    """Cumulative Prometheus buckets and the sum, from the estimators'
    finer buckets (each sample counted at its bucket's upper edge)."""
    counts = [0] * (len(RTT_BUCKETS) + 1)
    total = 0.0
    for connection in stats:
        rtt = connection.rtt
        total += rtt.mean * rtt.count
        for edge, count in rtt.buckets:
            slot = next(
                (i for i, le in enumerate(RTT_BUCKETS) if edge <= le * 1.000001),
                len(RTT_BUCKETS),
            )
            counts[slot] += count
    out: list[tuple[str, float]] = []
    running = 0
    for le, count in zip((*RTT_BUCKETS, float("inf")), counts, strict=True):
        running += count
        out.append(("+Inf" if le == float("inf") else repr(le), running))
    return out, total


def _counted(health: BoardHealth) -> bool:
    """Whether a board's counters are known: its connection's, while one
    runs; 0 while it restarts or once it was given up (the incarnation
    that counted is gone, and its successor starts from 0), so that the
    board's series stay in the scrape through a restart. Not known from a
    worker that did not answer: its counters go on there."""
    return health.stats is not None or health.state in ("restarting", "given_up")


def collect(shot: Snapshot) -> list[Metric]:
    """The metric families of one snapshot (names pinned: dashboards use
    them)."""
    board = ["board"]
    requests = _counter(
        "spinnactors_requests",
        "SCP requests sent to the board, each counted once however often resent",
        board,
    )
    resends = _counter("spinnactors_resends", "Requests sent again", board)
    timeouts = _counter(
        "spinnactors_timeouts", "Waits for a reply that ran out (each resent)", board
    )
    completed = _counter("spinnactors_completed", "Requests answered", board)
    failed = _counter("spinnactors_failed", "Requests ended with an error", board)
    duplicates = _counter(
        "spinnactors_duplicates", "Replies seen twice (and ignored)", board
    )
    errors = _counter(
        "spinnactors_errors",
        "Requests the board ended with an error code",
        ["board", "code"],
    )
    rtt = HistogramMetricFamily(
        "spinnactors_rtt_seconds", "Round trips of first sends", labels=board
    )
    discarded = _counter(
        "spinnactors_discarded",
        "Datagrams from the board's side discarded and counted: malformed (a "
        "reply that did not parse), late (a reply its job no longer waits "
        "for), foreign (another sender; unconnected sockets only)",
        ["board", "reason"],
    )
    send_errors = _counter(
        "spinnactors_send_errors",
        "Sends the OS refused (each resent like a loss)",
        board,
    )
    refused = _counter(
        "spinnactors_port_refused",
        "ICMP port unreachable from the board's address: nothing listened there",
        board,
    )
    in_flight = _gauge("spinnactors_in_flight", "Requests on the wire now", board)
    open_jobs = _gauge("spinnactors_open_jobs", "Jobs not ended yet", board)
    up = _gauge("spinnactors_board_up", "1 while the board is served, else 0", board)
    age = _gauge(
        "spinnactors_last_reply_age_seconds",
        "Seconds since the board last answered",
        board,
    )
    for name, healths in sorted(shot.boards.items()):
        label = [name]
        up.add_metric(label, 1.0 if all(h.up for h in healths) else 0.0)
        counted = [h for h in healths if _counted(h)]
        if not counted:
            continue
        stats = [h.stats for h in counted if h.stats is not None]
        requests.add_metric(label, sum(s.sent - s.resent for s in stats))
        resends.add_metric(label, sum(s.resent for s in stats))
        timeouts.add_metric(label, sum(s.timeouts for s in stats))
        completed.add_metric(label, sum(s.completed for s in stats))
        failed.add_metric(label, sum(s.failed for s in stats))
        duplicates.add_metric(label, sum(s.duplicates for s in stats))
        for reason in ("malformed", "late", "foreign"):
            discarded.add_metric([name, reason], sum(getattr(s, reason) for s in stats))
        send_errors.add_metric(label, sum(s.send_errors for s in stats))
        refused.add_metric(label, sum(s.refused for s in stats))
        codes: dict[str, int] = {}
        for s in stats:
            for code, count in s.error_codes.items():
                codes[code] = codes.get(code, 0) + count
        for code, count in sorted(codes.items()):
            errors.add_metric([name, code], count)
        buckets, total = _rtt_buckets(stats)
        rtt.add_metric(label, buckets, total)
        in_flight.add_metric(label, sum(h.in_flight for h in counted))
        open_jobs.add_metric(label, sum(h.open_jobs for h in counted))
        ages = [s.last_reply_age for s in stats if s.last_reply_age is not None]
        if ages:
            age.add_metric(label, min(ages))

    restarts = _counter("spinnactors_restarts", "Children restarted", ["supervisor"])
    gave_up = _gauge(
        "spinnactors_supervisor_gave_up", "1 once it has given up", ["supervisor"]
    )
    by_name: dict[str, list[SupervisorStats]] = {}
    for supervision in shot.supervisors:
        by_name.setdefault(supervision.name, []).append(supervision)
    for name, group in sorted(by_name.items()):
        restarts.add_metric([name], sum(s.restarts for s in group))
        gave_up.add_metric([name], 1.0 if any(s.gave_up for s in group) else 0.0)

    listener = ["listener"]
    heard = _counter(
        "spinnactors_listener_messages", "Messages a listener received", listener
    )
    dropped = _counter(
        "spinnactors_listener_dropped",
        "Messages dropped: a callback's backlog was full",
        listener,
    )
    by_local: dict[str, list[ListenerStats]] = {}
    for listened in shot.listeners:
        by_local.setdefault(listened.local, []).append(listened)
    for local, heard_by in sorted(by_local.items()):
        heard.add_metric([local], sum(s.received for s in heard_by))
        dropped.add_metric([local], sum(s.dropped for s in heard_by))

    tokens = _gauge(
        "spinnactors_limiter_tokens", "Tokens in a rate limiter's bucket", ["limiter"]
    )
    for urn, counters in shot.limiters:
        tokens.add_metric([urn], counters.tokens)

    families: list[Metric] = [
        requests,
        resends,
        timeouts,
        completed,
        failed,
        duplicates,
        discarded,
        send_errors,
        refused,
        errors,
        rtt,
        in_flight,
        open_jobs,
        up,
        age,
        restarts,
        gave_up,
        heard,
        dropped,
        tokens,
    ]
    if shot.virtual_boards:
        families.extend(_board_families(shot.virtual_boards))
    if shot.bmps:
        families.extend(sensor_families(shot.bmps))
    if shot.bmps or shot.boot_counts:
        families.extend(boot_families(shot.boot_counts))
    return families


def _board_families(boards: list[tuple[str, BoardStats]]) -> list[Metric]:
    """A virtual board's own figures (``spinnactors board --metrics-port``)."""
    board = ["board"]
    received = _counter(
        "spinnactors_board_requests", "Datagrams the board received", board
    )
    replies = _counter("spinnactors_board_replies", "Replies the board sent", board)
    dropped = _counter(
        "spinnactors_board_dropped",
        "Datagrams dropped: by its fault plan, a full queue or an IP tag",
        board,
    )
    malformed = _counter(
        "spinnactors_board_malformed", "Datagrams that did not parse", board
    )
    for name, stats in sorted(boards):
        received.add_metric([name], stats.received)
        replies.add_metric([name], stats.replies)
        dropped.add_metric(
            [name], stats.fault_drops + stats.queue_drops + stats.tag_drops
        )
        malformed.add_metric([name], stats.malformed)
    return [received, replies, dropped, malformed]


class SpinnactorsCollector(Collector):
    """Reads a fresh snapshot at each scrape, waiting ``ask_timeout``
    seconds for each kind of actor (None: ASK_TIMEOUT)."""

    def __init__(self, ask_timeout: float | None = None) -> None:
        self.ask_timeout = ask_timeout

    def collect(self) -> Iterable[Metric]:
        return collect(snapshot(self.ask_timeout))


_ENABLED: weakref.WeakKeyDictionary[CollectorRegistry, SpinnactorsCollector] = (
    weakref.WeakKeyDictionary()
)
_LOCK = threading.Lock()


def enable(
    registry: CollectorRegistry | None = None, *, ask_timeout: float | None = None
) -> SpinnactorsCollector:
    """Register the collector with ``registry`` (prometheus_client's
    default one if None); once per registry. ``ask_timeout``, if given,
    is how long its scrapes wait for each kind of actor from now on."""
    registry = REGISTRY if registry is None else registry
    with _LOCK:
        collector = _ENABLED.get(registry)
        if collector is None:
            collector = _ENABLED[registry] = SpinnactorsCollector()
            registry.register(collector)
        if ask_timeout is not None:
            collector.ask_timeout = ask_timeout
        return collector


# -- the endpoint ------------------------------------------------------------------


class MetricsServer:
    """``/metrics`` (Prometheus text) and ``/healthz`` (200 when every
    board is served, else 503; JSON either way), GET or HEAD, each
    connection on a daemon thread of its own: a silent or slow client
    holds no other and is cut after a bound, and ``close()`` returns
    whatever clients do (see actors/http_server.py for the bounds and why a
    bounded threading server rather than prometheus_client's)."""

    def __init__(
        self,
        port: int,
        host: str = "127.0.0.1",
        registry: CollectorRegistry | None = None,
        *,
        client_timeout: float = CLIENT_TIMEOUT,
        request_deadline: float = REQUEST_DEADLINE,
        ask_timeout: float | None = None,
    ) -> None:
        self.registry = REGISTRY if registry is None else registry
        self._collector = enable(self.registry, ask_timeout=ask_timeout)
        server = self

        class MetricsHandler(Handler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                server._answer(self)

            do_HEAD = do_GET  # noqa: N815 - the same headers, no body

        try:
            self._http = BoundedHTTPServer(
                (host, port),
                MetricsHandler,
                client_timeout=client_timeout,
                request_deadline=request_deadline,
                name="metrics",
            )
        except OSError as error:  # e.g. the port is taken: say which
            raise OSError(
                error.errno, f"cannot serve metrics on {host}:{port}: {error.strerror}"
            ) from None
        bound = self._http.server_address
        self.host, self.port = str(bound[0]), int(bound[1])
        self._http.start()
        self._closed = False
        track(self.close)
        log.info("metrics.serving", address=self.url)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _answer(self, request: Handler) -> None:
        path = request.path.split("?", 1)[0]
        if path == "/metrics":
            request.answer(200, CONTENT_TYPE_LATEST, generate_latest(self.registry))
        elif path == "/healthz":
            healthy, details = health(self._collector.ask_timeout)
            body = json.dumps(details).encode()
            request.answer(200 if healthy else 503, "application/json", body)
        else:
            request.answer(404, "text/plain", b"try /metrics or /healthz\n")

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop answering, close the port and cut open connections, within
        about 1.5 s; their threads have ended, but for one in the middle
        of a scrape (a daemon: it ends on its own once the scrape does)."""
        if self._closed:
            return
        self._closed = True
        self._http.close()

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve(
    port: int,
    host: str = "127.0.0.1",
    registry: CollectorRegistry | None = None,
    *,
    client_timeout: float = CLIENT_TIMEOUT,
    request_deadline: float = REQUEST_DEADLINE,
    ask_timeout: float | None = None,
) -> MetricsServer:
    """Serve ``/metrics`` and ``/healthz`` on ``host:port`` (port 0 picks a
    free one: see ``.port``), enabling the collector on ``registry``; a
    client is cut once silent ``client_timeout`` seconds, or
    ``request_deadline`` seconds after it connected without a whole
    request. A scrape waits ``ask_timeout`` seconds (default ASK_TIMEOUT)
    for each kind of actor it asks."""
    return MetricsServer(
        port,
        host,
        registry,
        client_timeout=client_timeout,
        request_deadline=request_deadline,
        ask_timeout=ask_timeout,
    )


__all__ = [
    "RTT_BUCKETS",
    "MetricsServer",
    "Snapshot",
    "SpinnactorsCollector",
    "collect",
    "enable",
    "health",
    "serve",
    "snapshot",
]
