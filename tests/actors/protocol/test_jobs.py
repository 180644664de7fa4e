"""Jobs and the runs that turn them into window requests and one Outcome.

Replies are made by hand (or by a Window on a perfect link) so that every
order, error and restart is exact; no actor is started.
"""

from __future__ import annotations

import pickle
import random
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.errors import (
    DeadlineExceeded,
    RequestError,
    RequestTimeout,
    RetriesExhausted,
    ShutDown,
)
from actors.protocol.jobs import Outcome, ReadJob, SCPJob, WriteJob
from actors.protocol.requests import Request
from actors.protocol.runs import JobRun, ReadRun, SCPRun, WriteRun
from actors.protocol.settings import WindowSettings
from actors.protocol.window import Window
from messages.errors import InvalidArgumentError, UnexpectedResponseCodeError
from messages.scp import GetVersion, ReadMemory, SendSignal, Signal, WriteMemory
from messages.scp.bulk import ChunkBuilder
from messages.scp.enums import SCPResult

OK = SCPResult.RC_OK
BASE = 0x7000_0000
SOURCE = (255, 255)


class Sink:
    """An OutcomeSink that keeps what it is given."""

    def __init__(self) -> None:
        self.batches: list[list[Outcome]] = []

    def put(self, item: list[Outcome], /) -> None:
        self.batches.append(item)


def memory(address: int, size: int) -> bytes:
    """What the board holds: each byte depends on its own address."""
    return bytes((a * 13 + (a >> 8)) & 0xFF for a in range(address, address + size))


def seq_of(datagram: bytes | bytearray) -> int:
    return int(struct.unpack_from("<H", datagram, 12)[0])


def command_of(datagram: bytes | bytearray) -> int:
    return int(struct.unpack_from("<H", datagram, 10)[0])


def span_of(datagram: bytes | bytearray) -> tuple[int, int]:
    address, size = struct.unpack_from("<2I", datagram, 14)
    return address, size


def reply(
    datagram: bytes | bytearray, code: SCPResult = OK, payload: bytes | None = None
) -> bytes:
    """The board's answer: a read gets the memory it asked for."""
    if payload is None:
        payload = (
            memory(*span_of(datagram))
            if code is OK and command_of(datagram) == 2
            else b""
        )
    return bytes(10) + struct.pack("<2H", code.value, seq_of(datagram)) + payload


def answered(
    request: Request,
    code: SCPResult = OK,
    *,
    sends: int = 1,
    retry_code_resent: int = 0,
    timeouts: int = 0,
) -> Request:
    """``request`` as the window hands it back after the board answered."""
    request.done = True
    request.sends = sends
    request.retry_code_resent = retry_code_resent
    request.timeouts = timeouts
    request.reply = reply(request.datagram, code)
    return request


def failed(request: Request, error: RequestError, *, sends: int = 1) -> Request:
    request.done = True
    request.sends = sends
    request.timeouts = sends
    request.error = error
    return request


def read_run(
    length: int = 1000,
    address: int = BASE,
    *,
    timeout: float | None = None,
    now: float = 0.0,
    x: int = 1,
    y: int = 2,
    p: int = 3,
) -> JobRun:
    return JobRun.of(
        ReadJob("job", x, y, p, address, length, timeout), Sink(), now, SOURCE
    )


def run_of(request: Request) -> Any:
    key: tuple[Any, int] = request.key  # type: ignore[assignment]
    return key[0]


def index_of(request: Request) -> int:
    key: tuple[Any, int] = request.key  # type: ignore[assignment]
    return key[1]


# -- reads ---------------------------------------------------------------------------


@pytest.mark.timeout(10)
def test_a_read_of_1000_bytes_is_four_pieces() -> None:
    run = read_run(1000, x=1, y=2, p=3)
    assert isinstance(run, ReadRun)
    assert run.n_pieces == 4 and run.has_more
    requests = run.take(10)
    assert not run.has_more
    assert [index_of(r) for r in requests] == [0, 1, 2, 3]
    assert all(run_of(r) is run for r in requests)
    builder = ChunkBuilder(1, 2, 3, *SOURCE)
    spans = [(BASE, 256), (BASE + 256, 256), (BASE + 512, 256), (BASE + 768, 232)]
    for request, (address, size) in zip(requests, spans, strict=True):
        assert request.datagram == builder.read(address, size)
        assert request.reply_size == 14 + size
        assert request.may_resend
        assert request.deadline is None


@pytest.mark.timeout(10)
@pytest.mark.parametrize("seed", range(5))
def test_read_replies_in_any_order_assemble_the_right_bytes(seed: int) -> None:
    run = read_run(1000)
    requests = run.take(4)
    random.Random(seed).shuffle(requests)
    outcomes = [run.complete(answered(r)) for r in requests]
    assert outcomes[:3] == [None, None, None]
    outcome = outcomes[3]
    assert outcome is not None and outcome.ok
    assert outcome.key == "job"
    assert bytes(outcome.value) == memory(BASE, 1000)
    assert run.ended


@pytest.mark.timeout(10)
@pytest.mark.parametrize("length", [1, 255, 256, 257, 512, 513, 4096, 5000])
def test_read_piece_count_and_sizes(length: int) -> None:
    run = read_run(length)
    assert run.n_pieces == -(-length // 256)
    requests = run.take(1000)
    assert sum(span_of(r.datagram)[1] for r in requests) == length
    outcome = None
    for request in reversed(requests):
        outcome = run.complete(answered(request)) or outcome
    assert outcome is not None
    assert bytes(outcome.value) == memory(BASE, length)


@pytest.mark.timeout(10)
def test_take_hands_out_pieces_a_few_at_a_time() -> None:
    run = read_run(1000)
    assert [index_of(r) for r in run.take(3)] == [0, 1, 2]
    assert run.has_more
    assert run.take(0) == []
    assert [index_of(r) for r in run.take(3)] == [3]
    assert not run.has_more and run.take(3) == []


@pytest.mark.timeout(10)
def test_error_code_ends_the_job_once_and_later_pieces_are_ignored() -> None:
    run = read_run(1000)
    requests = run.take(4)
    assert run.complete(answered(requests[0])) is None
    outcome = run.complete(answered(requests[1], SCPResult.RC_ARG))
    assert outcome is not None and not outcome.ok
    assert isinstance(outcome.error, UnexpectedResponseCodeError)
    assert outcome.error.result is SCPResult.RC_ARG
    assert outcome.value is None
    assert f"0x{BASE + 256:08x}" in str(outcome.error)
    assert "RC_ARG" in str(outcome.error)
    assert run.ended and not run.has_more
    for request in requests[2:]:
        assert run.complete(answered(request)) is None
    assert run.complete(answered(requests[1], SCPResult.RC_ARG)) is None


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "error",
    [
        RequestTimeout("no reply after 3 tries"),
        RetriesExhausted("no usable reply after 3 tries: RC_P2P_BUSY"),
        DeadlineExceeded("deadline passed after 2 tries"),
        ShutDown("stopping"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_piece_failed_in_the_window_ends_the_job_with_its_error_type(
    error: RequestError,
) -> None:
    run = read_run(1000, x=4, y=5, p=6)
    requests = run.take(4)
    run.complete(answered(requests[0]))
    outcome = run.complete(failed(requests[2], error, sends=3))
    assert outcome is not None
    assert type(outcome.error) is type(error)
    message = str(outcome.error)
    assert f"read at 0x{BASE + 512:08x} on 4,5,6" in message
    assert str(error) in message
    assert outcome.value is None
    assert run.complete(answered(requests[1])) is None
    assert run.complete(answered(requests[3])) is None


@pytest.mark.timeout(10)
def test_duplicate_completion_of_a_piece_is_ignored() -> None:
    run = read_run(512)
    first, second = run.take(2)
    assert run.complete(answered(first)) is None
    assert run.complete(answered(first)) is None
    outcome = run.complete(answered(second))
    assert outcome is not None and bytes(outcome.value) == memory(BASE, 512)


@pytest.mark.timeout(10)
def test_restart_asks_again_only_for_the_pieces_not_done() -> None:
    run = read_run(1000)
    requests = run.take(4)
    run.complete(answered(requests[0]))
    run.complete(answered(requests[2]))
    assert not run.has_more
    run.restart()
    assert run.has_more
    again = run.take(10)
    assert [index_of(r) for r in again] == [1, 3]
    assert [r.datagram for r in again] == [requests[1].datagram, requests[3].datagram]
    assert not run.has_more
    assert run.complete(answered(again[0])) is None
    outcome = run.complete(answered(again[1]))
    assert outcome is not None
    assert bytes(outcome.value) == memory(BASE, 1000)


@pytest.mark.timeout(10)
def test_restart_before_every_piece_was_asked_for() -> None:
    run = read_run(1000)
    first = run.take(2)
    run.complete(answered(first[0]))
    run.restart()
    assert [index_of(r) for r in run.take(2)] == [1, 2]
    assert [index_of(r) for r in run.take(5)] == [3]
    run.restart()
    assert [index_of(r) for r in run.take(1)] == [1]
    assert [index_of(r) for r in run.take(5)] == [2, 3]


@pytest.mark.timeout(10)
def test_restart_with_nothing_left_asks_for_nothing() -> None:
    run = read_run(512)
    for request in run.take(2):
        run.complete(answered(request))
    run.restart()
    assert not run.has_more and run.take(5) == []


@pytest.mark.timeout(10)
def test_outcome_adds_up_the_resends_and_timeouts_of_the_pieces() -> None:
    run = read_run(1000)
    requests = run.take(4)
    run.complete(answered(requests[0], sends=3, retry_code_resent=1, timeouts=1))
    run.complete(answered(requests[1]))
    run.complete(answered(requests[2], sends=2, timeouts=1))
    outcome = run.complete(answered(requests[3], sends=2, retry_code_resent=1))
    assert outcome is not None
    assert (outcome.resends, outcome.retry_code_resent, outcome.timeouts) == (4, 2, 2)


@pytest.mark.timeout(10)
def test_the_job_timeout_becomes_every_piece_deadline() -> None:
    run = read_run(1000, timeout=2.5, now=10.0)
    assert run.deadline == 12.5
    assert {r.deadline for r in run.take(4)} == {12.5}


@pytest.mark.timeout(10)
def test_a_zero_length_read_has_no_pieces() -> None:
    run = read_run(0)
    assert run.n_pieces == 0 and not run.has_more
    assert run.take(5) == []
    outcome = run.finish_empty()
    assert outcome.ok and bytes(outcome.value) == b""
    assert run.ended


@pytest.mark.timeout(10)
def test_fail_ends_an_open_job() -> None:
    run = read_run(1000)
    requests = run.take(4)
    run.complete(answered(requests[0]))
    error = ShutDown("connection closed")
    outcome = run.fail(error)
    assert outcome.error is error and outcome.value is None
    assert run.ended and not run.has_more
    assert run.complete(answered(requests[1])) is None


@pytest.mark.timeout(10)
def test_a_read_through_a_window_on_a_lossy_link() -> None:
    """Pieces go through a real Window that loses every third datagram."""
    run = read_run(4000, address=BASE + 3)
    window = Window(WindowSettings(size=8, initial_rto=0.01, rto_ceiling=0.01))
    outcomes: list[Outcome] = []
    now, sent = 0.0, 0
    while not outcomes:
        for request in run.take(16 - window.queued):
            window.add(request, now)
        for datagram in window.poll(now):
            sent += 1
            if sent % 3:
                window.receive(reply(datagram), now)
        for request in window.take_completed():
            outcome = run.complete(request)
            if outcome is not None:
                outcomes.append(outcome)
        now += 0.005
    (outcome,) = outcomes
    assert outcome.ok
    assert bytes(outcome.value) == memory(BASE + 3, 4000)
    assert outcome.resends > 0 and outcome.timeouts > 0


# -- writes --------------------------------------------------------------------------


@pytest.mark.timeout(10)
def test_a_write_is_split_like_write_memory() -> None:
    data = bytes(range(256)) * 2 + b"tail"
    job = WriteJob("w", 0, 1, 2, BASE + 2, data)
    run = JobRun.of(job, Sink(), 0.0, (3, 4))
    assert isinstance(run, WriteRun)
    assert run.n_pieces == 3
    requests = run.take(3)
    for request, offset in zip(requests, (0, 256, 512), strict=True):
        piece = data[offset : offset + 256]
        expected = WriteMemory((0, 1, 2), BASE + 2 + offset, piece)
        expected.sdp_header.update_for_send(3, 4)
        assert request.datagram == b"\0\0" + expected.bytestring
        assert request.reply_size is None
    outcomes = [run.complete(answered(r)) for r in reversed(requests)]
    assert outcomes[:2] == [None, None]
    assert outcomes[2] is not None and outcomes[2].ok
    assert outcomes[2].value is None


@pytest.mark.timeout(10)
def test_a_write_error_code_names_the_address() -> None:
    job = WriteJob("w", 0, 0, 1, BASE, bytes(600))
    run = JobRun.of(job, Sink(), 0.0, SOURCE)
    requests = run.take(3)
    outcome = run.complete(answered(requests[2], SCPResult.RC_ROUTE))
    assert outcome is not None
    assert isinstance(outcome.error, UnexpectedResponseCodeError)
    assert f"write at 0x{BASE + 512:08x} on 0,0,1" in str(outcome.error)
    assert "CMD_WRITE" in str(outcome.error)
    assert run.complete(answered(requests[0])) is None


@pytest.mark.timeout(10)
def test_a_zero_length_write_has_no_pieces() -> None:
    run = JobRun.of(WriteJob("w", 0, 0, 0, BASE, b""), Sink(), 0.0, SOURCE)
    assert run.n_pieces == 0 and run.take(5) == []
    outcome = run.finish_empty()
    assert outcome.ok and outcome.value is None


# -- single SCP requests ---------------------------------------------------------------


@pytest.mark.timeout(10)
def test_an_scp_job_is_one_request_whose_reply_is_the_value() -> None:
    job = SCPJob("v", GetVersion(1, 2, 3), timeout=1.0)
    run = JobRun.of(job, Sink(), 5.0, (7, 8))
    assert isinstance(run, SCPRun) and run.n_pieces == 1
    (request,) = run.take(5)
    expected = GetVersion(1, 2, 3)
    expected.sdp_header.update_for_send(7, 8)
    assert request.datagram == b"\0\0" + expected.bytestring
    assert request.deadline == 6.0 and request.may_resend
    assert request.reply_size is None
    answer = reply(request.datagram, payload=b"version-info")
    request.reply, request.sends = answer, 1
    outcome = run.complete(request)
    assert outcome is not None and outcome.value == answer


@pytest.mark.timeout(10)
def test_an_scp_job_hands_an_error_reply_to_the_caller() -> None:
    run = JobRun.of(SCPJob("v", GetVersion(0, 0, 0)), Sink(), 0.0, SOURCE)
    (request,) = run.take(1)
    outcome = run.complete(answered(request, SCPResult.RC_CPU))
    assert outcome is not None and outcome.ok
    assert outcome.value == reply(request.datagram, SCPResult.RC_CPU)


@pytest.mark.timeout(10)
def test_an_scp_job_that_must_not_run_twice_says_so() -> None:
    run = JobRun.of(SCPJob("s", SendSignal(17, Signal.START)), Sink(), 0.0, SOURCE)
    (request,) = run.take(1)
    assert request.may_resend is False


@pytest.mark.timeout(10)
def test_an_scp_read_knows_its_reply_size() -> None:
    run = JobRun.of(SCPJob("r", ReadMemory((0, 0, 0), BASE, 100)), Sink(), 0.0, SOURCE)
    (request,) = run.take(1)
    assert request.reply_size == 114


@pytest.mark.timeout(10)
def test_an_scp_job_failed_in_the_window_names_the_request() -> None:
    run = JobRun.of(SCPJob("v", GetVersion(1, 2, 3)), Sink(), 0.0, SOURCE)
    (request,) = run.take(1)
    outcome = run.complete(failed(request, RequestTimeout("no reply")))
    assert outcome is not None
    assert isinstance(outcome.error, RequestTimeout)
    assert "GetVersion(1,2,3" in str(outcome.error)
    assert run.complete(request) is None


# -- exactly one outcome, whatever happens ----------------------------------------------


@pytest.mark.timeout(10)
@settings(max_examples=100, deadline=None, derandomize=True)
@given(
    length=st.integers(1, 3000),
    seed=st.integers(0, 2**32 - 1),
    fail_at=st.one_of(st.none(), st.floats(0, 1)),
)
def test_each_job_gives_exactly_one_outcome(
    length: int, seed: int, fail_at: float | None
) -> None:
    rng = random.Random(seed)
    run = read_run(length)
    pending: list[Request] = []
    outcomes: list[Outcome] = []
    steps = 0
    while run.has_more or pending:
        pending += run.take(rng.randint(1, 4))
        rng.shuffle(pending)
        request = pending.pop()
        steps += 1
        if rng.random() < 0.2:
            run.restart()  # the window lost what it held
            pending.clear()
            continue
        if fail_at is not None and rng.random() < fail_at * 0.1:
            failed(request, RequestTimeout("lost"))
        elif fail_at is not None and rng.random() < fail_at * 0.1:
            answered(request, SCPResult.RC_ARG)
        else:
            answered(request)
        if rng.random() < 0.1:
            pending.append(request)  # and once more
        outcome = run.complete(request)
        if outcome is not None:
            outcomes.append(outcome)
        assert steps < 100_000
    assert len(outcomes) == 1
    assert run.ended
    (outcome,) = outcomes
    if outcome.ok:
        assert bytes(outcome.value) == memory(BASE, length)


@pytest.mark.timeout(10)
def test_an_ended_job_asks_for_nothing_after_restart() -> None:
    run = read_run(1000)
    run.take(4)
    run.fail(ShutDown("connection closed"))
    run.restart()
    assert not run.has_more
    assert run.take(10) == []


# -- plain data across boundaries ------------------------------------------------------


def _round_trip(value: Any) -> Any:
    return pickle.loads(pickle.dumps(value))


@pytest.mark.timeout(10)
def test_jobs_pickle() -> None:
    read_job = ReadJob("r", 1, 2, 3, BASE, 1000, timeout=2.0)
    write_job = WriteJob(("w", 1), 0, 0, 1, BASE, b"data", None)
    assert _round_trip(read_job) == read_job
    assert _round_trip(write_job) == write_job
    scp_job = _round_trip(SCPJob("v", GetVersion(1, 2, 3), 0.5))
    assert scp_job.key == "v" and scp_job.timeout == 0.5
    scp_job.request.sdp_header.update_for_send(255, 255)
    expected = GetVersion(1, 2, 3)
    expected.sdp_header.update_for_send(255, 255)
    assert scp_job.request.bytestring == expected.bytestring


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "outcome",
    [
        Outcome("k", bytearray(b"abc"), None, 1, 2, 3),
        Outcome(("job", 7), None, None),
        Outcome(
            "k", None, RequestTimeout("read at 0x0: no reply after 3 tries"), 2, 0, 3
        ),
        Outcome("k", None, RetriesExhausted("busy")),
        Outcome("k", None, DeadlineExceeded("late")),
        Outcome("k", None, ShutDown("stop")),
    ],
    ids=["value", "none", "timeout", "exhausted", "deadline", "shutdown"],
)
def test_outcomes_pickle(outcome: Outcome) -> None:
    copy = _round_trip(outcome)
    assert (
        copy.key,
        copy.value,
        copy.resends,
        copy.retry_code_resent,
        copy.timeouts,
        copy.ok,
    ) == (
        outcome.key,
        outcome.value,
        outcome.resends,
        outcome.retry_code_resent,
        outcome.timeouts,
        outcome.ok,
    )
    if outcome.error is not None:
        assert type(copy.error) is type(outcome.error)
        assert str(copy.error) == str(outcome.error)


@pytest.mark.timeout(10)
def test_an_outcome_with_a_board_error_pickles() -> None:
    run = read_run(512)
    first, _ = run.take(2)
    outcome = run.complete(answered(first, SCPResult.RC_ARG))
    assert outcome is not None
    copy = _round_trip(outcome)
    assert isinstance(copy.error, UnexpectedResponseCodeError)
    assert str(copy.error) == str(outcome.error)


# -- argument checks ------------------------------------------------------------------------


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "args",
    [
        dict(x=0, y=0, p=18, address=BASE, length=4),
        dict(x=256, y=0, p=0, address=BASE, length=4),
        dict(x=0, y=-1, p=0, address=BASE, length=4),
        dict(x=0, y=0, p=0, address=2**32 - 100, length=101),
        dict(x=0, y=0, p=0, address=2**32, length=0),
        dict(x=0, y=0, p=0, address=-4, length=4),
        dict(x=0, y=0, p=0, address=BASE, length=-1),
        dict(x=0, y=0, p=0, address=BASE, length=True),
        dict(x=0, y=0, p=0, address=BASE, length=1.5),
    ],
    ids=[
        "core18",
        "x256",
        "y-1",
        "past2**32",
        "address2**32",
        "negative-address",
        "negative-length",
        "bool-length",
        "float-length",
    ],
)
def test_bad_read_arguments_are_refused(args: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgumentError):
        ReadJob("bad", **args)


@pytest.mark.timeout(10)
def test_reads_up_to_the_top_of_memory_are_fine() -> None:
    run = read_run(100, address=2**32 - 100)
    assert run.n_pieces == 1
    ReadJob("ok", 255, 255, 17, 0, 0)


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "args",
    [
        dict(x=0, y=0, p=18, address=BASE, data=b"x"),
        dict(x=0, y=0, p=0, address=2**32 - 2, data=b"abc"),
        dict(x=0, y=0, p=0, address=-1, data=b"abc"),
    ],
    ids=["core18", "past2**32", "negative-address"],
)
def test_bad_write_arguments_are_refused(args: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgumentError):
        WriteJob("bad", **args)


# -- the chunk builder is ReadMemory / WriteMemory, byte for byte ----------------------


@st.composite
def spans(draw: Any) -> tuple[int, int]:
    size = draw(st.integers(1, 256))
    address = draw(
        st.one_of(
            st.integers(0, (1 << 32) - size),
            st.integers(0, 64),  # low memory
            st.integers(0, 64).map(lambda gap: (1 << 32) - size - gap),
        )
    )
    return address, size


chips = st.integers(0, 255)
cores = st.integers(0, 17)


@pytest.mark.timeout(10)
@settings(max_examples=200, deadline=None, derandomize=True)
@given(chips, chips, cores, spans(), chips, chips)
def test_chunk_builder_read_is_read_memory(
    x: int, y: int, p: int, span: tuple[int, int], source_x: int, source_y: int
) -> None:
    address, size = span
    reference = ReadMemory((x, y, p), address, size)
    reference.sdp_header.update_for_send(source_x, source_y)
    built = ChunkBuilder(x, y, p, source_x, source_y).read(address, size)
    assert bytes(built) == b"\0\0" + reference.bytestring


@pytest.mark.timeout(10)
@settings(max_examples=200, deadline=None, derandomize=True)
@given(chips, chips, cores, spans(), st.data())
def test_chunk_builder_write_is_write_memory(
    x: int, y: int, p: int, span: tuple[int, int], data: Any
) -> None:
    address, size = span
    payload = data.draw(st.binary(min_size=size, max_size=size))
    reference = WriteMemory((x, y, p), address, payload)
    reference.sdp_header.update_for_send(255, 255)
    built = ChunkBuilder(x, y, p).write(address, payload)
    assert bytes(built) == b"\0\0" + reference.bytestring
    assert bytes(ChunkBuilder(x, y, p).write(address, memoryview(payload))) == bytes(
        built
    )
