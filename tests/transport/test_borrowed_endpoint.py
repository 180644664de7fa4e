"""BorrowedUDPEndpoint drives someone else's connected UDP socket (an
unmodified SpiNNMan connection's) without taking it over: one system call
per datagram, never blocked by the owner's timeout, and the socket stays
the owner's to use and close."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from transport.errors import ConnectionClosed, ReceiveTimeout
from transport.links.endpoint import BorrowedUDPEndpoint


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """The owner's connected socket, and its peer."""
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    owned = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    owned.bind(("127.0.0.1", 0))
    owned.connect(peer.getsockname())
    peer.connect(owned.getsockname())
    try:
        yield owned, peer
    finally:
        owned.close()
        peer.close()


@pytest.mark.timeout(10)
@pytest.mark.parametrize("owners_timeout", [None, 1.0], ids=["blocking", "1s"])
def test_nothing_waiting_never_blocks_for_the_owners_timeout(
    pair: tuple[socket.socket, socket.socket], owners_timeout: float | None
) -> None:
    owned, _ = pair
    owned.settimeout(owners_timeout)
    endpoint = BorrowedUDPEndpoint(owned)
    start = time.monotonic()
    assert endpoint.receive_waiting(8) == []
    with pytest.raises(ReceiveTimeout):
        endpoint.receive_from(0.01)
    with pytest.raises(ReceiveTimeout):
        endpoint.receive_from(0.0)
    assert time.monotonic() - start < 0.5


@pytest.mark.timeout(10)
def test_datagrams_go_and_come_and_waiting_ones_are_taken_at_once(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    owned, peer = pair
    endpoint = BorrowedUDPEndpoint(owned)
    assert endpoint.peer is not None and endpoint.peer == peer.getsockname()
    endpoint.send_to(b"request", endpoint.peer)
    assert peer.recv(100) == b"request"
    for index in range(5):
        peer.send(bytes([index]) * 3)
    first = endpoint.receive_from(1.0)
    rest = endpoint.receive_waiting(8)
    assert [first, *rest] == [(bytes([i]) * 3, endpoint.peer) for i in range(5)]


@pytest.mark.timeout(10)
def test_the_socket_stays_the_owners(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    owned, peer = pair
    endpoint = BorrowedUDPEndpoint(owned)
    endpoint.receive_waiting(1)
    endpoint.close()
    # Open, and its timeouts are the owner's again once it sets one.
    owned.settimeout(0.05)
    with pytest.raises(TimeoutError):
        owned.recv(10)
    peer.send(b"still mine")
    assert owned.recv(100) == b"still mine"


@pytest.mark.timeout(10)
def test_the_owner_closing_it_closes_it_for_us(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    owned, _ = pair
    endpoint = BorrowedUDPEndpoint(owned)
    owned.close()
    with pytest.raises(ConnectionClosed):
        endpoint.receive_from(0.01)
    with pytest.raises(ConnectionClosed):
        endpoint.send_to(b"x", ("127.0.0.1", 9))
