"""connect(): the blocking client, against a VirtualBoard on real UDP."""

from __future__ import annotations

import math
import os
import random
import re
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from actors import Client, PortRefused, RequestTimeout, ShutDown, connect
from messages.errors import InvalidArgumentError, UnexpectedResponseCodeError
from messages.scp.layout import REPLY_DATA_OFFSET
from transport import (
    Address,
    FaultPlan,
    FaultyEndpoint,
    ReceiveTimeout,
    TransportError,
    UDPEndpoint,
    VirtualBoard,
)

ADDRESS = 0x6000_0000


@pytest.fixture
def board() -> Iterator[VirtualBoard]:
    with VirtualBoard(8, 8) as serving:
        yield serving


@pytest.fixture
def client(board: VirtualBoard) -> Iterator[Client]:
    with connect(*board.address, window=8, timeout=0.5) as connected:
        yield connected


def wait_until(condition: Callable[[], bool], what: str, limit: float = 10.0) -> None:
    """Wait for ``condition()`` by asking the actor (each ask waits for the
    actor to take a turn), not by sleeping."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")


# -- the operations ------------------------------------------------------------


@pytest.mark.timeout(20)
def test_version(client: Client) -> None:
    info = client.version()
    assert (info.name, info.version_string, info.hardware) == (
        "SC&MP",
        "4.0.0",
        "Virtual",
    )
    other = client.version(3, 4, 5)
    assert (other.name, other.x, other.y, other.p) == ("SARK", 3, 4, 5)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("length", [1, 3, 255, 256, 257, 1000, 4099])
@pytest.mark.parametrize("address", [ADDRESS + 1, ADDRESS + 2, ADDRESS + 3])
def test_odd_lengths_at_unaligned_addresses(
    client: Client, length: int, address: int
) -> None:
    data = os.urandom(length)
    # Surround the span with a known pattern so a stray byte shows.
    client.write(2, 5, address - 1, b"\xaa" * (length + 2))
    client.write(2, 5, address, data)
    assert client.read(2, 5, address, length) == data
    around = client.read(2, 5, address - 1, length + 2)
    assert around == b"\xaa" + data + b"\xaa"


@pytest.mark.timeout(20)
def test_write_takes_any_bytes_like(client: Client) -> None:
    client.write(0, 0, ADDRESS, bytearray(b"abc"))
    client.write(0, 0, ADDRESS + 3, memoryview(b"defg")[1:])
    assert client.read(0, 0, ADDRESS, 6) == b"abcefg"
    with pytest.raises(InvalidArgumentError):
        client.write(0, 0, ADDRESS, "text")  # type: ignore[arg-type]


@pytest.mark.timeout(20)
def test_fill(client: Client) -> None:
    client.write(1, 1, ADDRESS, os.urandom(1100))
    client.fill(1, 1, ADDRESS + 4, 0xDEADBEEF, 1024)
    got = client.read(1, 1, ADDRESS, 1100)
    assert got[4:1028] == struct.pack("<I", 0xDEADBEEF) * 256
    with pytest.raises(InvalidArgumentError):
        client.fill(1, 1, ADDRESS + 1, 0, 4)


@pytest.mark.timeout(20)
def test_zero_length_transfers(client: Client, board: VirtualBoard) -> None:
    before = board.stats.received
    assert client.read(0, 0, ADDRESS, 0) == b""
    assert isinstance(client.read(0, 0, ADDRESS, 0), bytes)
    client.write(0, 0, ADDRESS, b"")
    assert client.read(0, 0, 0xFFFF_FFFF, 1) is not None
    assert board.stats.received == before + 1


@pytest.mark.timeout(20)
def test_a_read_past_two_to_the_32_never_reaches_the_board(
    client: Client, board: VirtualBoard
) -> None:
    client.version()
    before, sent = board.stats.received, client.stats().sent
    with pytest.raises(InvalidArgumentError):
        client.read(0, 0, 0xFFFF_FF00, 0x101)
    with pytest.raises(InvalidArgumentError):
        client.read(0, 0, 1 << 32, 1)
    with pytest.raises(InvalidArgumentError):
        client.write(0, 0, 0xFFFF_FFFF, b"ab")
    with pytest.raises(InvalidArgumentError):
        client.read(0, 0, ADDRESS, -1)
    with pytest.raises(InvalidArgumentError):
        client.read(256, 0, ADDRESS, 4)
    assert client.read(0, 0, 0xFFFF_FF00, 0x100) == bytes(0x100)
    assert board.stats.received == before + 1
    assert client.stats().sent == sent + 1


@pytest.mark.timeout(20)
def test_a_chip_outside_the_grid_is_a_board_error(client: Client) -> None:
    with pytest.raises(UnexpectedResponseCodeError, match="RC_ROUTE"):
        client.read(200, 200, ADDRESS, 1000)
    with pytest.raises(UnexpectedResponseCodeError, match="RC_ROUTE"):
        client.write(8, 0, ADDRESS, b"x" * 300)
    with pytest.raises(UnexpectedResponseCodeError, match="RC_ROUTE"):
        client.version(200, 200, 0)
    # The client carries on.
    assert client.read(7, 7, ADDRESS, 4) == bytes(4)


@pytest.mark.timeout(20)
def test_a_dead_board_times_out_in_bounded_time() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))  # nobody answers on this port
        port = silent.getsockname()[1]
        with connect("127.0.0.1", port, timeout=0.05, retries=2) as dead:
            for attempt in (
                lambda: dead.read(0, 0, ADDRESS, 1000),
                lambda: dead.write(0, 0, ADDRESS, bytes(600)),
                dead.version,
            ):
                start = time.monotonic()
                with pytest.raises(RequestTimeout, match="3 tries"):
                    attempt()
                # 3 tries of at most 0.05 s each, plus scheduling noise.
                assert time.monotonic() - start < 2.0
            stats = dead.stats()
    assert stats.timeouts >= 9 and stats.completed == 0
    assert stats.failed >= 3 and stats.open_jobs == 0


@pytest.mark.timeout(20)
def test_stats_count_what_happened(board: VirtualBoard) -> None:
    with connect(*board.address, window=5, timeout=0.5) as fresh:
        empty = fresh.stats()
        assert (empty.sent, empty.completed, empty.rtt.count) == (0, 0, 0)
        assert empty.window == 5
        assert empty.remote == f"{board.address[0]}:{board.address[1]}"
        fresh.write(1, 0, ADDRESS, bytes(1000))  # 4 requests
        fresh.read(1, 0, ADDRESS, 1000)  # 4 requests
        fresh.version()  # 1 request
        with pytest.raises(UnexpectedResponseCodeError):
            fresh.read(99, 0, ADDRESS, 10)  # 1 request, RC_ROUTE
        stats = fresh.stats()
    assert stats.sent == 10 and stats.completed == 10
    assert (
        stats.resent,
        stats.fast_resent,
        stats.timeouts,
        stats.failed,
        stats.duplicates,
        stats.malformed,
        stats.foreign,
        stats.send_errors,
        stats.open_jobs,
    ) == (0,) * 9
    # Round trips are sampled from some RC_OK replies (at most one per
    # poll of the window), never from error replies.
    assert 1 <= stats.rtt.count <= 9
    assert 0 < stats.rtt.minimum <= stats.rtt.p50 <= stats.rtt.maximum


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"window": 0}, "window"),
        ({"window": 65536}, "window"),
        ({"window": 8.0}, "window"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": "1"}, "timeout"),
        ({"timeout": math.nan}, "timeout"),
        ({"retries": -1}, "retries"),
        ({"retries": 1001}, "retries"),
        ({"rto_floor": 0}, "rto_floor"),
        ({"rto_floor": "fast"}, "rto_floor"),
        ({"max_datagram_age": -1}, "max_datagram_age"),
        ({"max_datagram_age": 601}, "max_datagram_age"),
        ({"port": 70000}, "port"),
    ],
)
def test_bad_arguments_are_named_as_the_caller_wrote_them(
    options: dict[str, object], named: str
) -> None:
    """An argument the Client hands on to its window is refused under the
    Client's name for it (window, not size; timeout, not initial_rto),
    before anything starts."""
    before = threading.active_count()
    with pytest.raises(InvalidArgumentError) as caught:
        Client("127.0.0.1", **options)  # type: ignore[arg-type]
    assert caught.value.name == named
    assert repr(options[named]) in str(caught.value)
    assert threading.active_count() == before


# -- threads and lifetime ----------------------------------------------------


@pytest.mark.timeout(30)
def test_four_threads_at_once(client: Client) -> None:
    size = 256 * 1024 + 77
    barrier = threading.Barrier(4)

    def worker(index: int) -> tuple[bytes, bytes]:
        data = os.urandom(size)
        x, y = index % 2, index // 2
        address = ADDRESS + index * 0x10_0000 + index
        barrier.wait(timeout=10)
        client.write(x, y, address, data)
        return data, client.read(x, y, address, size)

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(worker, range(4), timeout=25))
    for data, back in results:
        assert back == data
    stats = client.stats()
    assert stats.failed == 0 and stats.open_jobs == 0


@pytest.mark.timeout(20)
def test_close_ends_calls_and_threads(board: VirtualBoard) -> None:
    before = set(threading.enumerate())
    client = connect(*board.address)
    ours = set(threading.enumerate()) - before
    assert any(thread.name.startswith("ConnectionActor") for thread in ours), ours
    assert client.read(0, 0, ADDRESS, 10) == bytes(10)
    assert not client.closed
    client.close()
    assert client.closed
    assert not any(thread.is_alive() for thread in ours), ours
    assert not (set(threading.enumerate()) - before)
    with pytest.raises(ShutDown):
        client.read(0, 0, ADDRESS, 10)
    with pytest.raises(ShutDown):
        client.write(0, 0, ADDRESS, b"x")
    with pytest.raises(ShutDown):
        client.stats()
    client.close()  # twice is fine


@pytest.mark.timeout(20)
def test_close_during_a_transfer_ends_it_with_shutdown() -> None:
    # A slow board keeps the read going while it is closed.
    with VirtualBoard(2, 2, service_time=0.001) as slow:
        client = connect(*slow.address, timeout=0.5)
        with ThreadPoolExecutor(1) as pool:
            reading = pool.submit(client.read, 0, 0, ADDRESS, 1 << 20)
            wait_until(lambda: client.stats().completed > 8, "the read to get going")
            client.close()
            with pytest.raises(ShutDown):
                reading.result(timeout=10)


@pytest.mark.timeout(20)
def test_an_unknown_host_is_reported_as_such() -> None:
    with (
        pytest.raises(TransportError, match="cannot resolve host"),
        connect("no-such-host.invalid", 17893, timeout=0.05) as client,
    ):
        client.version()


# -- hostile and broken traffic ---------------------------------------------


def spray_datagrams(rng: random.Random, reply_size: int) -> list[bytes]:
    """Valid-looking read replies with random sequence numbers, and junk."""
    out = []
    for _ in range(16):
        header = bytes([0, 0, 0x07, 0xFF, 0xFF, 0x00, 0, 0, 0, 0])
        out.append(
            header
            + struct.pack("<HH", 0x80, rng.randrange(1 << 16))
            + rng.randbytes(reply_size - REPLY_DATA_OFFSET)
        )
    out.extend(rng.randbytes(length) for length in (0, 1, 13, 14, 300))
    return out


@pytest.mark.timeout(30)
@pytest.mark.parametrize("window", [8, 1])
def test_a_foreign_sender_is_counted_and_ignored(
    board: VirtualBoard, window: int
) -> None:
    size = 4 << 20
    data = os.urandom(size)
    endpoint = UDPEndpoint("127.0.0.1", 0)
    rng = random.Random(5)
    sprayed = 0
    with (
        connect(
            *board.address, endpoint=endpoint, timeout=0.5, window=window
        ) as client,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as intruder,
        ThreadPoolExecutor(1) as pool,
    ):
        intruder.bind(("127.0.0.1", 0))
        client.write(4, 4, ADDRESS, data)
        reading: Future[bytes] = pool.submit(client.read, 4, 4, ADDRESS, size)
        while True:
            for datagram in spray_datagrams(rng, REPLY_DATA_OFFSET + 256):
                intruder.sendto(datagram, endpoint.address)
                sprayed += 1

            # Keep at most one batch in the socket's buffer, so none is
            # lost to an overflow.
            def all_read(sent: int = sprayed) -> bool:
                return client.stats().foreign >= sent or reading.done()

            wait_until(all_read, "the sprayed datagrams to be read")
            if reading.done():
                break
        assert reading.result(timeout=20) == data
        # A reply queued behind any sprayed datagrams still unread.
        client.version()
        stats = client.stats()
    assert sprayed > 0
    assert stats.foreign == sprayed
    assert stats.failed == 0


@pytest.mark.timeout(30)
def test_a_connected_socket_never_sees_a_foreign_sender(board: VirtualBoard) -> None:
    """By default the client's socket is connected to the board: the
    kernel drops another sender's datagrams before they cost anything (and
    they are not counted); the transfer is untouched."""
    data = os.urandom(64 << 10)
    rng = random.Random(7)
    with (
        connect(*board.address, timeout=0.5) as client,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as intruder,
    ):
        host, port = client.stats().local.rsplit(":", 1)
        sprayed = 0
        for _ in range(20):
            for datagram in spray_datagrams(rng, REPLY_DATA_OFFSET + 256):
                intruder.sendto(datagram, (host, int(port)))
                sprayed += 1
        # Unconnected, the sprayed datagrams would be queued ahead of these
        # replies, and counted as foreign by the time they are taken.
        client.write(1, 1, ADDRESS, data)
        assert client.read(1, 1, ADDRESS, len(data)) == data
        stats = client.stats()
    assert sprayed > 0
    assert stats.foreign == 0
    assert stats.failed == 0
    assert board.monitor.memory.read((1 << 8) | 1, ADDRESS, len(data)) == data


@pytest.mark.timeout(30)
def test_a_closed_port_is_counted_as_refused(board: VirtualBoard) -> None:
    """A connected socket hears the ICMP "port unreachable" of a board port
    that is closed: counted, and the request still ends as a timeout."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as gone:
        gone.bind(("127.0.0.1", 0))
        port = gone.getsockname()[1]
    with connect("127.0.0.1", port, timeout=0.05, retries=2) as client:
        with pytest.raises(RequestTimeout) as caught:
            client.version()
        stats = client.stats()
    assert stats.refused >= 1
    assert (stats.sent, stats.timeouts, stats.failed) == (3, 3, 1)
    # Where, how many tries, how long, and what to check.
    assert re.fullmatch(
        rf"GetVersion\(0,0,0\) seq=0: no reply from 127\.0\.0\.1:{port} after 3 "
        r"tries in \d+\.\d s; its port is closed \(ICMP refused\): is a board there\?",
        str(caught.value),
    ), str(caught.value)


@pytest.mark.timeout(30)
def test_fail_refused_ends_requests_at_once_on_a_closed_port() -> None:
    """With fail_refused (what the command line uses) a closed port ends
    the open requests on the first refusal: one try, not eleven."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as gone:
        gone.bind(("127.0.0.1", 0))
        port = gone.getsockname()[1]
    with connect("127.0.0.1", port, fail_refused=True, retries=10) as client:
        with pytest.raises(PortRefused, match=f"127.0.0.1:{port} refused"):
            client.read(0, 0, ADDRESS, 4096)  # 16 requests in the window
        stats = client.stats()
    assert stats.refused >= 1
    assert stats.resent == 0 and stats.timeouts == 0
    assert stats.open_jobs == 0


@pytest.mark.timeout(30)
def test_a_silent_board_is_named_with_tries_and_a_hint(board: VirtualBoard) -> None:
    """A board that does not answer (here: every request dropped): the
    error names host:port, says "1 try" for one, and what to check."""
    endpoint = FaultyEndpoint(UDPEndpoint("127.0.0.1", 0), FaultPlan(drop=1.0, seed=1))
    with (
        connect(*board.address, endpoint=endpoint, timeout=0.05, retries=0) as client,
        pytest.raises(RequestTimeout) as caught,
    ):
        client.read(0, 0, ADDRESS, 16)
    host, port = board.address
    text = str(caught.value)
    assert f"no reply from {host}:{port} after 1 try in " in text, text
    assert text.endswith(
        "check the address, or that a board answers there "
        "(spinnactors board serves a virtual one)"
    ), text


@pytest.mark.timeout(30)
def test_an_error_code_is_explained(client: Client) -> None:
    with pytest.raises(UnexpectedResponseCodeError) as caught:
        client.read(9, 9, ADDRESS, 16)
    assert "board answered RC_ROUTE (no route to that chip: is it on this board?)" in (
        str(caught.value)
    )


class InjectingEndpoint:
    """Before every ``every``-th datagram from the board, hands up broken
    copies of it from the board's own address: truncated, too short to be
    a reply, and with a result code no board sends."""

    def __init__(self, inner: UDPEndpoint, every: int = 5) -> None:
        self.inner = inner
        self.every = every
        self.seen = 0
        self.injected = 0
        self._queue: deque[tuple[bytes, Address]] = deque()

    @property
    def address(self) -> Address:
        return self.inner.address

    @property
    def closed(self) -> bool:
        return self.inner.closed

    def resolve(self, host: str) -> str:
        return self.inner.resolve(host)

    def send_to(self, data: bytes, address: Address) -> None:
        self.inner.send_to(data, address)

    def receive_from(self, timeout: float | None) -> tuple[bytes, Address]:
        if self._queue:
            return self._queue.popleft()
        data, sender = self.inner.receive_from(timeout)
        self.seen += 1
        if self.seen % self.every or len(data) <= REPLY_DATA_OFFSET:
            return data, sender
        unknown_code = bytearray(data)
        unknown_code[10:12] = struct.pack("<H", 0x7F)
        broken = [data[:-1], data[:5], bytes(unknown_code)]
        self.injected += len(broken)
        self._queue.extend((junk, sender) for junk in broken[1:])
        self._queue.append((data, sender))
        return broken[0], sender

    def receive_waiting(self, limit: int) -> list[tuple[bytes, Address]]:
        out: list[tuple[bytes, Address]] = []
        while len(out) < limit:
            try:
                out.append(self.receive_from(0.0))
            except ReceiveTimeout:
                break
        return out

    def wait_readable(self, timeout: float) -> bool:
        return bool(self._queue) or self.inner.wait_readable(timeout)

    def close(self) -> None:
        self.inner.close()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("window", [8, 1])  # 1: replies hand back the next
def test_malformed_replies_from_the_board_do_not_break_a_transfer(
    board: VirtualBoard, window: int
) -> None:
    size = 512 * 1024 + 3
    data = os.urandom(size)
    endpoint = InjectingEndpoint(UDPEndpoint("127.0.0.1", 0))
    with connect(
        *board.address, endpoint=endpoint, timeout=0.5, window=window
    ) as client:
        client.write(5, 1, ADDRESS + 1, data)
        assert client.read(5, 1, ADDRESS + 1, size) == data
        stats = client.stats()
    assert endpoint.injected > 0
    # Each injection is three junk copies of one reply: too short and with
    # an unknown code are always malformed; truncated by a byte is malformed
    # unless the reply it spoils was itself a duplicate (a slow moment made
    # a resend), when it counts as one: nothing junk goes uncounted.
    assert stats.malformed >= endpoint.injected * 2 // 3
    assert stats.malformed <= endpoint.injected
    assert stats.malformed + stats.duplicates >= endpoint.injected
    assert stats.failed == 0


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("window", "size"), [(8, 2 << 20), (1, 1 << 18)])
def test_duplicated_and_reordered_replies(
    board: VirtualBoard, window: int, size: int
) -> None:
    # (One at a time, a reply held back to be reordered waits for the
    # resend that overtakes it: the smaller size keeps this test short.)
    data = os.urandom(size)
    endpoint = FaultyEndpoint(
        UDPEndpoint("127.0.0.1", 0),
        FaultPlan(duplicate=0.3, reorder=0.2, seed=1),
        sides="receive",
    )
    with connect(
        *board.address, endpoint=endpoint, timeout=0.5, window=window
    ) as client:
        client.write(6, 6, ADDRESS, data)
        assert client.read(6, 6, ADDRESS, size) == data
        stats = client.stats()
    assert endpoint.plan.counts.duplicated > 0
    assert endpoint.plan.counts.reordered > 0
    assert stats.duplicates > 0
    assert stats.failed == 0 and stats.malformed == 0


@pytest.mark.timeout(60)
def test_a_version_asked_during_a_large_read_does_not_wait_for_it() -> None:
    """A small request overtakes the pieces of a transfer not yet sent: a
    board that serves 5,000 requests a second takes about 0.8 s for a
    1 MiB read, and a version asked a little way into it comes back while
    the read still has most of its pieces to go."""
    with (
        VirtualBoard(2, 2, service_time=0.0002) as board,
        connect(*board.address, window=8) as client,
    ):
        with ThreadPoolExecutor(1) as pool:
            read = pool.submit(client.read, 0, 0, 0x6000_0000, 1 << 20)
            wait_until(lambda: board.stats.received > 200, "the read is under way")
            client.version()
            answered = board.stats.received
            assert not read.done()
            assert len(read.result(timeout=50)) == 1 << 20
        assert answered < 4096 / 2, answered


# -- clients sharing one supervisor ---------------------------------------------


@pytest.mark.timeout(60)
def test_clients_sharing_a_supervisor_fail_and_close_alone(
    board: VirtualBoard,
) -> None:
    """One thread supervises many boards' connection actors (as in a
    Machine's group), and each is still restarted, given up on and closed
    on its own: the others keep reading what the board holds."""
    from actors.supervision import Supervisor
    from tests.system.test_restart_without_loss import kill

    supervisor = Supervisor.start([], per_child=True, max_restarts=1, period=30)
    threads_before = threading.active_count()
    clients = [Client(*board.address, supervisor=supervisor) for _ in range(4)]
    try:
        # One thread per board: its connection actor.
        assert threading.active_count() - threads_before == len(clients)
        for index, client in enumerate(clients):
            client.write(0, 0, ADDRESS + 64 * index, bytes([index]) * 64)
        doomed, closing, *others = clients
        first = kill(doomed, None)
        kill(doomed, first)  # one restart allowed: the second failure ends it
        # Given up on: cleaned up and forgotten by the shared supervisor.
        assert doomed.gave_up.wait(10)
        assert doomed.closed
        with pytest.raises(ShutDown):
            doomed.read(0, 0, ADDRESS, 64)
        assert doomed.closed
        closing.close()
        assert closing.closed
        with pytest.raises(ShutDown):
            closing.read(0, 0, ADDRESS, 64)
        for index, client in enumerate(others, start=2):
            assert not client.closed
            got = client.read(0, 0, ADDRESS + 64 * index, 64)
            assert got == bytes([index]) * 64
        assert supervisor.is_alive()
    finally:
        for client in clients:
            client.close()
        supervisor.stop(block=True, timeout=30)


@pytest.mark.timeout(30)
def test_a_closed_client_has_not_been_given_up_on(board: VirtualBoard) -> None:
    from actors.supervision import Supervisor

    supervisor = Supervisor.start([], per_child=True)
    try:
        for client in (
            Client(*board.address),
            Client(*board.address, supervisor=supervisor),
        ):
            assert client.version().name == "SC&MP"
            client.close()
            assert client.closed
            assert not client.gave_up.is_set()
    finally:
        supervisor.stop(block=True, timeout=30)
