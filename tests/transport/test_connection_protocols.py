"""SpiNNMan's abstract connection types, as protocols every connection of
ours meets where SpiNNMan's class does (and SpiNNMan's own connections
too); mypy checks the same statically in transport/connections/abstract.py."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from tests.transport.loopback import first_free
from transport import (
    AbstractSCPConnection,
    BMPConnection,
    BootConnection,
    Connection,
    EIEIOConnection,
    IPAddressesConnection,
    Listenable,
    SCAMPConnection,
    SDPConnection,
    UDPConnection,
)

pytestmark = pytest.mark.timeout(10)


@pytest.fixture
def opened() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def test_ours_meet_spinnmans_abstract_classes(opened: ExitStack) -> None:
    def own(connection: Any) -> Any:
        return opened.enter_context(connection)

    scamp = own(SCAMPConnection(remote_host="127.0.0.1"))
    bmp = own(BMPConnection(remote_host="127.0.0.1", boards=[0]))
    boot = own(BootConnection("127.0.0.1"))
    addresses = own(first_free(20, lambda host: IPAddressesConnection(host)))
    plain = [
        own(UDPConnection(local_host="127.0.0.1")),
        own(SDPConnection(local_host="127.0.0.1")),
        own(EIEIOConnection(local_host="127.0.0.1")),
    ]
    for connection in (scamp, bmp):
        assert isinstance(connection, AbstractSCPConnection)
    for connection in (scamp, bmp, boot, addresses, *plain):
        assert isinstance(connection, Connection)
        assert isinstance(connection, Listenable)
    # Receive-only and boot connections are not SCP connections.
    for connection in (boot, addresses, plain[0]):
        assert not isinstance(connection, AbstractSCPConnection)


def test_spinnmans_own_connections_meet_them(opened: ExitStack) -> None:
    from spinnman.connections.udp_packet_connections import (
        BMPConnection as TheirBMP,
    )
    from spinnman.connections.udp_packet_connections import (
        BootConnection as TheirBoot,
    )
    from spinnman.connections.udp_packet_connections import (
        SCAMPConnection as TheirSCAMP,
    )
    from spinnman.model import BMPConnectionData

    scamp = TheirSCAMP(remote_host="127.0.0.1")
    bmp = TheirBMP(BMPConnectionData("127.0.0.1", [0], None))
    boot = TheirBoot(remote_host="127.0.0.1")
    for connection in (scamp, bmp, boot):
        opened.callback(connection.close)
    assert isinstance(scamp, AbstractSCPConnection)
    assert isinstance(bmp, AbstractSCPConnection)
    assert isinstance(boot, Connection) and isinstance(boot, Listenable)


def test_something_else_does_not() -> None:
    assert not isinstance(object(), Connection)
    assert not isinstance("text", Listenable)
