"""EIEIOConnection against SpiNNMan's own, over real UDP on 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from spinnman.connections.udp_packet_connections import (
    EIEIOConnection as TheirConnection,
)
from spinnman.messages.eieio import EIEIOPrefix as TheirPrefix
from spinnman.messages.eieio import EIEIOType as TheirType
from spinnman.messages.eieio.data_messages import EIEIODataMessage as TheirMessage

from messages.eieio import (
    DataElement,
    EIEIODataMessage,
    EIEIOPrefix,
    EIEIOType,
    KeyDataElement,
    KeyPayloadDataElement,
)
from messages.errors import MalformedDatagramError
from transport.connections.eieio import EIEIOConnection
from transport.errors import ReceiveTimeout
from transport.links.in_process import MemoryNetwork

pytestmark = pytest.mark.timeout(10)
HOST = "127.0.0.1"
WAIT = 5.0

#: (type, key prefix, prefix type, payload base, timestamp)
SHAPES = [
    (EIEIOType.KEY_16_BIT, None, EIEIOPrefix.LOWER_HALF_WORD, None, None),
    (EIEIOType.KEY_16_BIT, 0x12, EIEIOPrefix.UPPER_HALF_WORD, None, 77),
    (EIEIOType.KEY_PAYLOAD_16_BIT, None, EIEIOPrefix.LOWER_HALF_WORD, 0x100, None),
    (EIEIOType.KEY_32_BIT, 0xF000, EIEIOPrefix.LOWER_HALF_WORD, None, None),
    (
        EIEIOType.KEY_PAYLOAD_32_BIT,
        None,
        EIEIOPrefix.LOWER_HALF_WORD,
        None,
        0xDEAD_BEEF,
    ),
]


def both(shape: tuple[Any, ...], n: int = 20) -> tuple[EIEIODataMessage, Any]:
    """The same message built by us and by SpiNNMan."""
    eieio_type, prefix, prefix_type, base, timestamp = shape
    ours = EIEIODataMessage.create(
        eieio_type,
        key_prefix=prefix,
        prefix_type=prefix_type,
        payload_prefix=base,
        timestamp=timestamp,
    )
    theirs = TheirMessage.create(
        TheirType(eieio_type.value),
        key_prefix=prefix,
        prefix_type=TheirPrefix(prefix_type.value),
        payload_prefix=base,
        timestamp=timestamp,
    )
    for i in range(n):
        key = (i * 7919) & eieio_type.max_value
        if eieio_type.payload_bytes:
            ours.add_key_and_payload(key, i)
            theirs.add_key_and_payload(key, i)
        else:
            ours.add_key(key)
            theirs.add_key(key)
    return ours, theirs


def their_elements(message: Any) -> list[DataElement]:
    found: list[DataElement] = []
    while message.is_next_element:
        element = message.next_element
        if hasattr(element, "payload"):
            found.append(
                KeyPayloadDataElement(
                    element.key, element.payload, element.payload_is_timestamp
                )
            )
        else:
            found.append(KeyDataElement(element.key))
    return found


@pytest.fixture
def theirs() -> Iterator[Any]:
    connection = TheirConnection(local_host=HOST)
    yield connection
    connection.close()


@pytest.fixture
def ours(theirs: Any) -> Iterator[EIEIOConnection]:
    """Ours, with SpiNNMan's connection as its remote peer."""
    with EIEIOConnection(HOST, None, HOST, theirs.local_port) as connection:
        yield connection


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s[0].name)
def test_spinnman_sends_to_ours(
    theirs: Any, ours: EIEIOConnection, shape: tuple[Any, ...]
) -> None:
    mine, reference = both(shape)
    theirs.send_eieio_message_to(reference, HOST, ours.local_port)
    received = ours.receive_eieio_message(WAIT)
    assert received.bytestring == reference.bytestring == mine.bytestring
    assert list(received) == list(mine)
    assert ours.n_foreign == 0


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s[0].name)
def test_ours_sends_to_spinnman(
    theirs: Any, ours: EIEIOConnection, shape: tuple[Any, ...]
) -> None:
    mine, reference = both(shape)
    ours.send_eieio_message(mine)
    received = theirs.receive_eieio_message(WAIT)
    assert received.eieio_header.bytestring == reference.eieio_header.bytestring
    assert their_elements(received) == list(mine)


def test_ours_to_ours_without_a_remote(ours: EIEIOConnection) -> None:
    mine, _ = both(SHAPES[1], 5)
    with EIEIOConnection(HOST) as listener:
        assert not listener.is_ready_to_receive(0)
        ours.send_eieio_message_to(mine, HOST, listener.local_port)
        assert listener.is_ready_to_receive(WAIT)
        receive = listener.get_receive_method()
        assert receive() == mine


def test_foreign_sender_is_ignored_and_counted(
    theirs: Any, ours: EIEIOConnection
) -> None:
    mine, _ = both(SHAPES[3], 3)
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        stranger.bind((HOST, 0))
        stranger.sendto(mine.bytestring, (HOST, ours.local_port))
    finally:
        stranger.close()
    theirs.send_to(b"\x00\x08", (HOST, ours.local_port))
    received = ours.receive_eieio_message(WAIT)
    assert received.n_elements == 0 and ours.n_foreign == 1


def test_garbage_is_malformed_and_the_connection_keeps_working(
    theirs: Any, ours: EIEIOConnection
) -> None:
    mine, reference = both(SHAPES[4], 4)
    truncated = reference.bytestring[:-3]
    for garbage in (b"\x07", truncated, b"\x01\x40\x00\x00"):
        theirs.send_to(garbage, (HOST, ours.local_port))
    theirs.send_eieio_message_to(reference, HOST, ours.local_port)
    for _ in range(3):
        with pytest.raises(MalformedDatagramError):
            ours.receive_eieio_message(WAIT)
    assert ours.receive_eieio_message(WAIT) == mine
    with pytest.raises(ReceiveTimeout):
        ours.receive_eieio_message(0.01)


def test_runs_over_an_in_memory_link() -> None:
    network = MemoryNetwork()
    with (
        EIEIOConnection(endpoint=network.endpoint()) as a,
        EIEIOConnection(endpoint=network.endpoint()) as b,
    ):
        mine, _ = both(SHAPES[2], 10)
        a.send_eieio_message_to(mine, *b.endpoint.address)
        assert b.get_receive_method()() == mine
