"""SpiNNMan's Transceiver against a virtual board, set up one way for the
system tests of install() (memory, chaos, install) and for every test that
needs SpiNNMan configured (its unit-test set-up, for a SpiNN-5).

The 2x2 virtual board cannot answer a Transceiver's bring-up, so the
Transceiver is made from one SCAMPConnection to the board without it;
everything after that is SpiNNMan's own code, unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from spinn_utilities.config_holder import set_config
from spinnman.config_setup import unittest_setup
from spinnman.connections.udp_packet_connections import SCAMPConnection
from spinnman.transceiver import Transceiver, create_transceiver_from_connections

from actors.compat import uninstall
from actors.compat.shared import SHARED


@contextmanager
def spinnman_configured() -> Iterator[None]:
    """SpiNNMan's own test set-up (its unittests do this), for a SpiNN-5;
    afterwards, SpiNNMan given its own back and idle shared actors
    stopped, so that no test leaves install() on for the next."""
    unittest_setup()
    set_config("Machine", "version", "5")
    yield
    uninstall()
    SHARED.stop_idle()


@contextmanager
def transceiver(
    address: tuple[str, int], kind: type[SCAMPConnection] = SCAMPConnection
) -> Iterator[Transceiver]:
    """SpiNNMan's Transceiver on one ``kind`` of connection to the board at
    ``address``, closed at the end of the block."""
    host, port = address
    connection = kind(0, 0, remote_host=host, remote_port=port)
    txrx = create_transceiver_from_connections([connection])
    try:
        yield txrx
    finally:
        txrx.close()
