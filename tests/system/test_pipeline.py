"""SCPRequestPipeLine driven as SpiNNMan drives it, against a lossy
VirtualBoard on real UDP.

SpiNNMan's processes call ``send_request(request, callback,
error_callback)`` for every request and then ``finish()``; each request
must end in exactly one of its two callbacks, and finish() must not return
before all of them have run.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import pytest

from actors import RequestTimeout, SCPRequestPipeLine, connect
from messages.errors import InvalidArgumentError, UnexpectedResponseCodeError
from messages.scp import GetVersion, ReadMemory, WriteMemory
from messages.scp.base import AbstractSCPRequest
from transport import FaultPlan, SCAMPConnection, VirtualBoard

ADDRESS = 0x6000_0000
CHUNK = 256
SIZE = 1 << 20


@dataclass
class Ledger:
    """Every callback and error callback, by request."""

    thread: threading.Thread = field(default_factory=threading.current_thread)
    ok: Counter[int] = field(default_factory=Counter)
    failed: Counter[int] = field(default_factory=Counter)
    errors: dict[int, BaseException] = field(default_factory=dict)
    foreign_threads: int = 0
    bad_signatures: list[str] = field(default_factory=list)

    def callback(self, key: int, then: Any = None) -> Any:
        """Counts a callback that returned (one that raises is counted
        by the error callback it leads to)."""

        def on_reply(response: Any) -> None:
            if threading.current_thread() is not self.thread:
                self.foreign_threads += 1
            if then is not None:
                then(response)
            self.ok[key] += 1

        return on_reply

    def error_callback(self, key: int, connection: SCAMPConnection) -> Any:
        def on_error(
            request: AbstractSCPRequest[Any],
            exception: Exception,
            traceback: TracebackType | None,
            conn: SCAMPConnection,
        ) -> None:
            if threading.current_thread() is not self.thread:
                self.foreign_threads += 1
            if not isinstance(request, AbstractSCPRequest):
                self.bad_signatures.append(f"request {request!r}")
            if not isinstance(exception, Exception):
                self.bad_signatures.append(f"exception {exception!r}")
            if not (traceback is None or isinstance(traceback, TracebackType)):
                self.bad_signatures.append(f"traceback {traceback!r}")
            if conn is not connection:
                self.bad_signatures.append(f"connection {conn!r}")
            self.failed[key] += 1
            self.errors[key] = exception

        return on_error

    def check_each_once(self, n: int) -> None:
        assert not self.bad_signatures, self.bad_signatures
        assert self.foreign_threads == 0, "callbacks ran on another thread"
        both = set(self.ok) & set(self.failed)
        assert not both, f"requests with both callbacks: {sorted(both)[:5]}"
        assert all(count == 1 for count in self.ok.values()), {
            k: c for k, c in self.ok.items() if c != 1
        }
        assert all(count == 1 for count in self.failed.values()), {
            k: c for k, c in self.failed.items() if c != 1
        }
        assert set(self.ok) | set(self.failed) == set(range(n))


def actor_threads() -> set[threading.Thread]:
    return {
        thread
        for thread in threading.enumerate()
        if thread.name.startswith("ConnectionActor")
    }


def lossy_plan(seed: int) -> FaultPlan:
    return FaultPlan(drop=0.05, duplicate=0.05, reorder=0.05, seed=seed)


@pytest.fixture
def lossy_board(request: pytest.FixtureRequest) -> Iterator[VirtualBoard]:
    seed = getattr(request, "param", 11)
    with VirtualBoard(8, 8, faults=lossy_plan(seed)) as board:
        yield board


@pytest.fixture
def clean_board() -> Iterator[VirtualBoard]:
    with VirtualBoard(8, 8) as board:
        yield board


def scamp(board: VirtualBoard) -> SCAMPConnection:
    host, port = board.address
    return SCAMPConnection(remote_host=host, remote_port=port)


def write_all(
    connection: SCAMPConnection, data: bytes, x: int, y: int, **options: Any
) -> tuple[SCPRequestPipeLine[Any], Ledger]:
    pipeline: SCPRequestPipeLine[Any] = SCPRequestPipeLine(connection, **options)
    ledger = Ledger()
    n = -(-len(data) // CHUNK)
    for key in range(n):
        offset = key * CHUNK
        pipeline.send_request(
            WriteMemory((x, y, 0), ADDRESS + offset, data[offset : offset + CHUNK]),
            ledger.callback(key),
            ledger.error_callback(key, connection),
        )
    pipeline.finish()
    ledger.check_each_once(n)
    return pipeline, ledger


def read_all(
    connection: SCAMPConnection, size: int, x: int, y: int, **options: Any
) -> tuple[SCPRequestPipeLine[Any], Ledger, bytes]:
    pipeline: SCPRequestPipeLine[Any] = SCPRequestPipeLine(connection, **options)
    ledger = Ledger()
    buffer = bytearray(size)
    n = -(-size // CHUNK)

    def store(offset: int) -> Any:
        def put(response: Any) -> None:
            payload = response.payload
            buffer[offset : offset + len(payload)] = payload

        return put

    for key in range(n):
        offset = key * CHUNK
        pipeline.send_request(
            ReadMemory((x, y, 0), ADDRESS + offset, min(CHUNK, size - offset)),
            ledger.callback(key, store(offset)),
            ledger.error_callback(key, connection),
        )
    pipeline.finish()
    ledger.check_each_once(n)
    return pipeline, ledger, bytes(buffer)


CHANNELS = [(1, 0), (4, 0), (4, 3), (8, 0), (8, 7)]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("lossy_board", [3], indirect=True)
@pytest.mark.parametrize(("n_channels", "waits"), CHANNELS)
def test_round_trip_through_faults(
    lossy_board: VirtualBoard, n_channels: int, waits: int
) -> None:
    # A window that drains before refilling waits out a timeout on every
    # loss (as SpiNNMan's does): an eighth of the data keeps it quick.
    size = SIZE if waits == n_channels - 1 > 0 else SIZE // 8
    data = os.urandom(size)
    options = dict(
        n_channels=n_channels, intermediate_channel_waits=waits, packet_timeout=0.05
    )
    with scamp(lossy_board) as connection:
        writer, wrote = write_all(connection, data, 1, 2, **options)
        assert not wrote.failed, list(wrote.errors.values())[:3]
        reader, read, back = read_all(connection, size, 1, 2, **options)
        assert not read.failed, list(read.errors.values())[:3]
    assert back == data
    assert writer.n_channels == reader.n_channels == n_channels
    # 5% of datagrams are lost each way: thousands of requests cannot all
    # have got through at the first try.
    # A loss is mostly mended by a fast resend (three later replies overtake
    # it); only one near the end of a pass waits for its timeout, so a pass
    # may have no timeouts. Each timeout leads to one resend.
    assert writer.n_resent > 0 and reader.n_resent > 0
    assert writer.n_timeouts <= writer.n_resent
    assert reader.n_timeouts <= reader.n_resent
    assert lossy_board.faults.counts.dropped > 0


@pytest.mark.timeout(30)
def test_a_raising_callback_goes_to_its_own_error_callback(
    lossy_board: VirtualBoard,
) -> None:
    n, doomed = 200, 57
    data = os.urandom(n * CHUNK)
    with scamp(lossy_board) as connection:
        write_all(
            connection,
            data,
            0,
            0,
            n_channels=8,
            intermediate_channel_waits=7,
            packet_timeout=0.2,
        )
        pipeline: SCPRequestPipeLine[Any] = SCPRequestPipeLine(
            connection, n_channels=8, intermediate_channel_waits=7, packet_timeout=0.2
        )
        ledger = Ledger()
        got: dict[int, bytes] = {}

        def keep(key: int) -> Any:
            def put(response: Any) -> None:
                if key == doomed:
                    raise ValueError("callback bug")
                got[key] = response.payload

            return put

        for key in range(n):
            pipeline.send_request(
                ReadMemory((0, 0, 0), ADDRESS + key * CHUNK, CHUNK),
                ledger.callback(key, keep(key)),
                ledger.error_callback(key, connection),
            )
        pipeline.finish()
    ledger.check_each_once(n)
    assert set(ledger.failed) == {doomed}
    error = ledger.errors[doomed]
    assert isinstance(error, ValueError) and str(error) == "callback bug"
    assert sorted(got) == [k for k in range(n) if k != doomed]
    for key, payload in got.items():
        assert payload == data[key * CHUNK : (key + 1) * CHUNK]


@pytest.mark.timeout(30)
def test_a_chip_outside_the_grid_fails_alone(lossy_board: VirtualBoard) -> None:
    with scamp(lossy_board) as connection:
        pipeline: SCPRequestPipeLine[Any] = SCPRequestPipeLine(
            connection, n_channels=8, intermediate_channel_waits=7, packet_timeout=0.2
        )
        ledger = Ledger()
        versions: dict[int, tuple[int, int, int]] = {}
        bad = 20

        def keep(key: int) -> Any:
            def put(response: Any) -> None:
                info = response.version_info
                versions[key] = (info.x, info.y, info.p)

            return put

        for key in range(64):
            x, y = (200, 200) if key == bad else (key % 8, key // 8)
            pipeline.send_request(
                GetVersion(x, y, key % 4),
                ledger.callback(key, keep(key)),
                ledger.error_callback(key, connection),
            )
        pipeline.finish()
    ledger.check_each_once(64)
    assert set(ledger.failed) == {bad}
    error = ledger.errors[bad]
    assert isinstance(error, UnexpectedResponseCodeError), repr(error)
    assert "RC_ROUTE" in str(error)
    assert versions == {
        key: (key % 8, key // 8, key % 4) for key in range(64) if key != bad
    }


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"n_channels": 0}, "n_channels"),
        ({"n_channels": 65536}, "n_channels"),
        ({"n_channels": "8"}, "n_channels"),
        ({"intermediate_channel_waits": -1}, "intermediate_channel_waits"),
        ({"intermediate_channel_waits": 1.5}, "intermediate_channel_waits"),
        ({"n_retries": -1}, "n_retries"),
        ({"packet_timeout": 0}, "packet_timeout"),
        ({"packet_timeout": "1"}, "packet_timeout"),
    ],
)
def test_bad_arguments_are_named_as_spinnman_names_them(
    clean_board: VirtualBoard, options: dict[str, Any], named: str
) -> None:
    """SpiNNMan's parameter names, not the window's, in every refusal."""
    connection = scamp(clean_board)
    try:
        with pytest.raises(InvalidArgumentError) as caught:
            SCPRequestPipeLine(connection, **options)
        assert caught.value.name == named
        assert caught.value.value == options[named]
    finally:
        connection.close()


@pytest.mark.timeout(10)
def test_spinnmans_receive_threshold_becomes_the_windows(
    clean_board: VirtualBoard,
) -> None:
    """None means SpiNNMan's defaults; a threshold at or past the window's
    size stops one short of it (a sliding window)."""
    connection = scamp(clean_board)
    try:
        cases = [((None, None), (8, 0)), ((12, None), (12, 4)), ((4, 9), (4, 3))]
        for (n_channels, waits), (size, refill_at) in cases:
            pipeline: SCPRequestPipeLine[Any] = SCPRequestPipeLine(
                connection, n_channels, waits
            )
            assert pipeline.n_channels == size
            assert pipeline._settings.refill_at == refill_at
    finally:
        connection.close()


@pytest.mark.timeout(30)
def test_a_dead_board_times_out_every_request() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))  # nobody answers on this port
        port = silent.getsockname()[1]
        with SCAMPConnection(remote_host="127.0.0.1", remote_port=port) as connection:
            pipeline: SCPRequestPipeLine[Any] = SCPRequestPipeLine(
                connection,
                n_channels=4,
                intermediate_channel_waits=3,
                n_retries=2,
                packet_timeout=0.05,
            )
            ledger = Ledger()
            n = 12
            start = time.monotonic()
            for key in range(n):
                pipeline.send_request(
                    ReadMemory((0, 0, 0), ADDRESS + key * CHUNK, CHUNK),
                    ledger.callback(key),
                    ledger.error_callback(key, connection),
                )
            pipeline.finish()
            elapsed = time.monotonic() - start
    ledger.check_each_once(n)
    assert not ledger.ok
    assert all(isinstance(error, RequestTimeout) for error in ledger.errors.values()), (
        ledger.errors
    )
    # 3 windows of 4, each 3 tries of at most 0.05 s: well under a second
    # even with scheduling noise.
    assert elapsed < 5, elapsed
    assert pipeline.n_timeouts >= 3 * n
    assert pipeline.n_resent >= 2 * n


@pytest.mark.timeout(30)
def test_two_pipelines_one_after_the_other_on_one_connection(
    lossy_board: VirtualBoard,
) -> None:
    data = os.urandom(64 * CHUNK)
    before = actor_threads()
    with scamp(lossy_board) as connection:
        first, _ = write_all(
            connection,
            data,
            3,
            3,
            n_channels=8,
            intermediate_channel_waits=7,
            packet_timeout=0.2,
        )
        second, ledger, back = read_all(
            connection, len(data), 3, 3, n_channels=4, packet_timeout=0.2
        )
        assert back == data
        assert connection.is_connected()
        # SpiNNMan reuses a process's pipeline after finish(): it must
        # still work.
        third = os.urandom(16 * CHUNK)
        ledger = Ledger()
        for key in range(16):
            first.send_request(
                WriteMemory(
                    (3, 3, 0),
                    ADDRESS + key * CHUNK,
                    third[key * CHUNK : (key + 1) * CHUNK],
                ),
                ledger.callback(key),
                ledger.error_callback(key, connection),
            )
        first.finish()
        ledger.check_each_once(16)
        assert not ledger.failed
        _, _, again = read_all(
            connection, len(third), 3, 3, n_channels=8, packet_timeout=0.2
        )
        # finish() leaves no actor running behind it, and the connection
        # open: it belongs to the caller.
        assert not actor_threads() - before
        assert connection.is_connected()
    assert again == third


@pytest.mark.timeout(30)
def test_finish_with_nothing_sent_returns(clean_board: VirtualBoard) -> None:
    with scamp(clean_board) as connection:
        pipeline: SCPRequestPipeLine[Any] = SCPRequestPipeLine(connection)
        pipeline.finish()
        pipeline.finish()
        assert pipeline.n_resent == pipeline.n_timeouts == 0


@pytest.mark.timeout(30)
def test_a_raising_error_callback_loses_no_other_request(
    clean_board: VirtualBoard,
) -> None:
    n, bad = 100, 10
    with scamp(clean_board) as connection:
        pipeline: SCPRequestPipeLine[Any] = SCPRequestPipeLine(
            connection, n_channels=8, intermediate_channel_waits=7
        )
        ledger = Ledger()

        def raising(key: int) -> Any:
            inner = ledger.error_callback(key, connection)

            def on_error(*args: Any) -> None:
                inner(*args)
                if key == bad:
                    raise RuntimeError("error callback bug")

            return on_error

        try:
            # (callbacks run inside send_request too, as SpiNNMan's do)
            for key in range(n):
                request = (
                    GetVersion(200, 200, 0)
                    if key == bad
                    else ReadMemory((0, 0, 0), ADDRESS + key * CHUNK, CHUNK)
                )
                pipeline.send_request(request, ledger.callback(key), raising(key))
            pipeline.finish()
        except RuntimeError:
            # SpiNNMan lets an error callback's exception out; the
            # other requests must still get their callbacks.
            for rest in range(key + 1, n):  # the ones not sent yet
                request = ReadMemory((0, 0, 0), ADDRESS + rest * CHUNK, CHUNK)
                pipeline.send_request(request, ledger.callback(rest), raising(rest))
            done = threading.Event()
            problems: list[BaseException] = []

            def finish_again() -> None:
                try:
                    pipeline.finish()
                except BaseException as error:  # noqa: BLE001 - reported
                    problems.append(error)
                done.set()

            ledger.thread = threading.Thread(target=finish_again, daemon=True)
            ledger.thread.start()
            finished = done.wait(3) and not problems
            if not finished:
                # Unblock the stuck finish() so no thread outlives the test.
                assert pipeline._group is not None
                pipeline._group.stop()
                ledger.thread.join(10)
            assert finished, f"finish() never returned: {problems}"
    ledger.thread = threading.current_thread()
    ledger.check_each_once(n)
    assert set(ledger.failed) == {bad}


@pytest.mark.timeout(30)
def test_late_duplicates_for_one_pipeline_are_not_the_next_ones_replies() -> None:
    # Every datagram is duplicated each way: each read is answered 4 times.
    with VirtualBoard(8, 8, faults=FaultPlan(duplicate=1.0, seed=1)) as board:
        host, port = board.address
        with connect(host, port) as client:  # its own socket
            client.write(0, 0, ADDRESS, b"A" * CHUNK)
            client.write(0, 0, ADDRESS + CHUNK, b"B" * CHUNK)
        got: dict[str, bytes] = {}
        with scamp(board) as connection:
            for name, offset in (("first", 0), ("second", CHUNK)):
                pipeline: SCPRequestPipeLine[Any] = SCPRequestPipeLine(
                    connection, n_channels=1
                )
                ledger = Ledger()

                def keep(response: Any, name: str = name) -> None:
                    got[name] = response.payload

                pipeline.send_request(
                    ReadMemory((0, 0, 0), ADDRESS + offset, CHUNK),
                    ledger.callback(0, keep),
                    ledger.error_callback(0, connection),
                )
                pipeline.finish()
                ledger.check_each_once(1)
                assert not ledger.failed
    assert got == {"first": b"A" * CHUNK, "second": b"B" * CHUNK}
