"""Several datagrams per system call (transport/links/batch.py): the
compiled helper is built where it can be, and a connected UDPEndpoint
takes and sends bursts the same with it as without it (one call per
datagram), in order, whole, with refusals counted and a capture told of
every datagram."""

from __future__ import annotations

import gc
import os
import shutil
import socket
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors import connect
from transport import VirtualBoard
from transport.capture.pcap import read_packets
from transport.capture.tap import TappedUDPEndpoint
from transport.capture.writer import PacketCapture
from transport.links import endpoint as endpoint_module
from transport.links.batch import Batch, batch
from transport.links.endpoint import UDPEndpoint

pytestmark = pytest.mark.timeout(30)

#: More than the helper's datagrams per system call (16): it must loop.
MANY = 40


def batch_in_use(module: object) -> bool:
    """Whether the endpoints use the helper (the fixture may take it out)."""
    return getattr(module, "batch", None) is not None


def _compiler() -> bool:
    name = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(name) is not None


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or not _compiler(),
    reason="the helper is built on Linux with a C compiler only",
)
def test_the_helper_is_built_where_it_can_be() -> None:
    if os.environ.get("SPINNACTORS_NO_BATCH"):
        pytest.skip("SPINNACTORS_NO_BATCH leaves it out")
    assert batch is not None, "pip install . did not build transport/links/_batch.c"


@pytest.fixture(params=["batch", "one-by-one"])
def helper(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each endpoint test runs with the helper and without it."""
    if request.param == "batch":
        if batch is None:
            pytest.skip("the compiled helper is not built here")
    else:
        monkeypatch.setattr(endpoint_module, "batch", None)


@pytest.fixture
def pair(helper: None) -> Iterator[tuple[UDPEndpoint, socket.socket]]:
    """A connected endpoint, and a plain socket as its peer."""
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.settimeout(10)
    endpoint = UDPEndpoint()
    endpoint.connect(peer.getsockname())
    peer.connect(endpoint.address)
    try:
        yield endpoint, peer
    finally:
        endpoint.close()
        peer.close()


def test_waiting_datagrams_are_taken_in_order_whole_and_up_to_the_limit(
    pair: tuple[UDPEndpoint, socket.socket],
) -> None:
    endpoint, peer = pair
    assert endpoint.receive_waiting(8) == []
    sent = [bytes([index]) * (1 + index * 97) for index in range(MANY)]
    sent.append(bytes(range(256)) * 250)  # 64,000 bytes: longer than any slot
    for data in sent:
        peer.send(data)
    assert endpoint.wait_readable(5)
    taken = endpoint.receive_waiting(MANY - 3)
    taken += endpoint.receive_waiting(100)
    assert [data for data, _ in taken] == sent
    assert {sender for _, sender in taken} == {peer.getsockname()}
    assert endpoint.receive_waiting(8) == []


def test_a_burst_goes_in_order_and_what_did_not_go_is_said(
    pair: tuple[UDPEndpoint, socket.socket],
) -> None:
    endpoint, peer = pair
    burst = [bytearray(f"request {index}", "ascii") for index in range(MANY)]
    went = endpoint.send_many(burst, peer.getsockname())
    assert went == (MANY if batch_in_use(endpoint_module) else 0)
    for data in burst[went:]:
        endpoint.send_to(data, peer.getsockname())
    assert [peer.recv(100) for _ in burst] == [bytes(data) for data in burst]
    # Only a connected socket's peer takes a burst; the rest go one by one.
    assert endpoint.send_many(burst[:2], ("127.0.0.1", 9)) == 0


def test_a_closed_endpoint_sends_no_burst(
    pair: tuple[UDPEndpoint, socket.socket],
) -> None:
    endpoint, peer = pair
    endpoint.close()
    assert endpoint.send_many([b"a", b"b"], peer.getsockname()) == 0
    assert endpoint.receive_waiting(8) == []


def test_a_refused_receive_is_counted(helper: None) -> None:
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closed.bind(("127.0.0.1", 0))
    address = closed.getsockname()
    closed.close()  # (its port now answers with ICMP "port unreachable")
    endpoint = UDPEndpoint()
    try:
        endpoint.connect(address)
        endpoint.send_to(b"anyone?", address)
        assert endpoint.wait_readable(5)  # (the error is waiting)
        assert endpoint.receive_waiting(8) == []
        assert endpoint.refused == 1
    finally:
        endpoint.close()


def test_a_tapped_endpoint_captures_every_datagram_of_a_burst(
    helper: None, tmp_path: Path
) -> None:
    path = tmp_path / "burst.pcap"
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.settimeout(10)
    endpoint = TappedUDPEndpoint()
    try:
        endpoint.connect(peer.getsockname())
        burst = [bytearray(f"piece {index}", "ascii") for index in range(MANY)]
        with PacketCapture(path) as capture:
            endpoint.tap(capture)
            went = endpoint.send_many(burst, peer.getsockname())
            for data in burst[went:]:
                endpoint.send_to(data, peer.getsockname())
            for _ in burst:
                peer.recv(100)
        assert [
            (packet.source, packet.destination, packet.payload)
            for packet in read_packets(path.read_bytes())
        ] == [(endpoint.address, peer.getsockname(), bytes(data)) for data in burst]
    finally:
        endpoint.close()
        peer.close()


def test_the_helper_loops_past_its_slots_and_refuses_what_is_not_bytes() -> None:
    if batch is None:
        pytest.skip("the compiled helper is not built here")
    helper: Batch = batch
    left = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    right = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        left.bind(("127.0.0.1", 0))
        right.bind(("127.0.0.1", 0))
        left.connect(right.getsockname())
        burst = [index.to_bytes(2, "big") for index in range(MANY)]
        assert helper.send(left.fileno(), burst) == MANY
        marker = ("board", 1)
        taken: list[tuple[bytes, tuple[str, int]]] = []
        while len(taken) < MANY:
            right.settimeout(5)
            first = right.recv(100)  # (waits for the next to have come)
            taken.append((first, marker))
            taken += helper.receive(right.fileno(), MANY, marker)
        assert taken == [(data, marker) for data in burst]
        assert helper.receive(right.fileno(), 8, marker) == []
        with pytest.raises(TypeError):
            helper.send(left.fileno(), [b"ok", 3])  # type: ignore[list-item]
        with pytest.raises(OSError, match="Bad file descriptor"):
            helper.send(-1, [b"nowhere"])
    finally:
        left.close()
        right.close()


def test_a_read_through_a_connection_sends_in_bursts_and_gets_every_byte(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The connection actor hands the endpoint its bursts, and what it
    reads back is what was written."""
    if batch is None:
        pytest.skip("the compiled helper is not built here")
    bursts: list[tuple[int, int]] = []
    send_many = UDPEndpoint.send_many

    def counted(self: UDPEndpoint, datagrams: list[bytearray], address: object) -> int:
        went = send_many(self, datagrams, address)  # type: ignore[arg-type]
        bursts.append((len(datagrams), went))
        return went

    monkeypatch.setattr(UDPEndpoint, "send_many", counted)
    data = bytes(index * 7 % 251 for index in range(64 * 1024))
    with VirtualBoard().start() as board, connect(*board.address, window=8) as client:
        client.write(0, 0, 0x6000_0000, data)
        assert client.read(0, 0, 0x6000_0000, len(data)) == data
    assert bursts, "no burst reached the endpoint"
    assert all(went == size for size, went in bursts)


def test_a_receive_from_a_finalizer_does_not_write_over_one_being_copied() -> None:
    """Making the (bytes, sender) pairs may run the garbage collector, and
    a finalizer may receive too: while a receive copies, another takes
    nothing, and no socket's datagrams are mixed up or lost."""
    if batch is None:
        pytest.skip("the compiled helper is not built here")
    helper: Batch = batch
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(4)]
    first_to, first, second_to, second = sockets
    #: What each finalizer's receive took.
    nested: list[list[tuple[bytes, tuple[str, int]]]] = []
    armed = [True]

    class Receives:
        """A garbage cycle whose finalizer receives from the second socket
        and leaves another such cycle (so every collection runs one)."""

        def __init__(self) -> None:
            self.me = self

        def __del__(self) -> None:
            if armed:
                nested.append(helper.receive(second.fileno(), 3, ("second", 2)))
                Receives()

    thresholds = gc.get_threshold()
    try:
        for one in sockets:
            one.bind(("127.0.0.1", 0))
        first_to.connect(first.getsockname())
        second_to.connect(second.getsockname())
        firsts = [b"first %d" % index for index in range(8)]
        seconds = [b"second %d" % index for index in range(60)]
        for data in firsts:
            first_to.send(data)
        for data in seconds:
            second_to.send(data)
        for one in (first, second):  # (loopback: they are there once sent)
            one.settimeout(5)
            assert one.recv(100, socket.MSG_PEEK)
        gc.collect()
        gc.set_threshold(1)  # (a collection at every other object made)
        Receives()
        taken = helper.receive(first.fileno(), 8, ("first", 1))
        armed.clear()
        gc.set_threshold(*thresholds)
        gc.collect()
        assert taken == [(data, ("first", 1)) for data in firsts]
        rest = helper.receive(second.fileno(), 100, ("second", 2))
        assert [data for took in nested for data, _ in took] + [
            data for data, _ in rest
        ] == seconds
        # (Up to 3.11 a collection may come while the pairs are made: the
        # helper without its guard gave the first socket the second's bytes
        # here. From 3.12 the collector runs between bytecodes, gh-97922,
        # never inside the helper, so the finalizers receive after it.)
    finally:
        armed.clear()
        gc.set_threshold(*thresholds)
        for one in sockets:
            one.close()
