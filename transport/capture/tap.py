"""A capture's taps: what puts a copy of each datagram into a capture.

A UDP socket of ours that is to be captured is made a TappedUDPEndpoint
from the start (its send and receives hand each datagram to the capture
after doing what a UDPEndpoint does), so an uncaptured socket's path
carries no test for a capture. Any other endpoint (in-memory, a user's
own) is wrapped in a CapturingEndpoint. Either goes inside a fault
injector, so the capture shows what went on the wire.
"""

from __future__ import annotations

from collections.abc import Sequence

from transport.capture.pcap import Link
from transport.capture.writer import LinkBook, PacketCapture
from transport.links.endpoint import Address, Datagram, DatagramEndpoint, UDPEndpoint

_send_to = UDPEndpoint.send_to
_send_many = UDPEndpoint.send_many
_receive_from = UDPEndpoint.receive_from
_receive_waiting = UDPEndpoint.receive_waiting


class TappedUDPEndpoint(UDPEndpoint):
    """A UDP socket whose datagrams also go to a capture, once ``tap`` has
    named it (until then it is a plain UDPEndpoint that records nothing)."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, receive_buffer: int = 1 << 20
    ) -> None:
        super().__init__(host, port, receive_buffer=receive_buffer)
        self.capture: PacketCapture | None = None

    def tap(self, capture: PacketCapture) -> None:
        """Record every datagram from now on in ``capture``."""
        self.capture = capture
        self._add = capture.add
        self._add_burst = capture.add_burst
        self._links = capture.links(self.address)
        #: The last peer sent to and heard from, and their links (a board's
        #: connection has one; a connected socket's receives return its
        #: peer's very tuple, so `is` finds it).
        self._peer: Address | None = None
        self._peer_link: Link = self._links.outbound(self.address)
        self._sender: Address | None = None
        self._sender_link: Link = self._peer_link

    def send_to(self, data: Datagram, address: Address) -> None:
        _send_to(self, data, address)
        if self.capture is not None:
            self._add(self._link_to(address), data)

    def send_many(
        self, datagrams: Sequence[bytes | bytearray], address: Address
    ) -> int:
        went = _send_many(self, datagrams, address)
        if went and self.capture is not None:
            add, link = self._add, self._link_to(address)
            for data in datagrams[:went]:
                add(link, data)
        return went

    def _link_to(self, address: Address) -> Link:
        if address is not self._peer:
            self._peer_link = self._links.outbound(address)
            self._peer = address
        return self._peer_link

    def receive_from(self, timeout: float | None) -> tuple[bytes, Address]:
        data, sender = _receive_from(self, timeout)
        if self.capture is not None:
            if sender is not self._sender:
                self._sender_link = self._links.inbound(sender)
                self._sender = sender
            self._add(self._sender_link, data)
        return data, sender

    def receive_waiting(self, limit: int) -> list[tuple[bytes, Address]]:
        out = _receive_waiting(self, limit)
        if out and self.capture is not None:
            self._add_burst(self._links, out)
        return out


def attach(endpoint: DatagramEndpoint, capture: PacketCapture) -> DatagramEndpoint:
    """``endpoint`` with every datagram going to ``capture``: a tapped UDP
    socket tapped (no wrapper on its hot path), any other endpoint wrapped."""
    if isinstance(endpoint, TappedUDPEndpoint):
        endpoint.tap(capture)
        return endpoint
    return CapturingEndpoint(endpoint, capture)


def attach_all(
    endpoint: DatagramEndpoint, captures: Sequence[PacketCapture]
) -> DatagramEndpoint:
    """``endpoint`` recording in each of ``captures`` (the first as attach
    does, the others wrapped around it): one exchange that concerns boards
    with captures of their own, as a BMP command for several, goes in
    each."""
    for n, capture in enumerate(captures):
        if n == 0:
            endpoint = attach(endpoint, capture)
        else:
            endpoint = CapturingEndpoint(endpoint, capture)
    return endpoint


class CapturingEndpoint:
    """An endpoint that hands a copy of every datagram to a capture, as
    it went on the wire (wrap it inside any fault injector)."""

    def __init__(self, inner: DatagramEndpoint, capture: PacketCapture) -> None:
        self.inner = inner
        self.capture = capture
        self._links = LinkBook(inner.address)
        self._add = capture.add
        #: The last peer sent to and its link (a board's connection has one).
        #: (A connected socket's receives return its peer's very tuple.)
        self._peer: Address | None = None
        self._peer_link = Link(inner.address, inner.address)
        self._sender: Address | None = None
        self._sender_link = self._peer_link

    @property
    def address(self) -> Address:
        return self.inner.address

    @property
    def closed(self) -> bool:
        return self.inner.closed

    @property
    def refused(self) -> int:
        """A connected UDP socket's refused receives (see UDPEndpoint)."""
        return int(getattr(self.inner, "refused", 0))

    def resolve(self, host: str) -> str:
        return self.inner.resolve(host)

    def send_to(self, data: Datagram, address: Address) -> None:
        self.inner.send_to(data, address)
        if address is not self._peer:
            self._peer_link = self._links.outbound(address)
            self._peer = address
        self._add(self._peer_link, data)

    def receive_from(self, timeout: float | None) -> tuple[bytes, Address]:
        data, sender = self.inner.receive_from(timeout)
        if sender is self._sender:
            link = self._sender_link
        else:
            link = self._sender_link = self._links.inbound(sender)
            self._sender = sender
        self._add(link, data)
        return data, sender

    def receive_waiting(self, limit: int) -> list[tuple[bytes, Address]]:
        out = self.inner.receive_waiting(limit)
        if out:
            self.capture.add_burst(self._links, out)
        return out

    def wait_readable(self, timeout: float) -> bool:
        return self.inner.wait_readable(timeout)

    def close(self) -> None:
        self.inner.close()

    def __repr__(self) -> str:
        return f"CapturingEndpoint({self.inner!r}, {self.capture!r})"
