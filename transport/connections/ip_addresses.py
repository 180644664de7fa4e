"""IPAddressesConnection: find unbooted boards by the hellos they send.

A board that runs only its boot ROM sends a HELLO boot frame from UDP port
54321 to port 54321 every few seconds. This connection listens on 54321 and
answers with the address of a sender on that port, as SpiNNMan's does; it
differs in that a datagram from any other port is ignored (and counted)
and the wait goes on until the timeout, where SpiNNMan's returns None for
it at once.
"""

from __future__ import annotations

import time

from messages.boot import BOOT_PORT
from transport.capture.writer import PacketCapture
from transport.connections.udp import UDPConnection
from transport.errors import ReceiveTimeout
from transport.links.endpoint import DatagramEndpoint


class IPAddressesConnection(UDPConnection):
    """Listens on ``local_host:local_port`` (all interfaces, 54321)."""

    def __init__(
        self,
        local_host: str | None = None,
        local_port: int = BOOT_PORT,
        *,
        endpoint: DatagramEndpoint | None = None,
        capture: PacketCapture | None = None,
    ) -> None:
        super().__init__(
            local_host=local_host,
            local_port=local_port,
            endpoint=endpoint,
            capture=capture,
        )
        #: Datagrams from a port other than 54321, ignored.
        self.n_ignored = 0

    def receive_ip_address(self, timeout: float | None = None) -> str | None:
        """The address of the next board saying hello, or None if none did
        within ``timeout`` seconds (None: wait for one).

        ConnectionClosed once the connection is closed.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                _, (host, port) = self.receive_with_address(left)
            except ReceiveTimeout:
                return None
            if port == BOOT_PORT:
                return host
            self.n_ignored += 1
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def __repr__(self) -> str:
        return (
            f"IPAddressesConnection(local_host={self.local_ip_address}, "
            f"local_port={self.local_port})"
        )
