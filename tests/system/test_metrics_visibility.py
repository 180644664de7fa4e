"""What an operator's scrape shows at awkward moments: a virtual board
whose thread has not run yet is in the scrape as soon as start() returns,
a board whose connection actor does not answer in time stays in it,
down, without holding the scrape, and so does a pipeline's board given up
on, until its connection is closed."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, cast

import pykka
import pytest
from prometheus_client import CollectorRegistry

from actors import SCPRequestPipeLine
from actors import scrape as scraping
from actors.board.client import ASK_TIMEOUT, Client
from actors.compat import shared
from actors.compat.pipeline import given_up_pipeline_boards
from actors.compat.shared import SHARED
from actors.metrics import serve
from actors.protocol.jobs import Outcome, SCPJob
from actors.supervision.child import Crash
from actors.supervision.messages import GetSupervisorStats, SupervisorStats
from actors.supervision.supervisor import Supervisor
from messages.scp import GetVersion
from tests.system.test_metrics import healthz, of, scrape
from transport import SCAMPConnection, VirtualBoard


@contextmanager
def thread_held(name: str) -> Iterator[threading.Event]:
    """The thread called ``name``, once started, waits before it runs
    anything until the event is set (as a loaded machine may schedule a
    new thread late); other threads run as usual."""
    release = threading.Event()
    previous = threading.gettrace()

    def hold(frame: FrameType, event: str, arg: Any) -> None:
        sys.settrace(None)  # (for this thread: once is enough)
        if threading.current_thread().name == name:
            release.wait(20)

    threading.settrace(hold)
    try:
        yield release
    finally:
        threading.settrace(previous)
        release.set()


@pytest.mark.timeout(60)
def test_a_board_is_in_the_scrape_as_soon_as_start_returns() -> None:
    with serve(0, registry=CollectorRegistry()) as server:
        board = VirtualBoard(2, 2)
        label = board.address_text
        try:
            with thread_held(f"board-{label}"):
                board.start()  # its thread has not run a line yet
                samples = scrape(server)
            assert ("spinnactors_board_requests_total", (("board", label),)) in samples
        finally:
            board.stop()


class StuckSink:
    """Where a client delivers outcomes, held by a consumer that does not
    take them: the connection actor, handing over a batch, waits in
    put() (its thread stuck, as behind any blocked consumer) until
    released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def put(self, batch: list[Outcome], /) -> None:
        self.entered.set()
        self.release.wait(30)


@pytest.mark.timeout(60)
def test_a_client_whose_actor_is_stuck_stays_in_the_scrape_down() -> None:
    """Its connection actor does not answer the scrape's health check: the
    board reads up 0 (unresponsive in /healthz) after the scrape's short
    timeout, instead of leaving the scrape after the client's 10 s."""
    sink = StuckSink()
    with (
        VirtualBoard(2, 2) as board,
        Client(*board.address) as client,
        serve(0, registry=CollectorRegistry(), ask_timeout=0.3) as server,
    ):
        label = board.address_text
        assert of(scrape(server), "spinnactors_board_up", board=label) == 1
        try:
            client.post([SCPJob("stuck", GetVersion(0, 0, 0))], sink)
            assert sink.entered.wait(10)
            started = time.monotonic()
            during = scrape(server)
            took = time.monotonic() - started
            status, body = healthz(server)
        finally:
            sink.release.set()
        after = scrape(server)
    assert of(during, "spinnactors_board_up", board=label) == 0
    assert took < ASK_TIMEOUT  # the client's own 10 s: not waited for
    assert status == 503
    assert [entry["state"] for entry in body["boards"]] == ["unresponsive"]
    assert "did not answer" in body["boards"][0]["reason"]
    assert of(after, "spinnactors_board_up", board=label) == 1


def supervisor_named(name: str) -> pykka.ActorRef[Any]:
    """The running Supervisor started with ``name`` (asked, as a scrape
    asks them)."""
    for ref in pykka.ActorRegistry.get_by_class(Supervisor):
        stats = cast(SupervisorStats, ref.ask(GetSupervisorStats(), timeout=10))
        if stats.name == name:
            return ref
    raise AssertionError(f"no supervisor {name!r}")


@pytest.mark.timeout(60)
def test_a_pipelines_board_given_up_on_stays_in_the_scrape_until_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its connection's supervisor gives up (no restart allowed): the board
    reads up 0 and its supervisor gave_up 1, given_up in /healthz, until
    the connection's owner closes it; then both leave the scrape."""
    monkeypatch.setattr(shared, "MAX_RESTARTS", 0)  # the first crash: given up
    linger = SHARED.linger
    SHARED.linger = 30.0  # as under install(): kept between operations
    try:
        with (
            VirtualBoard(2, 2) as board,
            serve(0, registry=CollectorRegistry()) as server,
        ):
            label = board.address_text
            supervisor = f"pipeline-{label}"
            host, port = board.address
            connection = SCAMPConnection(remote_host=host, remote_port=port)
            try:
                errors: list[Exception] = []
                pipeline: SCPRequestPipeLine[Any] = SCPRequestPipeLine(connection)
                pipeline.send_request(
                    GetVersion(0, 0, 0),
                    None,
                    lambda _request, error, *_: errors.append(error),
                )
                pipeline.finish()
                before = scrape(server)
                watched = supervisor_named(supervisor)
                ((_, actor),) = [(b, a) for b, a in SHARED.boards() if b == label]
                assert actor is not None
                actor.tell(Crash())
                assert watched.actor_stopped.wait(10)
                during = scrape(server)
                status, body = healthz(server)
            finally:
                connection.close()
            after = scrape(server)
    finally:
        SHARED.linger = linger
        SHARED.stop_idle()
    assert not errors
    assert of(before, "spinnactors_board_up", board=label) == 1
    assert of(during, "spinnactors_board_up", board=label) == 0
    assert of(during, "spinnactors_supervisor_gave_up", supervisor=supervisor) == 1
    assert status == 503
    assert [entry["state"] for entry in body["boards"]] == ["given_up"]
    assert ("spinnactors_board_up", (("board", label),)) not in after
    gave_up = ("spinnactors_supervisor_gave_up", (("supervisor", supervisor),))
    assert gave_up not in after


@pytest.mark.timeout(60)
def test_a_pipelines_board_given_up_between_the_reads_is_listed_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The board's connection is asked (and answers) as one of the boards
    pipelines use, then its supervisor gives up before the given-up boards
    are read: the board is in that scrape once, given up."""
    monkeypatch.setattr(shared, "MAX_RESTARTS", 0)  # the first crash: given up
    linger = SHARED.linger
    SHARED.linger = 30.0  # as under install(): kept between operations
    try:
        with VirtualBoard(2, 2) as board:
            label = board.address_text
            host, port = board.address
            connection = SCAMPConnection(remote_host=host, remote_port=port)
            try:
                pipeline: SCPRequestPipeLine[Any] = SCPRequestPipeLine(connection)
                pipeline.send_request(GetVersion(0, 0, 0), None, lambda *_: None)
                pipeline.finish()
                watched = supervisor_named(f"pipeline-{label}")
                ((_, actor),) = [(b, a) for b, a in SHARED.boards() if b == label]
                assert actor is not None

                def gives_up_first() -> list[tuple[str, SupervisorStats]]:
                    actor.tell(Crash())
                    assert watched.actor_stopped.wait(10)
                    return given_up_pipeline_boards()

                monkeypatch.setattr(
                    scraping, "given_up_pipeline_boards", gives_up_first
                )
                healths, supervisors = scraping.pipeline_healths(10)
            finally:
                connection.close()
    finally:
        SHARED.linger = linger
        SHARED.stop_idle()
    assert [h.state for h in healths if h.board == label] == ["given_up"]
    assert [s.name for s in supervisors] == [f"pipeline-{label}"]
