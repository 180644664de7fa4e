"""Any connection object, driven through its own methods.

SpiNNMan's pipeline talks to a connection only through ``send``,
``receive_scp_response`` (or ``receive``) and ``is_ready_to_receive``, and
people rely on that: they subclass, wrap or mock connections to log or
count traffic, or hand over SpiNNMan's own SCAMPConnection. A
DrivenConnection gives such an object the shape the connection actor
needs (an endpoint, the board's address, the chip it stamps requests
with) while every datagram still goes through the object's own methods.
Only an unmodified connection of ours is driven through its socket
directly (see ``is_plain``).
"""

from __future__ import annotations

import inspect
import socket
from collections.abc import Callable
from typing import Any

from transport.capture.tap import attach
from transport.capture.writer import PacketCapture
from transport.connections.bmp import BMPConnection
from transport.connections.scamp import SCAMPConnection
from transport.errors import ConnectionClosed, ReceiveTimeout, TransportError
from transport.links.endpoint import (
    Address,
    BorrowedUDPEndpoint,
    Datagram,
    DatagramEndpoint,
)
from transport.logs import get_logger

log = get_logger(__name__)

#: The methods through which SpiNNMan's pipeline uses a connection.
SURFACE = (
    "send",
    "receive",
    "receive_scp_response",
    "is_ready_to_receive",
    "get_scp_data",
    "close",
)
#: Our connections whose socket may be driven directly: a BMPConnection is
#: a SCAMPConnection that stamps chip (0, 0).
PLAIN_TYPES = (SCAMPConnection, BMPConnection)
#: SpiNNMan's SCAMPConnection, by module and name (SpiNNMan is optional).
SPINNMAN_SCAMP = (
    "spinnman.connections.udp_packet_connections.scamp_connection",
    "SCAMPConnection",
)
#: How long a receive may take once the connection said a datagram waits.
_READY_RECEIVE_TIMEOUT = 1.0


def spinnmans_socket(connection: object) -> socket.socket | None:
    """The connected socket of an unmodified SpiNNMan SCAMPConnection
    (that class exactly: a subclass may override what its methods do);
    None for anything else."""
    kind = type(connection)
    if (kind.__module__, kind.__qualname__) != SPINNMAN_SCAMP:
        return None
    sock = getattr(connection, "_socket", None)
    if not isinstance(sock, socket.socket) or sock.type != socket.SOCK_DGRAM:
        return None
    try:
        sock.getpeername()
    except OSError:
        return None  # not connected: sends need its remote address
    return sock


def is_plain(connection: object) -> bool:
    """Whether ``connection`` is one of ours, unmodified: only then may its
    socket be used directly, bypassing its methods."""
    if type(connection) not in PLAIN_TYPES:
        return False
    overridden = vars(connection).keys() & set(SURFACE)
    return not overridden


def _is_timeout(error: BaseException) -> bool:
    return isinstance(error, TimeoutError) or "Timeout" in type(error).__name__


def _is_closed(error: BaseException) -> bool:
    name = type(error).__name__
    return isinstance(error, EOFError) or "EOF" in name or "Closed" in name


class MethodEndpoint:
    """A DatagramEndpoint that sends and receives through a connection
    object's methods. Every datagram comes from the connection's board
    (the connection is connected to it), so the sender is its remote."""

    def __init__(self, connection: Any, remote: Address) -> None:
        self._connection = connection
        self._remote = remote
        self._closed = False
        self._receive = self._receive_method(connection)
        #: Datagrams the connection could not hand over (it raised while
        #: parsing them): dropped, counted.
        self.n_unreadable = 0

    @staticmethod
    def _receive_method(connection: Any) -> Callable[[], bytes]:
        if hasattr(connection, "receive_scp_response"):

            def receive_scp() -> bytes:
                reply = connection.receive_scp_response(_READY_RECEIVE_TIMEOUT)
                return bytes(reply[2])  # (result, sequence, data, offset)

            return receive_scp

        def receive() -> bytes:
            return bytes(connection.receive(_READY_RECEIVE_TIMEOUT))

        return receive

    @property
    def address(self) -> Address:
        host = getattr(self._connection, "local_ip_address", None)
        port = getattr(self._connection, "local_port", None)
        return (str(host or ""), int(port or 0))

    @property
    def closed(self) -> bool:
        return self._closed

    def resolve(self, host: str) -> str:
        return host

    def send_to(self, data: Datagram, address: Address) -> None:
        """Send through the connection's own ``send`` (it knows where)."""
        if self._closed:
            raise ConnectionClosed("the endpoint is closed")
        try:
            self._connection.send(bytes(data))
        except Exception as error:
            if _is_closed(error):
                raise ConnectionClosed(
                    f"the connection is closed: {error!r}"
                ) from error
            raise

    def receive_from(self, timeout: float | None) -> tuple[bytes, Address]:
        if self._closed:
            raise ConnectionClosed("the endpoint is closed")
        ready = self._connection.is_ready_to_receive(
            3600.0 if timeout is None else timeout
        )
        if not ready:
            raise ReceiveTimeout(f"nothing received within {timeout} s")
        data = self._take()
        if data is None:
            raise ReceiveTimeout("only an unreadable datagram arrived")
        return data, self._remote

    def receive_waiting(self, limit: int) -> list[tuple[bytes, Address]]:
        out: list[tuple[bytes, Address]] = []
        while len(out) < limit and self._connection.is_ready_to_receive(0):
            data = self._take()
            if data is not None:
                out.append((data, self._remote))
        return out

    def wait_readable(self, timeout: float) -> bool:
        return bool(self._connection.is_ready_to_receive(timeout))

    def close(self) -> None:
        """Stop using the connection; closing it is its owner's business."""
        self._closed = True

    def _take(self) -> bytes | None:
        """One datagram from the connection; None (counted) if it raised
        over one it could not parse."""
        try:
            return self._receive()
        except Exception as error:
            if _is_closed(error):
                raise ConnectionClosed(
                    f"the connection is closed: {error!r}"
                ) from error
            if _is_timeout(error):
                return None
            self.n_unreadable += 1
            log.debug("connection.unreadable", error=repr(error))
            return None


class DrivenConnection:
    """``connection`` as the connection actor sees it, every datagram going
    through the connection's own methods (and to ``capture``, if given);
    closing is left to its owner.

    A connection with no remote address (a spalloc-proxied one, a test's
    mock whose ``send`` goes nowhere) is named by its type."""

    def __init__(self, connection: Any, capture: PacketCapture | None = None) -> None:
        self._connection = connection
        host = getattr(connection, "remote_ip_address", None)
        port = getattr(connection, "remote_port", None)
        self.remote_ip_address: str | None = (
            str(host) if host else type(connection).__name__
        )
        self.remote_port: int | None = int(port) if port else 0
        self._methods = MethodEndpoint(
            connection, (self.remote_ip_address, self.remote_port)
        )
        endpoint: DatagramEndpoint = self._methods
        sock = spinnmans_socket(connection)
        if sock is not None:
            # SpiNNMan's own SCAMPConnection, unmodified: its methods only
            # send and receive on its connected socket, so the socket is
            # used directly (fewer system calls, and replies taken in
            # bursts), as an unmodified connection of ours is.
            endpoint = BorrowedUDPEndpoint(sock)
            assert endpoint.peer is not None
            self.remote_ip_address, self.remote_port = endpoint.peer
        self._endpoint = endpoint if capture is None else attach(endpoint, capture)

    @property
    def endpoint(self) -> DatagramEndpoint:
        return self._endpoint

    @property
    def chip_x(self) -> int:
        return int(getattr(self._connection, "chip_x", 255))

    @property
    def chip_y(self) -> int:
        return int(getattr(self._connection, "chip_y", 255))

    @property
    def n_foreign(self) -> int:
        """None seen: the connection filters other senders itself, if it
        does."""
        return 0

    @property
    def n_unreadable(self) -> int:
        """Datagrams the connection raised over (dropped, counted)."""
        return self._methods.n_unreadable

    def close(self) -> None:
        self._endpoint.close()

    def __repr__(self) -> str:
        return f"DrivenConnection({self._connection!r})"


def has_no_remote(connection: object) -> bool:
    """Whether ``connection`` says it has no board to send to."""
    return (
        hasattr(connection, "remote_ip_address")
        and connection.remote_ip_address is None
    )


def cannot_send(connection: object) -> bool:
    """Whether ``connection`` has nowhere to send: no remote address, and
    the ``send`` it has is a UDP connection's own, which needs one (ours
    or SpiNNMan's: both classes are named UDPConnection). A ``send`` of
    its own (a spalloc proxy's, a test's mock) is trusted to know where."""
    if not has_no_remote(connection):
        return False
    if "send" in getattr(connection, "__dict__", {}):
        return False
    owner = next((k for k in type(connection).__mro__ if "send" in vars(k)), None)
    return owner is not None and owner.__name__ == "UDPConnection"


class DrivenListenable:
    """Someone else's listenable connection (SpiNNMan's EIEIO or SDP
    connection) with the errors a listener of ours knows: a closed one
    (SpiNNMan's EOF) raises ConnectionClosed, a timeout ReceiveTimeout,
    anything else it raises over a datagram TransportError (counted, the
    listener reads on), as SpiNNMan's listener logs it and reads on.
    Everything else is the connection's own."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    def is_ready_to_receive(self, timeout: float = 0) -> bool:
        try:
            return bool(self._connection.is_ready_to_receive(timeout))
        except Exception as error:
            raise _ours(error) from error

    def get_receive_method(self) -> Callable[..., Any]:
        """The connection's receive method; called with a timeout only if
        it takes one (a listener of ours passes 0: the datagram is there)."""
        handler = self._connection.get_receive_method()
        try:
            inspect.signature(handler).bind(0.0)
            takes_timeout = True
        except (TypeError, ValueError):
            takes_timeout = False

        def receive(timeout: float | None = None) -> Any:
            try:
                return handler(timeout) if takes_timeout else handler()
            except Exception as error:
                raise _ours(error) from error

        return receive

    def close(self) -> None:
        self._connection.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)

    def __repr__(self) -> str:
        return repr(self._connection)


def _ours(error: Exception) -> Exception:
    """``error`` as one of ours: closed, timed out, or a failed receive."""
    if isinstance(error, TransportError):
        return error
    if _is_closed(error):
        return ConnectionClosed(f"the connection is closed: {error!r}")
    if _is_timeout(error):
        return ReceiveTimeout(str(error))
    return TransportError(f"the connection could not receive: {error!r}")
