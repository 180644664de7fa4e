"""A board stays in /metrics while its connection actor restarts: an
operator scraping every few seconds sees spinnactors_board_up go to 0 and
the board's counters start again from 0, never its series vanish.

The restart is held by the supervisor's backoff (a minute: far past the
test), and the scrape comes once the killed incarnation has stopped, so
the scrape falls inside the restart whatever the machine's load."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from actors import SCPRequestPipeLine
from actors.board.client import Client
from actors.compat.shared import SHARED
from actors.metrics import serve
from actors.supervision.child import Crash
from actors.supervision.spec import Backoff
from messages.scp import WriteMemory
from tests.system.test_metrics import healthz, of, scrape
from transport import SCAMPConnection, VirtualBoard

ADDRESS = 0x7000_0000
#: Long enough that no restart comes while the test runs.
HOLD = Backoff(minimum=600.0, maximum=600.0, jitter=0.0)
#: The board's series, one sample each (the histogram by its count).
SERIES = (
    "spinnactors_requests_total",
    "spinnactors_resends_total",
    "spinnactors_timeouts_total",
    "spinnactors_completed_total",
    "spinnactors_failed_total",
    "spinnactors_duplicates_total",
    "spinnactors_send_errors_total",
    "spinnactors_port_refused_total",
    "spinnactors_rtt_seconds_count",
    "spinnactors_in_flight",
    "spinnactors_open_jobs",
    "spinnactors_board_up",
)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def assert_restarting(
    label: str, before: Samples, during: Samples, status: int, body: dict[str, Any]
) -> None:
    """The board was up before the kill, and during the restart every one
    of its series is still scraped, up 0 and its counters 0 (the
    incarnation that counted them is gone; its successor starts at 0),
    and /healthz says it is restarting."""
    assert of(before, "spinnactors_board_up", board=label) == 1
    missing = [name for name in SERIES if (name, (("board", label),)) not in during]
    assert missing == []
    assert of(during, "spinnactors_board_up", board=label) == 0
    assert of(during, "spinnactors_requests_total", board=label) == 0
    assert status == 503
    assert [entry["state"] for entry in body["boards"]] == ["restarting"]


@pytest.mark.timeout(60)
def test_a_restarting_board_stays_in_the_scrape_reading_0() -> None:
    with (
        VirtualBoard(2, 2) as board,
        Client(*board.address, backoff=HOLD) as client,
        serve(0, registry=CollectorRegistry()) as server,
    ):
        label = "{}:{}".format(*board.address)
        client.write(0, 0, ADDRESS, bytes(600))  # 3 requests
        before = scrape(server)
        first = client.connection_actor
        assert first is not None
        first.tell(Crash())
        assert first.actor_stopped.wait(10)
        during = scrape(server)
        status, body = healthz(server)
        # Still restarting after the scrape: it fell inside the restart.
        assert client.health().state == "restarting"
    assert of(before, "spinnactors_requests_total", board=label) == 3
    assert_restarting(label, before, during, status, body)
    assert of(during, "spinnactors_in_flight", board=label) == 0
    for reason in ("malformed", "late", "foreign"):
        assert (
            of(during, "spinnactors_discarded_total", board=label, reason=reason) == 0
        )


@pytest.mark.timeout(60)
def test_a_pipelines_restarting_board_stays_in_the_scrape() -> None:
    """The connection SCPRequestPipeLines drive (code ported from
    SpiNNMan) restarts under a supervisor of its own: its board stays in
    the scrape, restarting, instead of leaving it until the actor is back."""
    linger, backoff = SHARED.linger, SHARED.backoff
    SHARED.linger, SHARED.backoff = 30.0, HOLD  # kept after finish(), held
    try:
        with (
            VirtualBoard(2, 2) as board,
            serve(0, registry=CollectorRegistry()) as server,
            SCAMPConnection(
                remote_host=board.address[0], remote_port=board.address[1]
            ) as connection,
        ):
            label = "{}:{}".format(*board.address)
            errors: list[Exception] = []
            pipeline: SCPRequestPipeLine[Any] = SCPRequestPipeLine(connection)
            pipeline.send_request(
                WriteMemory((0, 0, 0), ADDRESS, bytes(256)),
                lambda _: None,
                lambda _request, error, *_: errors.append(error),
            )
            pipeline.finish()
            before = scrape(server)
            ((_, first),) = [(b, a) for b, a in SHARED.boards() if b == label]
            assert first is not None
            first.tell(Crash())
            assert first.actor_stopped.wait(10)
            during = scrape(server)
            status, body = healthz(server)
            # Still restarting after the scrape: it fell inside the restart.
            assert SHARED.boards() == [(label, None)]
    finally:
        SHARED.linger, SHARED.backoff = linger, backoff
        SHARED.stop_idle()
    assert not errors
    assert of(before, "spinnactors_requests_total", board=label) == 1
    assert_restarting(label, before, during, status, body)
