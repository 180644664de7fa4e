"""Errors of the transport layer: I/O failure, timeout and end of stream."""

from __future__ import annotations

from messages.errors import SpinnactorsError


class TransportError(SpinnactorsError, OSError):
    """A datagram could not be sent or received."""


class ReceiveTimeout(TransportError, TimeoutError):
    """Nothing arrived before the receive timeout."""


class ConnectionClosed(TransportError, EOFError):
    """The connection was closed; nothing more will arrive on it."""
