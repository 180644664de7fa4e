"""Errors of the transport layer: I/O failure, timeout and end of stream."""

from __future__ import annotations

from messages.errors import SpinnactorsError


class TransportError(SpinnactorsError, OSError):
    """A datagram could not be sent or received."""


class ReceiveTimeout(TransportError, TimeoutError):
    """Nothing arrived before the receive timeout."""


class ConnectionClosed(TransportError, EOFError):
    """The connection was closed; nothing more will arrive on it."""


class PortClosed(TransportError, ConnectionRefusedError):
    """The peer's host said nothing listens on its port (an ICMP "port
    unreachable" to a connected socket)."""


def refused_text(host: str, port: int) -> str:
    """What to tell a user whose board's port is closed."""
    return (
        f"{host}:{port} refused: nothing listens on that port (ICMP port "
        f"unreachable); check the address, or that a board is there "
        f"(spinnactors board serves a virtual one)"
    )
