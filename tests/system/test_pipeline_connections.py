"""SCPRequestPipeLine honours the connection it is given.

People subclass, wrap or mock connections to log or count traffic, or hand
over SpiNNMan's own SCAMPConnection: every datagram must then go through
that object's ``send`` and ``receive_scp_response``, with every window rule
kept (expiry, resends, busy codes, exactly one callback each). Data is
checked in the board's memory, not only in the callbacks.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest

from actors import SCPRequestPipeLine
from messages.errors import InvalidArgumentError
from messages.scp import ReadMemory, WriteMemory
from transport import FaultPlan, SCAMPConnection, VirtualBoard
from transport.connections.driven import DrivenConnection, MethodEndpoint, is_plain
from transport.links.endpoint import BorrowedUDPEndpoint

ADDRESS = 0x6000_0000
CHUNK = 256
N_CHUNKS = 64


class CountingConnection(SCAMPConnection):
    """A subclass that counts what goes through its methods (as people's
    logging wrappers do)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lock = threading.Lock()
        self.sent: list[bytes] = []
        self.received = 0

    def send(self, data: bytes) -> None:
        with self.lock:
            self.sent.append(bytes(data))
        super().send(data)

    def receive_scp_response(self, timeout: float | None = 1.0) -> Any:
        reply = super().receive_scp_response(timeout)
        with self.lock:
            self.received += 1
        return reply


class Wrapper:
    """Not a connection of ours at all: an object with SpiNNMan's surface
    that delegates to one (a mock would look the same)."""

    def __init__(self, inner: SCAMPConnection) -> None:
        self._inner = inner
        self.calls: Counter[str] = Counter()

    @property
    def remote_ip_address(self) -> str | None:
        return self._inner.remote_ip_address

    @property
    def remote_port(self) -> int | None:
        return self._inner.remote_port

    def send(self, data: bytes) -> None:
        self.calls["send"] += 1
        self._inner.send(data)

    def receive(self, timeout: float | None = None) -> bytes:
        self.calls["receive"] += 1
        return self._inner.receive(timeout)

    def is_ready_to_receive(self, timeout: float = 0) -> bool:
        return self._inner.is_ready_to_receive(timeout)

    def close(self) -> None:
        self._inner.close()


def pattern(index: int) -> bytes:
    return bytes((index * 7 + offset) & 0xFF for offset in range(CHUNK))


def write_then_read(connection: Any, n_channels: int = 8) -> dict[int, bytes]:
    """Write N_CHUNKS chunks through a pipeline on ``connection``, then read
    them back through another; each callback exactly once."""
    ok: Counter[int] = Counter()
    errors: list[BaseException] = []
    read: dict[int, bytes] = {}

    def failed(request: Any, error: Exception, *_: Any) -> None:
        errors.append(error)

    def written(index: int) -> Any:
        return lambda _: ok.update([index])

    def got(index: int) -> Any:
        def on_reply(response: Any) -> None:
            read[index] = bytes(
                response.data[response.offset : response.offset + response.length]
            )
            ok.update([N_CHUNKS + index])

        return on_reply

    writer: SCPRequestPipeLine[Any] = SCPRequestPipeLine(
        connection, n_channels=n_channels
    )
    for index in range(N_CHUNKS):
        writer.send_request(
            WriteMemory((0, 0, 0), ADDRESS + CHUNK * index, pattern(index)),
            written(index),
            failed,
        )
    writer.finish()
    reader: SCPRequestPipeLine[Any] = SCPRequestPipeLine(
        connection, n_channels=n_channels
    )
    for index in range(N_CHUNKS):
        reader.send_request(
            ReadMemory((0, 0, 0), ADDRESS + CHUNK * index, CHUNK), got(index), failed
        )
    reader.finish()
    assert errors == []
    assert ok == Counter(range(2 * N_CHUNKS)), "each callback exactly once"
    return read


def assert_board_holds_the_pattern(board: VirtualBoard) -> None:
    held = board.monitor.memory.read(0, ADDRESS, CHUNK * N_CHUNKS)
    assert held == b"".join(pattern(index) for index in range(N_CHUNKS))


@pytest.mark.timeout(60)
def test_a_counting_subclass_sees_every_datagram() -> None:
    with VirtualBoard(2, 2) as board:
        connection = CountingConnection(
            remote_host=board.address[0], remote_port=board.address[1]
        )
        try:
            assert not is_plain(connection)
            read = write_then_read(connection)
        finally:
            connection.close()
        assert read == {index: pattern(index) for index in range(N_CHUNKS)}
        assert_board_holds_the_pattern(board)
        # Every request went out through send() (a resend too, if a slow
        # moment made one), and every reply taken came in through
        # receive_scp_response(): nothing reached the socket another way.
        assert len(connection.sent) >= 2 * N_CHUNKS
        assert board.stats.received <= len(connection.sent)
        assert 2 * N_CHUNKS <= connection.received <= board.stats.replies


@pytest.mark.timeout(60)
def test_a_counting_subclass_keeps_the_window_rules_on_a_lossy_busy_board() -> None:
    faults = FaultPlan(drop=0.1, busy=0.1, duplicate=0.05, seed=7)
    with VirtualBoard(2, 2, faults=faults) as board:
        connection = CountingConnection(
            remote_host=board.address[0], remote_port=board.address[1]
        )
        try:
            writer: SCPRequestPipeLine[Any] = SCPRequestPipeLine(
                connection, n_channels=8, packet_timeout=0.2
            )
            read = write_then_read(connection)
            assert writer.n_resent == 0  # a pipeline of its own, unused
        finally:
            connection.close()
        assert read == {index: pattern(index) for index in range(N_CHUNKS)}
        assert_board_holds_the_pattern(board)
        # Losses and busy codes were resent, through send() too.
        assert len(connection.sent) > 2 * N_CHUNKS


@pytest.mark.timeout(60)
def test_an_object_with_spinnmans_surface_is_driven_through_its_methods() -> None:
    with VirtualBoard(2, 2) as board:
        inner = SCAMPConnection(
            remote_host=board.address[0], remote_port=board.address[1]
        )
        wrapper = Wrapper(inner)
        try:
            read = write_then_read(wrapper, n_channels=4)
        finally:
            inner.close()
        assert read == {index: pattern(index) for index in range(N_CHUNKS)}
        assert_board_holds_the_pattern(board)
        assert wrapper.calls["send"] >= 2 * N_CHUNKS
        assert board.stats.received <= wrapper.calls["send"]
        assert 2 * N_CHUNKS <= wrapper.calls["receive"] <= board.stats.replies


@pytest.mark.timeout(60)
def test_spinnmans_own_scamp_connection_reads_what_the_board_holds() -> None:
    from spinnman.connections.udp_packet_connections import (
        SCAMPConnection as SpiNNManSCAMPConnection,
    )

    with VirtualBoard(2, 2) as board:
        connection = SpiNNManSCAMPConnection(
            remote_host=board.address[0], remote_port=board.address[1]
        )
        try:
            read = write_then_read(connection)
        finally:
            connection.close()
        assert read == {index: pattern(index) for index in range(N_CHUNKS)}
        assert_board_holds_the_pattern(board)


@pytest.mark.timeout(60)
def test_spinnmans_unmodified_connection_has_its_socket_driven_directly() -> None:
    """SpiNNMan's SCAMPConnection itself only sends and receives on its
    connected socket, so its socket is used directly; a subclass of it
    may do more in its methods, so it is driven through them."""
    from spinnman.connections.udp_packet_connections import (
        SCAMPConnection as SpiNNManSCAMPConnection,
    )

    class Logging(SpiNNManSCAMPConnection):
        pass

    with VirtualBoard(2, 2) as board:
        host, port = board.address
        plain = SpiNNManSCAMPConnection(remote_host=host, remote_port=port)
        subclass = Logging(remote_host=host, remote_port=port)
        try:
            direct = DrivenConnection(plain)
            through_methods = DrivenConnection(subclass)
            assert isinstance(direct.endpoint, BorrowedUDPEndpoint)
            assert (direct.remote_ip_address, direct.remote_port) == (host, port)
            assert isinstance(through_methods.endpoint, MethodEndpoint)
            read = write_then_read(plain)
            direct.close()  # (ours to stop using; the socket stays SpiNNMan's)
            plain.send(b"\0\0")  # still open
        finally:
            plain.close()
            subclass.close()
        assert read == {index: pattern(index) for index in range(N_CHUNKS)}
        assert_board_holds_the_pattern(board)


@pytest.mark.timeout(30)
def test_our_unmodified_connection_takes_the_fast_path() -> None:
    with VirtualBoard(2, 2) as board:
        connection = SCAMPConnection(
            remote_host=board.address[0], remote_port=board.address[1]
        )
        try:
            assert is_plain(connection)
            connection.send = lambda data: None  # type: ignore[method-assign]
            assert not is_plain(connection), "a patched instance is not plain"
            del connection.send
            read = write_then_read(connection)
        finally:
            connection.close()
        assert read == {index: pattern(index) for index in range(N_CHUNKS)}


@pytest.mark.timeout(30)
def test_a_connection_with_nowhere_to_send_is_refused_at_construction() -> None:
    connection = SCAMPConnection(local_host="127.0.0.1")
    try:
        assert connection.remote_ip_address is None
        with pytest.raises(InvalidArgumentError, match="no remote address"):
            SCPRequestPipeLine(connection)
    finally:
        connection.close()


class Spoiling(Wrapper):
    """Raises over the first ``n`` replies, as SpiNNMan's
    receive_scp_response does over a result code it does not know."""

    def __init__(self, inner: SCAMPConnection, n: int) -> None:
        super().__init__(inner)
        self.spoil = n

    def receive_scp_response(self, timeout: float | None = 1.0) -> Any:
        reply = self._inner.receive_scp_response(timeout)
        if self.spoil:
            self.spoil -= 1
            raise ValueError("0xEE is not a valid SCPResult")
        return reply


@pytest.mark.timeout(60)
def test_replies_the_connection_cannot_parse_are_dropped_and_resent() -> None:
    with VirtualBoard(2, 2) as board:
        inner = SCAMPConnection(
            remote_host=board.address[0], remote_port=board.address[1]
        )
        spoiling: Any = Spoiling(inner, 3)  # a connection by its methods
        try:
            ok: Counter[int] = Counter()
            errors: list[BaseException] = []
            pipeline: SCPRequestPipeLine[Any] = SCPRequestPipeLine(
                spoiling, n_channels=8, packet_timeout=0.1
            )
            for index in range(N_CHUNKS):

                def written(_: Any, index: int = index) -> None:
                    ok.update([index])

                pipeline.send_request(
                    WriteMemory((0, 0, 0), ADDRESS + CHUNK * index, pattern(index)),
                    written,
                    lambda request, error, *_: errors.append(error),
                )
            pipeline.finish()
        finally:
            inner.close()
        assert errors == []
        assert ok == Counter(range(N_CHUNKS)), "each callback exactly once"
        assert spoiling.spoil == 0
        assert pipeline.n_timeouts >= 1  # the spoiled replies' requests
        assert pipeline.n_resent >= 1
        assert_board_holds_the_pattern(board)


@pytest.mark.timeout(60)
def test_a_spinnman_connections_book_is_kept_a_while_after_release_then_dropped() -> (
    None
):
    """SpiNNMan's connections cannot be weakly referenced, so their books
    are kept by id: a pipeline back within RELEASED_BOOK_KEEP goes on with
    the same book (its sequence numbers), and after it the book goes, so a
    process making connection after connection does not keep them all."""
    from spinnman.connections.udp_packet_connections import (
        SCAMPConnection as SpiNNManSCAMPConnection,
    )

    from actors.compat.shared import RELEASED_BOOK_KEEP, SharedConnections
    from actors.protocol.settings import WindowSettings

    now = [0.0]
    shared = SharedConnections(clock=lambda: now[0])
    settings = WindowSettings()
    with VirtualBoard(2, 2) as board:
        first, second = (
            SpiNNManSCAMPConnection(
                remote_host=board.address[0], remote_port=board.address[1]
            )
            for _ in range(2)
        )
        try:
            shared.acquire(first, settings)
            book = shared._books_by_id[id(first)].book
            shared.release(first)
            assert shared.books_kept == 1
            now[0] += RELEASED_BOOK_KEEP / 2
            shared.acquire(first, settings)
            assert shared._books_by_id[id(first)].book is book
            shared.release(first)
            now[0] += RELEASED_BOOK_KEEP / 2 + 0.5  # kept from the last release
            shared.acquire(second, settings)
            second_book = shared._books_by_id[id(second)].book
            assert shared.books_kept == 2
            now[0] += RELEASED_BOOK_KEEP / 2 + 0.1
            shared.release(second)
            assert set(shared._books_by_id) == {id(second)}
            now[0] += RELEASED_BOOK_KEEP + 0.1
            shared.acquire(second, settings)
            assert shared._books_by_id[id(second)].book is not second_book
            shared.release(second)
        finally:
            first.close()
            second.close()
