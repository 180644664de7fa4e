"""BoardHealth.serving(stats): the one place a connected board is called
serving or silent, decided on plain data (a connection's figures), and
what /healthz and /metrics make of that, with no socket or clock."""

from __future__ import annotations

import pytest
from prometheus_client import Metric

from actors.board.health import (
    SILENT_FLOOR,
    SILENT_RTOS,
    BoardHealth,
    silence_bound,
)
from actors.connection.actor import ConnectionStats
from actors.metrics import Snapshot, collect
from actors.protocol.rtt import RttStats

BOARD = "127.0.0.1:17893"


def figures(
    *,
    rto: float,
    silent_for: float | None,
    last_reply_age: float | None = None,
    in_flight: int = 0,
    open_jobs: int = 0,
) -> ConnectionStats:
    """A connection's figures with only what health reads set."""
    return ConnectionStats(
        remote=BOARD,
        window=8,
        sent=0,
        resent=0,
        fast_resent=0,
        retry_code_resent=0,
        timeouts=0,
        completed=0,
        failed=0,
        duplicates=0,
        malformed=0,
        foreign=0,
        send_errors=0,
        open_jobs=open_jobs,
        rtt=RttStats(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, rto),
        in_flight=in_flight,
        last_reply_age=last_reply_age,
        silent_for=silent_for,
    )


def judged(stats: ConnectionStats) -> BoardHealth:
    return BoardHealth(
        BOARD, "restarting", reason="its connection is restarting"
    ).serving(stats)


@pytest.mark.timeout(10)
def test_the_bound_is_a_few_timeouts_and_never_under_the_floor() -> None:
    assert (SILENT_RTOS, SILENT_FLOOR) == (3, 1.0)
    assert silence_bound(0.005) == 1.0  # loopback: the floor
    assert silence_bound(0.5) == 1.5
    assert silence_bound(1.0) == 3.0  # backed off to the default ceiling


@pytest.mark.timeout(10)
def test_an_idle_board_is_serving_however_long_since_it_answered() -> None:
    health = judged(figures(rto=0.005, silent_for=None, last_reply_age=86_400.0))
    assert health.state == "serving" and health.up and health.reason == ""
    assert health.last_reply_age == 86_400.0 and health.silent_for is None


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("rto", "silent_for", "state"),
    [
        (0.005, 0.9, "serving"),  # the floor: 1 s
        (0.005, 1.1, "silent"),
        (1.0, 2.9, "serving"),  # 3 x 1 s
        (1.0, 3.1, "silent"),
    ],
)
def test_a_board_owing_a_reply_past_the_bound_is_silent(
    rto: float, silent_for: float, state: str
) -> None:
    health = judged(figures(rto=rto, silent_for=silent_for, in_flight=8, open_jobs=2))
    assert health.state == state
    assert health.up is (state == "serving")
    assert health.silent_for == silent_for


@pytest.mark.timeout(10)
def test_a_silent_boards_reason_says_how_long_and_what_is_open() -> None:
    health = judged(figures(rto=1.0, silent_for=7.31, in_flight=8, open_jobs=2))
    assert health.reason == (
        f"no reply from {BOARD} for 7.3 s (silent after 3.0 s: 3 x its 1000 ms "
        "retransmission timeout, at least 1 s); 8 requests on the wire, "
        "2 jobs open"
    )
    assert health.as_dict()["state"] == "silent"
    assert health.as_dict()["silent_for"] == 7.31


@pytest.mark.timeout(10)
def test_a_first_request_never_answered_is_silent_though_no_reply_ever_came() -> None:
    health = judged(
        figures(rto=1.0, silent_for=4.0, last_reply_age=None, in_flight=1, open_jobs=1)
    )
    assert health.state == "silent" and health.last_reply_age is None
    assert health.reason.endswith("; 1 request on the wire, 1 job open")


@pytest.mark.timeout(10)
def test_a_board_whose_last_requests_went_unanswered_stays_silent() -> None:
    """Nothing open, but the last requests ended unanswered: silent until
    the board answers (the window stops counting only on a datagram)."""
    health = judged(figures(rto=1.0, silent_for=30.0))
    assert health.state == "silent"
    assert health.reason.endswith(
        "nothing open now: its last requests ended unanswered"
    )


def board_up(families: list[Metric]) -> dict[str, float]:
    (up,) = [family for family in families if family.name == "spinnactors_board_up"]
    return {sample.labels["board"]: sample.value for sample in up.samples}


@pytest.mark.timeout(10)
def test_a_silent_board_reads_0_and_fails_the_health_check() -> None:
    silent = judged(figures(rto=0.005, silent_for=2.0, in_flight=1))
    idle = judged(figures(rto=0.005, silent_for=None, last_reply_age=600.0))
    shot = Snapshot(boards={BOARD: [silent], "127.0.0.2:17893": [idle]})
    assert not shot.healthy
    assert board_up(collect(shot)) == {BOARD: 0.0, "127.0.0.2:17893": 1.0}
    assert Snapshot(boards={"127.0.0.2:17893": [idle]}).healthy
