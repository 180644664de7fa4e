"""Datagram endpoints: the one surface every link in spinnactors offers.

A connection, the virtual board and the fault injector all talk to an
endpoint, so each of them works the same over real UDP and over the
in-memory network used by unit tests.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import struct
import threading
import time
from collections.abc import Sequence
from typing import Protocol

from transport.errors import ConnectionClosed, ReceiveTimeout, TransportError
from transport.links.batch import batch

#: A datagram address: (host, port).
Address = tuple[str, int]
#: What may be sent: any bytes-like buffer.
Datagram = bytes | bytearray | memoryview

#: Large enough for any SDP/SCP datagram and any EIEIO packet.
MAX_DATAGRAM = 65535
_SEND_TRIES = 5
#: Receive without blocking, whatever the socket's timeout.
_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)
#: A kernel receive timeout, where the platform has one.
_RCVTIMEO: int | None = getattr(socket, "SO_RCVTIMEO", None) if _DONTWAIT else None
#: The timeout a borrowed socket is given if its owner left it blocking
#: (the owner sets its own on its next call, as SpiNNMan does on each).
_OWNER_TIMEOUT = 1.0
_TIMEVAL = struct.Struct("@ll")
#: (ECONNREFUSED: a connected socket's send reports the ICMP "port
#: unreachable" left by an earlier one, once; sent again, it goes.)
_TRANSIENT_SEND_ERRORS = frozenset(
    {errno.ENOBUFS, errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR, errno.ECONNREFUSED}
)


class DatagramEndpoint(Protocol):
    """A bound datagram socket, real or simulated."""

    @property
    def address(self) -> Address:
        """The local address datagrams are received on."""
        ...

    @property
    def closed(self) -> bool: ...

    def resolve(self, host: str) -> str:
        """The address form of ``host`` on this kind of link."""
        ...

    def send_to(self, data: Datagram, address: Address) -> None:
        """Send one datagram, or raise TransportError."""
        ...

    def receive_from(self, timeout: float | None) -> tuple[bytes, Address]:
        """The next datagram and its sender.

        Raises ReceiveTimeout after ``timeout`` seconds (None waits forever)
        and ConnectionClosed once the endpoint is closed, even if a receive
        was already waiting in another thread.
        """
        ...

    def receive_waiting(self, limit: int) -> list[tuple[bytes, Address]]:
        """Up to ``limit`` datagrams that have arrived, without waiting
        (none if nothing has): a busy receiver takes a burst per call."""
        ...

    def wait_readable(self, timeout: float) -> bool:
        """True when a receive would not block (data waiting, or closed)."""
        ...

    def close(self) -> None: ...


class UDPEndpoint:
    """A UDP socket bound to ``host:port`` (port 0: the OS picks one).

    The socket is unconnected unless ``connect`` is called, so that a
    sender other than the expected peer can be seen and counted. Connected
    to one peer (the fast path of a board's connection, as the bare loop
    and SpiNNMan's UDPConnection are), the kernel drops every other
    sender's datagrams unseen and uncounted, and each send and receive is
    a little cheaper; an ICMP "port unreachable" from the peer then shows
    as a receive that ends early, counted in ``refused``.
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, receive_buffer: int = 1 << 20
    ) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            self._socket.bind((host, port))
        except OSError as error:
            self._socket.close()
            raise TransportError(
                f"cannot bind UDP {host or '0.0.0.0'}:{port}: {error.strerror or error}"
            ) from error
        self._address: Address = self._socket.getsockname()
        self._timeout: float | None = None
        self._socket.settimeout(None)
        self._closed = False
        self._close_lock = threading.Lock()
        #: The one peer of a connected socket (None: unconnected).
        self.peer: Address | None = None
        #: Receives a connected socket ended early: the peer's port was
        #: closed (an ICMP "port unreachable" for an earlier send).
        self.refused = 0

    @property
    def address(self) -> Address:
        return self._address

    def connect(self, peer: Address) -> None:
        """Take datagrams from ``peer`` only (the kernel drops the rest)."""
        try:
            self._socket.connect(peer)
        except OSError as error:
            raise TransportError(
                f"cannot connect UDP {self._text()} to {peer[0]}:{peer[1]}: "
                f"{error.strerror or error}"
            ) from error
        self.peer = peer
        self._address = self._socket.getsockname()

    @property
    def closed(self) -> bool:
        return self._closed

    def resolve(self, host: str) -> str:
        return self.resolve_host(host)

    @staticmethod
    def resolve_host(host: str) -> str:
        """The IPv4 address of ``host``, or TransportError saying why not."""
        try:
            return socket.gethostbyname(host)
        except OSError as error:
            raise TransportError(f"cannot resolve host {host!r}: {error}") from error

    def send_to(self, data: Datagram, address: Address) -> None:
        try:
            if address == self.peer:
                self._socket.send(data)
            else:
                self._socket.sendto(data, address)
        except OSError:
            self._send_again(data, address)

    def send_many(
        self, datagrams: Sequence[bytes | bytearray], address: Address
    ) -> int:
        """Send the first of ``datagrams`` to ``address`` in one system
        call, as many as go without waiting: how many went (0 where the
        compiled helper is not, or to another than a connected socket's
        peer). The rest are the caller's to send_to, which retries and
        says why one cannot go."""
        if batch is None or address != self.peer or self._closed:
            return 0
        try:
            return batch.send(self._socket.fileno(), datagrams)
        except OSError:
            return 0

    def _send_again(self, data: Datagram, address: Address) -> None:
        """Retry a refused send a few times, or say why it failed."""
        for attempt in range(_SEND_TRIES):
            try:
                self._socket.sendto(data, address)
                return
            except OSError as error:
                if self._closed:
                    raise ConnectionClosed(f"UDP {self._text()} is closed") from error
                if (
                    error.errno not in _TRANSIENT_SEND_ERRORS
                    or attempt == _SEND_TRIES - 1
                ):
                    raise TransportError(
                        f"send from {self._text()} to {address[0]}:"
                        f"{address[1]} failed: {error.strerror or error}"
                    ) from error
                time.sleep(0.0001 * (attempt + 1))

    def receive_from(self, timeout: float | None) -> tuple[bytes, Address]:
        sock, peer = self._socket, self.peer
        try:
            if peer is not None and _RCVTIMEO is not None:
                if timeout is not None and timeout <= 0:
                    return sock.recv(MAX_DATAGRAM, _DONTWAIT), peer
                if timeout != self._timeout:
                    self._set_receive_timeout(timeout)
                data = sock.recv(MAX_DATAGRAM)
                if self._closed:
                    raise ConnectionClosed(f"UDP {self._text()} is closed")
                return data, peer
            if _RCVTIMEO is None:
                if timeout != self._timeout:
                    self._timeout = timeout
                    sock.settimeout(timeout if timeout is None else max(timeout, 0.0))
                data, sender = sock.recvfrom(MAX_DATAGRAM)
            elif timeout is not None and timeout <= 0:
                data, sender = sock.recvfrom(MAX_DATAGRAM, _DONTWAIT)
            else:
                if timeout != self._timeout:
                    self._set_receive_timeout(timeout)
                data, sender = sock.recvfrom(MAX_DATAGRAM)
        except (TimeoutError, BlockingIOError):
            if self._closed:
                raise ConnectionClosed(f"UDP {self._text()} is closed") from None
            raise ReceiveTimeout(
                f"nothing received on {self._text()} in {timeout} s"
            ) from None
        except ConnectionRefusedError:
            if self._closed:
                raise ConnectionClosed(f"UDP {self._text()} is closed") from None
            self.refused += 1
            raise ReceiveTimeout(
                f"{self._text()}: the peer's port is closed (ICMP refused)"
            ) from None
        except OSError as error:
            if self._closed:
                raise ConnectionClosed(f"UDP {self._text()} is closed") from None
            raise TransportError(
                f"receive on {self._text()} failed: {error.strerror or error}"
            ) from error
        if self._closed:
            raise ConnectionClosed(f"UDP {self._text()} is closed")
        return data, sender

    def receive_waiting(self, limit: int) -> list[tuple[bytes, Address]]:
        out: list[tuple[bytes, Address]] = []
        if not _DONTWAIT or self._closed:
            return out
        peer = self.peer
        try:
            if peer is not None and batch is not None:
                return batch.receive(self._socket.fileno(), limit, peer)
            if peer is None:
                receive_from = self._socket.recvfrom
                while len(out) < limit:
                    out.append(receive_from(MAX_DATAGRAM, _DONTWAIT))
            else:
                receive = self._socket.recv
                while len(out) < limit:
                    out.append((receive(MAX_DATAGRAM, _DONTWAIT), peer))
        except ConnectionRefusedError:
            self.refused += 1
        except OSError:
            pass  # nothing more waiting (or closed: the next receive says)
        return out

    def _set_receive_timeout(self, timeout: float | None) -> None:
        """Time out a blocking receive in the kernel (SO_RCVTIMEO), which
        keeps the socket in blocking mode: each send and receive is then one
        system call instead of a poll() and the call."""
        assert _RCVTIMEO is not None
        self._timeout = timeout
        seconds, fraction = divmod(timeout or 0.0, 1.0)
        micros = int(fraction * 1e6)
        if timeout and not seconds and not micros:
            micros = 1  # zero would mean "wait forever"
        seconds = int(seconds)
        self._socket.setsockopt(
            socket.SOL_SOCKET, _RCVTIMEO, _TIMEVAL.pack(seconds, micros)
        )

    def wait_readable(self, timeout: float) -> bool:
        if self._closed:
            return True
        try:
            readable, _, _ = select.select([self._socket], [], [], max(0.0, timeout))
        except (OSError, ValueError):
            return True
        return bool(readable) or self._closed

    def close(self) -> None:
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        # Wakes a receive blocked in another thread (Linux returns an
        # empty read); closing alone would leave it waiting.
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)
        self._socket.close()

    def fileno(self) -> int:
        return self._socket.fileno()

    def _text(self) -> str:
        return f"{self._address[0]}:{self._address[1]}"

    def __repr__(self) -> str:
        state = " closed" if self._closed else ""
        return f"UDPEndpoint({self._text()}{state})"


class BorrowedUDPEndpoint(UDPEndpoint):
    """A UDPEndpoint on a connected UDP socket that someone else owns (an
    unmodified SpiNNMan connection's); closing it leaves the socket to its
    owner.

    The owner sets a timeout of its own on the socket for each of its calls
    (SpiNNMan does), which puts it in non-blocking mode; a socket with a
    timeout makes Python poll() before every send and receive (two system
    calls, each letting the interpreter lock go). So this endpoint keeps the
    socket non-blocking and reads and writes its descriptor directly: one
    system call per datagram, and a select() only when nothing is waiting.
    No socket option of the owner's is changed but the timeout, which the
    owner sets again on its next call."""

    def __init__(self, sock: socket.socket) -> None:  # (no socket of its own)
        peer = sock.getpeername()  # OSError if it is not connected
        self._socket = sock
        self._address = sock.getsockname()
        self._timeout = None
        self._closed = False
        self._close_lock = threading.Lock()
        self.peer = peer
        self.refused = 0

    def _descriptor(self) -> int:
        """The socket's descriptor, the socket made non-blocking (a timeout
        of Python's); ConnectionClosed once its owner has closed it."""
        sock = self._socket
        descriptor = sock.fileno()
        if descriptor < 0 or self._closed:
            raise ConnectionClosed(f"UDP {self._text()} is closed")
        if sock.gettimeout() is None:
            sock.settimeout(_OWNER_TIMEOUT)
        return descriptor

    def send_to(self, data: Datagram, address: Address) -> None:
        if address == self.peer:
            try:
                os.write(self._descriptor(), data)
                return
            except OSError:
                pass  # (a full buffer, say: the socket's own send says)
        if self._socket.fileno() < 0:
            raise ConnectionClosed(f"UDP {self._text()} is closed")
        UDPEndpoint.send_to(self, data, address)

    def receive_from(self, timeout: float | None) -> tuple[bytes, Address]:
        descriptor = self._descriptor()
        data = self._read(descriptor)
        if data is None and (timeout is None or timeout > 0):
            try:
                ready, _, _ = select.select([descriptor], [], [], timeout)
            except (OSError, ValueError):
                raise ConnectionClosed(f"UDP {self._text()} is closed") from None
            if ready:
                data = self._read(descriptor)
        if data is None:
            raise ReceiveTimeout(f"nothing received on {self._text()} in {timeout} s")
        assert self.peer is not None
        return data, self.peer

    def receive_waiting(self, limit: int) -> list[tuple[bytes, Address]]:
        out: list[tuple[bytes, Address]] = []
        descriptor, peer = self._descriptor(), self.peer
        assert peer is not None
        while len(out) < limit:
            data = self._read(descriptor)
            if data is None:
                break
            out.append((data, peer))
        return out

    def _read(self, descriptor: int) -> bytes | None:
        """A datagram waiting, or None."""
        try:
            return os.read(descriptor, MAX_DATAGRAM)
        except BlockingIOError:
            return None
        except ConnectionRefusedError:
            self.refused += 1
            return None
        except OSError as error:
            if self._closed or self._socket.fileno() < 0:
                raise ConnectionClosed(f"UDP {self._text()} is closed") from None
            raise TransportError(
                f"receive on {self._text()} failed: {error.strerror or error}"
            ) from error

    def close(self) -> None:
        """Stop using the socket; closing it is its owner's business."""
        self._closed = True

    def __repr__(self) -> str:
        return f"BorrowedUDPEndpoint({self._text()})"
