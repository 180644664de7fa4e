"""SCPRequestPipeLine takes SpiNNMan's own requests and keeps SpiNNMan's
contract: its request and response objects, its exceptions, its callbacks
on the caller's thread, its retry-code rules, and write fences for its
WriteMemory. Against the virtual board on 127.0.0.1, through SpiNNMan's
own SCAMPConnection unless said otherwise."""

from __future__ import annotations

import os
import re
import select
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from spinnman.connections.udp_packet_connections import (
    SCAMPConnection as SpiNNManSCAMPConnection,
)
from spinnman.exceptions import (
    SpinnmanIOException,
    SpinnmanTimeoutException,
    SpinnmanUnexpectedResponseCodeException,
)
from spinnman.messages.scp.enums import SCPResult as SpiNNManResult
from spinnman.messages.scp.impl import CountState, GetVersion, ReadMemory, WriteMemory
from spinnman.messages.scp.impl.count_state_response import CountStateResponse
from spinnman.model.enums import CPUState
from spinnman.spalloc.spalloc_scp_connection import (
    SpallocSCPConnection as SCAMPConnectionOfSpalloc,
)

from actors import RequestTimeout, SCPRequestPipeLine
from tests.system.cold import cold_board, rom_of
from transport import FaultPlan, SCAMPConnection, VirtualBoard

ADDRESS = 0x6000_0000


class Record:
    """Every callback and error callback, with the thread it ran on."""

    def __init__(self) -> None:
        self.replies: list[Any] = []
        self.errors: list[tuple[Any, BaseException, Any, Any]] = []
        self.threads: set[int] = set()

    def callback(self, response: Any) -> None:
        self.threads.add(threading.get_ident())
        self.replies.append(response)

    def error_callback(
        self, request: Any, error: BaseException, traceback: Any, connection: Any
    ) -> None:
        self.threads.add(threading.get_ident())
        self.errors.append((request, error, traceback, connection))


@contextmanager
def spinnman_connection(board: VirtualBoard) -> Iterator[SpiNNManSCAMPConnection]:
    host, port = board.address
    connection = SpiNNManSCAMPConnection(0, 0, remote_host=host, remote_port=port)
    try:
        yield connection
    finally:
        connection.close()


def data_of(response: Any, size: int) -> bytes:
    return bytes(response.data[response.offset : response.offset + size])


def kept_in(read: dict[int, bytes], index: int) -> Callable[[Any], None]:
    """A callback that keeps a 256-byte read's data as ``read[index]``."""
    return lambda response: read.update({index: data_of(response, 256)})


@pytest.mark.timeout(60)
@pytest.mark.parametrize("ours", [False, True], ids=["spinnmans", "ours"])
def test_spinnmans_requests_write_read_and_ask_version(ours: bool) -> None:
    """On SpiNNMan's connection and on ours: what is read back is what
    was written, byte for byte, and the board's memory agrees."""
    data = os.urandom(64 * 256)
    record = Record()
    with VirtualBoard(2, 2, faults=FaultPlan(drop=0.02, seed=4)) as board:
        host, port = board.address
        connection: Any = (
            SCAMPConnection(0, 0, remote_host=host, remote_port=port)
            if ours
            else SpiNNManSCAMPConnection(0, 0, remote_host=host, remote_port=port)
        )
        try:
            pipeline: SCPRequestPipeLine[Any] = SCPRequestPipeLine(
                connection, n_channels=8, intermediate_channel_waits=7
            )
            for index in range(64):
                chunk = data[index * 256 : (index + 1) * 256]
                pipeline.send_request(
                    WriteMemory((1, 1, 0), ADDRESS + index * 256, chunk),
                    record.callback,
                    record.error_callback,
                )
            pipeline.finish()
            read: dict[int, bytes] = {}
            for index in range(64):
                pipeline.send_request(
                    ReadMemory((1, 1, 0), ADDRESS + index * 256, 256),
                    kept_in(read, index),
                    record.error_callback,
                )
            pipeline.send_request(
                GetVersion(0, 0, 0), record.callback, record.error_callback
            )
            pipeline.finish()
        finally:
            connection.close()
        held = board.monitor.memory.read((1 << 8) | 1, ADDRESS, len(data))
    assert record.errors == []
    assert b"".join(read[index] for index in range(64)) == data
    assert held == data
    version = record.replies[-1].version_info
    assert (version.name, version.hardware) == ("SC&MP", "Virtual")


@pytest.mark.timeout(60)
def test_callbacks_run_on_the_callers_thread_and_may_queue_more() -> None:
    """Every callback has run, on the caller's thread, before finish()
    returns, including those of requests that callbacks sent while
    finish() ran; finish() may be called twice."""
    record = Record()
    chain = 40
    with VirtualBoard(2, 2) as board, spinnman_connection(board) as connection:
        pipeline: SCPRequestPipeLine[Any] = SCPRequestPipeLine(connection)

        def next_one(response: Any) -> None:
            record.callback(response)
            if len(record.replies) < chain:
                pipeline.send_request(
                    GetVersion(0, 0, 0), next_one, record.error_callback
                )

        pipeline.send_request(GetVersion(0, 0, 0), next_one, record.error_callback)
        pipeline.finish()
        assert len(record.replies) == chain
        pipeline.finish()
    assert record.errors == []
    assert record.threads == {threading.get_ident()}


@pytest.mark.timeout(60)
def test_an_unanswered_request_gets_spinnmans_timeout_with_the_original() -> None:
    """A board that never answers: every try timed out, so the error
    callback gets SpinnmanTimeoutException (SpiNNMan decides to boot on
    it), the original request, a real traceback and the connection."""
    record = Record()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        host, port = silent.getsockname()
        connection = SpiNNManSCAMPConnection(0, 0, remote_host=host, remote_port=port)
        try:
            pipeline: SCPRequestPipeLine[Any] = SCPRequestPipeLine(
                connection, n_retries=2, packet_timeout=0.05
            )
            request = ReadMemory((0, 0, 0), ADDRESS, 16)
            pipeline.send_request(request, record.callback, record.error_callback)
            pipeline.finish()
        finally:
            connection.close()
    ((failed, error, traceback, given),) = record.errors
    assert failed is request
    assert isinstance(error, SpinnmanTimeoutException)
    assert error.operation is request
    assert traceback is not None
    assert given is connection
    assert pipeline.n_timeouts == 3
    assert pipeline.n_resent == 2


@pytest.mark.timeout(60)
def test_a_board_gone_silent_times_out_saying_where_and_how_long() -> None:
    """A board that answered, then lost its power: with n_retries=0 its
    read is given up after one send and the wait the round trips taught
    (ms), not packet_timeout. SpiNNMan's exception says so, and where, as
    our RequestTimeout (its cause) does; its timeout is the time waited."""
    record = Record()
    request = ReadMemory((0, 0, 0), ADDRESS, 16)
    board = cold_board(186, booted=True)  # (with a ROM, to lose its power)
    try:
        with spinnman_connection(board) as connection:
            pipeline: SCPRequestPipeLine[Any] = SCPRequestPipeLine(
                connection, n_retries=0, packet_timeout=5.0
            )

            # Round trips to learn the wait from, then the power goes and
            # the read is sent, all in one finish() (the actor, and what it
            # learnt, stays while requests are open). A version not answered
            # in time on a loaded machine (no retries) counts as done too.
            warm_ups = iter(range(20))

            def next_one(*_: Any) -> None:
                if next(warm_ups, None) is not None:
                    pipeline.send_request(GetVersion(0, 0, 0), next_one, next_one)
                    return
                rom_of(board).halt()  # nothing answers now
                pipeline.send_request(request, record.callback, record.error_callback)

            next_one()
            pipeline.finish()
    finally:
        board.stop()
    ((failed, error, _, _),) = record.errors
    assert failed is request
    assert isinstance(error, SpinnmanTimeoutException)
    assert error.operation is request
    host, port = board.address
    text = str(error)
    assert "5.0 seconds" not in text, text
    assert text.startswith(f"Operation {request} timed out: "), text
    took = re.search(
        rf": no reply from {host}:{port} after 1 try in (\d+\.\d+) s; check the "
        r"address, or that a board answers there",
        text,
    )
    assert took is not None, text
    # SpiNNMan's callers read its timeout: the seconds waited, not 5.0.
    assert isinstance(error.timeout, float)
    assert 0 < error.timeout < 2.5
    assert abs(float(took[1]) - error.timeout) < 0.05
    cause = error.__cause__
    assert isinstance(cause, RequestTimeout)
    assert (cause.sends, cause.waited, cause.address) == (
        1,
        error.timeout,
        (host, port),
    )


class AnyResultCountState(CountState):
    """A request of SpiNNMan's kind (as SpiNNFrontEndCommon writes its
    own) whose response takes whatever result code came."""

    def get_scp_response(self) -> CountStateResponse:
        class Lenient(CountStateResponse):
            def read_data_bytestring(self, data: bytes, offset: int) -> None:
                self.code = self.scp_response_header.result

        return Lenient()


@pytest.mark.timeout(60)
def test_persisting_retry_codes_fail_with_spinnmans_io_error() -> None:
    record = Record()
    with (
        VirtualBoard(2, 2, faults=FaultPlan(busy=1.0, seed=3)) as board,
        spinnman_connection(board) as connection,
    ):
        pipeline: SCPRequestPipeLine[Any] = SCPRequestPipeLine(connection, n_retries=2)
        request = CountState(0, 0, 16, CPUState.RUNNING)
        pipeline.send_request(request, record.callback, record.error_callback)
        pipeline.finish()
    ((failed, error, _, _),) = record.errors
    assert failed is request
    assert isinstance(error, SpinnmanIOException)
    assert "RC_P2P_BUSY" in str(error) or "RC_TIMEOUT" in str(error)
    assert pipeline.n_retry_code_resent == 2


@pytest.mark.timeout(60)
def test_a_persisting_non_fail_code_goes_to_the_callback() -> None:
    record = Record()
    with (
        VirtualBoard(2, 2, faults=FaultPlan(busy=1.0, seed=3)) as board,
        spinnman_connection(board) as connection,
    ):
        pipeline: SCPRequestPipeLine[Any] = SCPRequestPipeLine(
            connection,
            n_retries=2,
            non_fail_retry_codes={
                SpiNNManResult.RC_P2P_BUSY,
                SpiNNManResult.RC_TIMEOUT,
            },
        )
        pipeline.send_request(
            AnyResultCountState(0, 0, 16, CPUState.RUNNING),
            record.callback,
            record.error_callback,
        )
        pipeline.finish()
    assert record.errors == []
    (response,) = record.replies
    assert response.code in (SpiNNManResult.RC_P2P_BUSY, SpiNNManResult.RC_TIMEOUT)
    assert pipeline.n_retry_code_resent == 2


@pytest.mark.timeout(60)
def test_a_response_parse_error_reaches_the_error_callback_unchanged() -> None:
    """The board's error code is SpiNNMan's response class's to raise
    over: its exception, unchanged, at once (no resend)."""
    record = Record()
    with VirtualBoard(2, 2) as board, spinnman_connection(board) as connection:
        pipeline: SCPRequestPipeLine[Any] = SCPRequestPipeLine(connection)
        request = GetVersion(200, 200, 0)  # no such chip: RC_ROUTE
        pipeline.send_request(request, record.callback, record.error_callback)
        pipeline.finish()
        assert board.stats.received == 1
    ((failed, error, traceback, _),) = record.errors
    assert failed is request
    assert type(error) is SpinnmanUnexpectedResponseCodeException
    assert traceback is not None
    assert pipeline.n_resent == 0


class Cutting(SpiNNManSCAMPConnection):
    """SpiNNMan's connection, cutting the first ``cut`` replies short and
    not sending the first ``lose`` requests (as a lossy link would)."""

    def __init__(self, *args: Any, cut: int = 0, lose: int = 0) -> None:
        super().__init__(*args)
        self.cut, self.lose, self.sent = cut, lose, 0

    def send(self, data: bytes) -> None:
        self.sent += 1
        if self.lose:
            self.lose -= 1
            return
        super().send(data)

    def receive_scp_response(self, timeout: float | None = 1.0) -> Any:
        result, sequence, data, offset = super().receive_scp_response(timeout)
        if self.cut:
            self.cut -= 1
            data = data[:18]
        return result, sequence, data, offset


@contextmanager
def cutting(board: VirtualBoard, **faults: int) -> Iterator[Cutting]:
    host, port = board.address
    connection = Cutting(0, 0, None, None, host, port, **faults)
    try:
        yield connection
    finally:
        connection.close()


@pytest.mark.timeout(60)
def test_a_read_answered_short_is_a_loss_and_read_again() -> None:
    """The protocol fixes a read's reply length: a shorter RC_OK reply is
    taken as lost and the read resent, never handed on as data."""
    data = os.urandom(256)
    record = Record()
    with VirtualBoard(2, 2) as board, cutting(board, cut=2) as connection:
        board.monitor.memory.write(0, ADDRESS, data)
        pipeline: SCPRequestPipeLine[Any] = SCPRequestPipeLine(
            connection, packet_timeout=0.2
        )
        pipeline.send_request(
            ReadMemory((0, 0, 0), ADDRESS, 256), record.callback, record.error_callback
        )
        pipeline.finish()
    assert record.errors == []
    assert data_of(record.replies[0], 256) == data
    assert connection.cut == 0
    assert pipeline.n_resent == 2


@pytest.mark.timeout(60)
def test_a_reply_spinnmans_response_cannot_parse_fails_at_once() -> None:
    """Any other RC_OK reply SpiNNMan's response class cannot parse goes
    to the error callback with the exception it raised, as in SpiNNMan,
    without a resend."""
    record = Record()
    with VirtualBoard(2, 2) as board, cutting(board, cut=1) as connection:
        pipeline: SCPRequestPipeLine[Any] = SCPRequestPipeLine(
            connection, packet_timeout=0.2
        )
        request = GetVersion(0, 0, 0)
        pipeline.send_request(request, record.callback, record.error_callback)
        pipeline.finish()
        received = board.stats.received
    ((failed, error, _, _),) = record.errors
    assert failed is request
    assert type(error).__module__.split(".")[0] in ("spinnman", "struct", "builtins")
    assert not type(error).__module__.startswith(("actors", "messages", "transport"))
    assert received == 1
    assert pipeline.n_resent == 0


@pytest.mark.timeout(60)
def test_spinnmans_requests_are_resent_as_spinnman_resends_them() -> None:
    """SpiNNMan resends every request after a timeout; a SpiNNMan request
    that does not say whether it may be resent is resent too (ours would
    not be: the project's SendSignal says it must not)."""
    from spinnman.messages.scp.enums import Signal
    from spinnman.messages.scp.impl import SendSignal

    record = Record()
    with VirtualBoard(2, 2) as board, cutting(board, lose=1) as connection:
        pipeline: SCPRequestPipeLine[Any] = SCPRequestPipeLine(
            connection, packet_timeout=0.1
        )
        pipeline.send_request(
            SendSignal(16, Signal.SYNC0), record.callback, record.error_callback
        )
        pipeline.finish()
    assert record.errors == []
    assert len(record.replies) == 1
    assert connection.sent == 2
    assert pipeline.n_resent == 1


@pytest.mark.timeout(60)
def test_spinnmans_overlapping_writes_are_fenced() -> None:
    """Every datagram duplicated, each copy delayed up to 30 ms: without a
    fence, a late copy of the first write to an address lands after the
    second. SpiNNMan's WriteMemory is fenced as ours is, so the board
    holds the last write every time."""
    rounds = 12
    faults = FaultPlan(duplicate=1.0, delay=0.03, seed=21)
    wrong = 0
    record = Record()
    with (
        VirtualBoard(2, 2, faults=faults) as board,
        spinnman_connection(board) as connection,
    ):
        pipeline: SCPRequestPipeLine[Any] = SCPRequestPipeLine(
            connection, n_channels=8, intermediate_channel_waits=7, packet_timeout=0.2
        )
        for round_ in range(rounds):
            first, last = bytes([2 * round_]) * 256, bytes([2 * round_ + 1]) * 256
            for data in (first, last):
                pipeline.send_request(
                    WriteMemory((0, 0, 0), ADDRESS, data),
                    record.callback,
                    record.error_callback,
                )
            pipeline.finish()
            read: list[bytes] = []

            def keep(response: Any, read: list[bytes] = read) -> None:
                read.append(data_of(response, 256))

            pipeline.send_request(
                ReadMemory((0, 0, 0), ADDRESS, 256), keep, record.error_callback
            )
            pipeline.finish()
            wrong += read != [last]
    assert record.errors == []
    assert wrong == 0


@pytest.mark.timeout(60)
def test_reads_of_a_failed_run_are_answered_each_on_its_own() -> None:
    """SpiNNMan's contiguous reads go as one transfer; when it fails on a
    busy code that persisted, each read is sent again alone and gets its
    own outcome, as SpiNNMan would give it: its data, or its error."""
    chunks = 32
    data = os.urandom(chunks * 256)
    record = Record()
    read: dict[int, bytes] = {}
    with (
        VirtualBoard(2, 2, faults=FaultPlan(busy=0.3, seed=8)) as board,
        spinnman_connection(board) as connection,
    ):
        board.monitor.memory.write(0, ADDRESS, data)
        pipeline: SCPRequestPipeLine[Any] = SCPRequestPipeLine(
            connection, n_channels=8, intermediate_channel_waits=7, n_retries=0
        )
        for index in range(chunks):
            pipeline.send_request(
                ReadMemory((0, 0, 0), ADDRESS + index * 256, 256),
                kept_in(read, index),
                record.error_callback,
            )
        pipeline.finish()
    failed = [request.argument_1 for request, *_ in record.errors]
    assert len(failed) == len(set(failed))
    assert read and failed, "some of each (30% busy, no retries)"
    assert len(read) + len(failed) == chunks
    # Its error: the busy code that persisted (no retries), or, on a loaded
    # machine, no reply within the adaptive wait (nothing is resent either).
    assert all(
        isinstance(error, SpinnmanIOException | SpinnmanTimeoutException)
        for _, error, *_ in record.errors
    )
    assert any(isinstance(error, SpinnmanIOException) for _, error, *_ in record.errors)
    for index, got in read.items():
        assert got == data[index * 256 : (index + 1) * 256]
        assert ADDRESS + index * 256 not in failed


@pytest.mark.timeout(60)
def test_each_write_of_a_failed_run_gets_the_failure_once() -> None:
    record = Record()
    with (
        VirtualBoard(2, 2, faults=FaultPlan(busy=1.0, seed=3)) as board,
        spinnman_connection(board) as connection,
    ):
        pipeline: SCPRequestPipeLine[Any] = SCPRequestPipeLine(connection, n_retries=1)
        requests = [
            WriteMemory((0, 0, 0), ADDRESS + index * 256, bytes([index]) * 256)
            for index in range(4)
        ]
        for request in requests:
            pipeline.send_request(request, record.callback, record.error_callback)
        pipeline.finish()
    assert record.replies == []
    assert [failed for failed, *_ in record.errors] == requests
    assert all(isinstance(error, SpinnmanIOException) for _, error, *_ in record.errors)


@pytest.mark.timeout(60)
def test_spinnmans_bmp_connection_is_driven_through_its_own_methods() -> None:
    """SpiNNMan's BMPConnection stamps its requests from chip (0, 0) in its
    own get_scp_data; the pipeline sends what that makes."""
    from spinnman.connections.udp_packet_connections import BMPConnection
    from spinnman.model import BMPConnectionData

    record = Record()
    with VirtualBoard(2, 2) as board:
        host, port = board.address
        connection = BMPConnection(BMPConnectionData(host, [0], port))
        try:
            pipeline: SCPRequestPipeLine[Any] = SCPRequestPipeLine(connection)
            request = GetVersion(0, 0, 0)
            pipeline.send_request(request, record.callback, record.error_callback)
            pipeline.finish()
        finally:
            connection.close()
    assert record.errors == []
    assert record.replies[0].version_info.name == "SC&MP"
    header = request.sdp_header
    assert (header.source_chip_x, header.source_chip_y) == (0, 0)


class Proxied(SCAMPConnectionOfSpalloc):
    """A spalloc-proxied SCAMP connection as SpiNNMan's spalloc client makes
    one: no remote address of its own, every datagram through its own send
    and receive (here a tunnel to the board standing in for the websocket)."""

    def __init__(self, x: int, y: int, board: tuple[str, int]) -> None:
        super().__init__(x, y)
        self.tunnel = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.tunnel.connect(board)
        self.sent = 0

    def send(self, data: bytes) -> None:
        self.sent += 1
        self.tunnel.send(data)

    def receive(self, timeout: float | None = None) -> bytes:
        self.tunnel.settimeout(timeout)
        try:
            return self.tunnel.recv(2048)
        except TimeoutError:
            raise SpinnmanTimeoutException("receive", timeout) from None

    def is_ready_to_receive(self, timeout: float = 0) -> bool:
        return bool(select.select([self.tunnel], [], [], timeout)[0])

    def close(self) -> None:
        self.tunnel.close()
        super().close()


@pytest.mark.timeout(60)
def test_a_spalloc_proxied_connection_without_a_remote_address_works() -> None:
    data = os.urandom(8 * 256)
    record = Record()
    read: dict[int, bytes] = {}
    with VirtualBoard(2, 2) as board:
        connection = Proxied(0, 0, board.address)
        try:
            assert connection.remote_ip_address is None
            pipeline: SCPRequestPipeLine[Any] = SCPRequestPipeLine(
                connection, n_channels=8, intermediate_channel_waits=7
            )
            for index in range(8):
                pipeline.send_request(
                    WriteMemory(
                        (0, 0, 0), ADDRESS + index * 256, data[index * 256 :][:256]
                    ),
                    record.callback,
                    record.error_callback,
                )
            pipeline.finish()
            for index in range(8):
                pipeline.send_request(
                    ReadMemory((0, 0, 0), ADDRESS + index * 256, 256),
                    kept_in(read, index),
                    record.error_callback,
                )
            pipeline.finish()
        finally:
            connection.close()
    assert record.errors == []
    assert b"".join(read[index] for index in range(8)) == data
    assert connection.sent >= 16  # every datagram went through its send
