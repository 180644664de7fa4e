"""The stages of a boot, without sockets or clocks: events and times in,
actions out (actors/boot/stages.py)."""

from __future__ import annotations

import pickle

import pytest

from actors.boot import BoardBMP, BootError, BootOptions, BootSequence
from actors.boot.stages import (
    Action,
    Answered,
    AnsweredError,
    AskVersion,
    Event,
    Failed,
    Pause,
    Paused,
    Powered,
    PowerFailed,
    PowerOn,
    Ready,
    SendBoot,
    Sent,
    Silent,
)
from messages.scp.version import VersionInfo

BOARD = "board 10.0.0.2:17893"
BMP = BoardBMP("10.0.0.1", 3)
OPTIONS = BootOptions(
    deadline=20.0,
    probe_timeout=2.0,
    poll_timeout=0.25,
    poll_interval=0.1,
    pass_timeout=1.0,
    passes=2,
    power_timeout=10.0,
    power_settle=5.0,
)


def scamp(x: int = 0, y: int = 0, name: str = "SC&MP", major: int = 4) -> VersionInfo:
    return VersionInfo(name, "SpiNNaker", (major, 0, 0), f"{major}.0.0", 0, x, y, 0)


BC_MP = VersionInfo("BC&MP", "Spin5-BMP", (2, 1, 2), "2.1.2", 0, 1, 0, 0)


class Run:
    """A sequence fed by hand, with its own time."""

    def __init__(self, options: BootOptions = OPTIONS, bmp: BoardBMP | None = None):
        self.now = 100.0
        self.sequence = BootSequence(BOARD, options, self.now, bmp)
        self.action: Action = self.sequence.start()
        self.sent = 0

    def step(self, event: Event, after: float = 0.0) -> Action:
        self.now += after
        if isinstance(event, Sent):
            self.sent += 1
        self.action = self.sequence.step(event, self.now)
        return self.action

    def silence(self) -> Action:
        """The last ask went unanswered, after its whole wait."""
        assert isinstance(self.action, AskVersion)
        return self.step(Silent(), self.action.timeout)

    def error(self) -> BootError:
        assert isinstance(self.action, Failed), self.action
        return self.action.error


def test_a_board_that_answers_is_never_booted() -> None:
    run = Run()
    assert run.action == AskVersion(2.0)
    ready = run.step(Answered(scamp(0, 0)), 0.001)
    assert ready == Ready(scamp(0, 0), booted=False, passes=0, powered_on=False)
    assert run.sent == 0


def test_one_booted_but_still_at_255_255_is_located_not_booted() -> None:
    run = Run()
    assert run.step(Answered(scamp(255, 255)), 0.001) == Pause(0.1)
    assert run.step(Paused(), 0.1) == AskVersion(0.25)
    assert run.step(Answered(scamp(255, 255)), 0.01) == Pause(0.1)
    run.step(Paused(), 0.1)
    assert run.silence() == AskVersion(0.25)  # a lost reply: ask again
    ready = run.step(Answered(scamp(0, 0)), 0.01)
    assert isinstance(ready, Ready) and not ready.booted


def test_a_silent_board_is_booted_then_located() -> None:
    run = Run()
    assert run.silence() == SendBoot(1)
    assert run.step(Sent(), 0.3) == AskVersion(0.25)
    assert run.silence() == AskVersion(0.25)  # SC&MP not up yet
    assert run.step(Answered(scamp(255, 255)), 0.01) == Pause(0.1)
    run.step(Paused(), 0.1)
    ready = run.step(Answered(scamp(0, 0)), 0.01)
    assert ready == Ready(scamp(0, 0), booted=True, passes=1, powered_on=False)


def test_silence_after_a_pass_sends_every_frame_again_then_fails_naming_boot() -> None:
    run = Run()
    run.silence()
    run.step(Sent())
    asks = 0
    while isinstance(run.action, AskVersion):
        run.silence()
        asks += 1
    assert run.action == SendBoot(2) and asks == 4  # 1 s of 0.25 s asks
    run.step(Sent())
    while isinstance(run.action, AskVersion):
        run.silence()
    error = run.error()
    assert (error.stage, error.board) == ("boot", BOARD)
    assert str(error) == (
        f"{BOARD}: no answer to boot: SC&MP did not come up after 2 passes of "
        f"the image; check the address and the image, and that the board is "
        f"powered (with its BMP given, it is powered on) (stage: boot, 4.0 s)"
    )
    assert run.sent == 2


def test_with_a_bmp_a_silent_board_is_powered_on_once_and_booted_again() -> None:
    run = Run(bmp=BMP)
    for _ in range(2):
        run.silence() if isinstance(run.action, AskVersion) else None
        run.step(Sent())
        while isinstance(run.action, AskVersion):
            run.silence()
    assert run.action == PowerOn(BMP, 10.0)
    assert run.step(Powered(), 0.05) == Pause(5.0)
    assert run.step(Paused(), 5.0) == SendBoot(3)
    run.step(Sent())
    ready = run.step(Answered(scamp(0, 0)), 0.01)
    assert ready == Ready(scamp(0, 0), booted=True, passes=3, powered_on=True)


def exhaust(run: Run) -> None:
    """Boot passes until the sequence leaves them."""
    while isinstance(run.action, AskVersion | SendBoot):
        if isinstance(run.action, SendBoot):
            run.step(Sent())
        else:
            run.silence()


def test_powered_on_and_still_silent_fails_and_is_not_powered_again() -> None:
    run = Run(bmp=BMP)
    exhaust(run)
    run.step(Powered())
    run.step(Paused(), 5.0)
    exhaust(run)
    error = run.error()
    assert error.stage == "boot"
    assert "after 4 passes of the image, 2 after powering it on through its BMP" in str(
        error
    )


@pytest.mark.parametrize(
    ("event", "text"),
    [
        (
            PowerFailed(False, "BMP 10.0.0.1:17893 not answering: no reply"),
            "BMP 10.0.0.1:17893 not answering: no reply; check the BMP's "
            "address and that it is powered",
        ),
        (
            PowerFailed(True, "BMP 10.0.0.1:17893 refused power on boards 3: no"),
            "BMP 10.0.0.1:17893 refused power on boards 3: no",
        ),
    ],
)
def test_a_bmp_that_fails_ends_the_boot_naming_power(
    event: PowerFailed, text: str
) -> None:
    run = Run(bmp=BMP)
    exhaust(run)
    run.step(event, 0.5)
    error = run.error()
    assert error.stage == "power"
    assert str(error) == f"{BOARD}: {text} (stage: power, 4.5 s)"


def test_a_host_that_is_a_bmp_is_named_and_not_booted() -> None:
    run = Run()
    run.step(Answered(BC_MP), 0.001)
    error = run.error()
    assert str(error) == (
        f"{BOARD}: the host is a BMP, not a board: it answers version as "
        f"BC&MP/Spin5-BMP 2.1.2; give the board's own address, and this one as "
        f"its BMP (stage: probe, 0.0 s)"
    )
    assert run.sent == 0


@pytest.mark.parametrize(
    "info", [scamp(name="SARK"), scamp(major=3)], ids=["SARK", "SC&MP 3"]
)
def test_anything_else_that_answers_is_refused_not_booted(info: VersionInfo) -> None:
    run = Run()
    run.step(Answered(info))
    assert "not SC&MP 4.x; it was not booted again (stage: probe" in str(run.error())


def test_an_error_code_to_version_means_it_is_there() -> None:
    run = Run()
    run.step(AnsweredError("board answered RC_ROUTE"))
    assert str(run.error()).startswith(
        f"{BOARD}: it answers version with an error (board answered RC_ROUTE)"
    )


def test_stuck_at_255_255_fails_at_the_deadline_naming_locate() -> None:
    run = Run(BootOptions(deadline=3.0))
    run.step(Answered(scamp(255, 255)), 0.01)
    while not isinstance(run.action, Failed):
        if isinstance(run.action, Pause):
            run.step(Paused(), run.action.seconds)
        else:
            run.step(Answered(scamp(255, 255)), 0.05)
    assert run.now - 100.0 <= 3.0 + 0.1
    error = run.error()
    assert error.stage == "locate"
    assert str(error).startswith(
        f"{BOARD}: stuck at chip (255, 255): SC&MP answers but did not find "
        f"its position within the deadline of 3 s"
    )


def test_every_wait_is_cut_to_the_deadline() -> None:
    run = Run(BootOptions(deadline=1.0, probe_timeout=2.0, pass_timeout=5.0))
    assert run.action == AskVersion(1.0)
    run.step(Silent(), 0.9)
    run.step(Sent(), 0.05)
    assert run.action == AskVersion(pytest.approx(0.05))  # type: ignore[arg-type]
    run.silence()
    assert run.sequence.deadline == 101.0 and run.now == pytest.approx(101.0)
    assert run.error().stage == "boot"
    assert "no answer to boot within the deadline of 1 s" in str(run.error())


def test_an_answer_at_the_deadline_is_still_taken() -> None:
    run = Run(BootOptions(deadline=1.0))
    assert isinstance(run.step(Answered(scamp()), 5.0), Ready)


def test_a_boot_error_pickles_with_its_stage_and_board() -> None:
    error = BootError("board x: no", "boot", "board x")
    again = pickle.loads(pickle.dumps(error))
    assert (str(again), again.stage, again.board) == ("board x: no", "boot", "board x")


def test_an_unexpected_event_is_a_bug_said_plainly() -> None:
    with pytest.raises(RuntimeError, match="PROBING does not expect"):
        Run().step(Sent())
