"""UDPConnection: SpiNNMan's datagram connection, over any endpoint."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from types import TracebackType
from typing import TypeVar, cast

from transport.capture.tap import TappedUDPEndpoint, attach_all
from transport.capture.writer import Captures, each_capture
from transport.errors import ReceiveTimeout, TransportError
from transport.links.endpoint import Address, DatagramEndpoint, UDPEndpoint

C = TypeVar("C", bound="UDPConnection")


def route_source(remote_host: str) -> str:
    """The local IP address the OS would send to ``remote_host`` from."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect((remote_host, 1))
        return str(probe.getsockname()[0])
    except OSError:
        return "0.0.0.0"
    finally:
        probe.close()


class UDPConnection:
    """A datagram connection with SpiNNMan's constructor and methods.

    Bound to ``local_host:local_port`` (defaults: the interface that routes
    to the remote host, or all interfaces; any free port). With a remote
    address it sends there and ignores, and counts in ``n_foreign``,
    datagrams from anyone else. ``connected`` (with a remote address, on
    a UDP socket of its own) connects the socket, as SpiNNMan's does: the
    kernel then drops other senders' datagrams unseen and uncounted, and
    sends and receives cost a little less. Pass ``endpoint`` to run over an
    in-memory or fault-injecting link instead of a UDP socket. A
    ``capture`` (transport/capture/writer.py) gets a copy of every datagram
    (each of several captures does).
    """

    def __init__(
        self,
        local_host: str | None = None,
        local_port: int | None = None,
        remote_host: str | None = None,
        remote_port: int | None = None,
        *,
        endpoint: DatagramEndpoint | None = None,
        connected: bool = False,
        capture: Captures | None = None,
    ) -> None:
        own = endpoint is None
        captures = each_capture(capture)
        if endpoint is None:
            if local_host is None:
                local_host = (
                    route_source(remote_host) if remote_host is not None else "0.0.0.0"
                )
            # A socket of ours to capture is tapped from the start.
            socket_class = TappedUDPEndpoint if captures else UDPEndpoint
            endpoint = socket_class(local_host, local_port or 0)
        self._endpoint = endpoint
        self._remote: Address | None = None
        if remote_host is not None and remote_port is not None:
            try:
                self._remote = (endpoint.resolve(remote_host), remote_port)
                if connected and own:
                    cast(UDPEndpoint, endpoint).connect(self._remote)
            except TransportError:
                endpoint.close()
                raise
        if captures:
            self._endpoint = attach_all(endpoint, captures)
        self.n_foreign = 0

    # -- SpiNNMan's properties -------------------------------------------

    def is_connected(self) -> bool:
        return self._remote is not None and not self._endpoint.closed

    @property
    def local_ip_address(self) -> str:
        return self._endpoint.address[0]

    @property
    def local_port(self) -> int:
        return self._endpoint.address[1]

    @property
    def remote_ip_address(self) -> str | None:
        return None if self._remote is None else self._remote[0]

    @property
    def remote_port(self) -> int | None:
        return None if self._remote is None else self._remote[1]

    @property
    def endpoint(self) -> DatagramEndpoint:
        return self._endpoint

    # -- receiving -----------------------------------------------------------

    def receive(self, timeout: float | None = None) -> bytes:
        """The next datagram from the remote peer.

        Raises ReceiveTimeout, or ConnectionClosed once closed.
        """
        return self.receive_with_address(timeout)[0]

    def receive_with_address(
        self, timeout: float | None = None
    ) -> tuple[bytes, Address]:
        endpoint, remote = self._endpoint, self._remote
        data, sender = endpoint.receive_from(timeout)
        if remote is None or sender == remote:
            return data, sender
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self.n_foreign += 1
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise ReceiveTimeout(
                    f"nothing from {remote[0]}:{remote[1]} in {timeout} s"
                )
            data, sender = endpoint.receive_from(left)
            if sender == remote:
                return data, sender

    def is_ready_to_receive(self, timeout: float = 0) -> bool:
        return self._endpoint.wait_readable(timeout)

    def get_receive_method(self) -> Callable[[], bytes]:
        return self.receive

    # -- sending -------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Send to the remote peer, or raise TransportError."""
        if self._remote is None:
            raise TransportError(f"{self!r} has no remote address to send to")
        self._endpoint.send_to(data, self._remote)

    def send_to(self, data: bytes, address: Address) -> None:
        self._endpoint.send_to(data, address)

    # -- lifetime --------------------------------------------------------------

    def close(self) -> None:
        """Close the link; a receive waiting elsewhere raises ConnectionClosed."""
        self._endpoint.close()

    @property
    def closed(self) -> bool:
        return self._endpoint.closed

    def __enter__(self: C) -> C:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(local_host={self.local_ip_address}, "
            f"local_port={self.local_port}, "
            f"remote_host={self.remote_ip_address}, "
            f"remote_port={self.remote_port})"
        )
