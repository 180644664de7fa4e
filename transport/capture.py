"""Packet capture: every datagram an endpoint sends and receives, to pcap.

The sender's thread makes each datagram's pcap record (a cached frame
header per link and length, transport/pcap.py) and appends it to a
list; a writer thread takes what is there every ``FLUSH_INTERVAL`` and
writes it out, and a file write lets the interpreter's lock go, so the
writer costs the connection almost nothing (framing in the writer, in
bulk, took a fifth of the process's time and stalled the connection
while it held the lock). A capture is bounded: at most ``max_bytes`` or
``max_packets`` per file, then the file rotates (``x.pcap`` ->
``x.pcap.1`` -> ...; ``files`` are kept), and at most ``max_pending``
datagrams wait for the writer (more are counted in ``dropped``, never
block the sender). ``close`` writes what is left and joins the
writer. A capture read while it runs is at most ``flush_interval``
behind.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Union

from messages.errors import InvalidArgumentError
from transport.endpoint import Address, Datagram, DatagramEndpoint, UDPEndpoint
from transport.logs import get_logger
from transport.pcap import FILE_HEADER_SIZE, STAMP, Link, file_header

log = get_logger(__name__)

_now = time.time_ns
_stamp = STAMP.pack
#: How long close waits for the writer.
_CLOSE_TIMEOUT = 10.0
_NANOS = 1_000_000_000
#: Address pairs a LinkBook keeps (a board hears from few hosts).
_LINKS_KEPT = 1024

#: How often the writer takes what has piled up.
FLUSH_INTERVAL = 0.02
#: Default bounds: per file, files kept, and datagrams waiting.
MAX_BYTES = 64 << 20
FILES = 4
MAX_PENDING = 200_000

#: What ``capture=`` takes: a file (or a template with {host} and
#: {port}, or a directory), or a PacketCapture to share.
CaptureTarget = Union[str, "os.PathLike[str]", "PacketCapture"]


def capture_path(target: str | os.PathLike[str], host: str, port: int) -> Path:
    """The file for the board at ``host:port``: ``target`` with {host}
    and {port} filled in, or ``host_port.pcap`` in ``target`` if it is a
    directory (or ends with a slash)."""
    text = os.fspath(target)
    if text.endswith(("/", os.sep)) or Path(text).is_dir():
        return Path(text) / f"{host}_{port}.pcap"
    try:
        return Path(text.format(host=host, port=port))
    except (KeyError, IndexError, ValueError, AttributeError, TypeError) as error:
        raise InvalidArgumentError(
            "capture", text, f"only {{host}} and {{port}} can be filled in ({error})"
        ) from None


def names_each_board(target: str | os.PathLike[str]) -> bool:
    """Whether ``target`` gives every board a file of its own."""
    text = os.fspath(target)
    return (
        text.endswith(("/", os.sep))
        or Path(text).is_dir()
        or ("{host}" in text and "{port}" in text)
    )


class PcapFile:
    """A pcap file that rotates: the writing half of a capture."""

    def __init__(
        self, path: Path, max_bytes: int, max_packets: int | None, files: int
    ) -> None:
        self.path, self.max_bytes, self.files = path, max_bytes, files
        self.max_packets = max_packets
        #: Files started so far (1 + rotations).
        self.opened = 0
        self._file = self._open()
        self._in_file = 0
        self._bytes = FILE_HEADER_SIZE

    def write(self, records: list[bytes]) -> None:
        """Write whole records: at once while they fit the file, one by
        one where it must rotate."""
        size = sum(map(len, records))
        count = len(records)
        if self._bytes + size <= self.max_bytes and (
            self.max_packets is None or self._in_file + count <= self.max_packets
        ):
            self._write(records)
            self._bytes += size
            self._in_file += count
            return
        max_packets = self.max_packets or (1 << 62)
        start = 0
        for index, record in enumerate(records):
            if self._in_file and (
                self._bytes + len(record) > self.max_bytes
                or self._in_file >= max_packets
            ):
                self._write(records[start:index])
                self._rotate()
                start = index
            self._bytes += len(record)
            self._in_file += 1
        self._write(records[start:])

    def _write(self, records: list[bytes]) -> None:
        try:
            self._file.write(b"".join(records))
            self._file.flush()
        except (OSError, ValueError) as error:  # a full disk: say so, carry on
            log.warning(
                "capture.write_failed", capture=str(self.path), error=str(error)
            )

    def _open(self) -> BinaryIO:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        file = open(self.path, "wb")  # noqa: SIM115 - see close
        file.write(file_header())
        file.flush()
        self.opened += 1
        return file

    def _rotate(self) -> None:
        """Close the file, shift the older ones up by one, start afresh."""
        self._file.close()
        name = str(self.path)
        for index in range(self.files - 1, 0, -1):
            older = Path(f"{name}.{index - 1}") if index > 1 else self.path
            if older.exists():
                os.replace(older, f"{name}.{index}")
        self._file = self._open()
        self._in_file, self._bytes = 0, FILE_HEADER_SIZE

    def close(self) -> None:
        self._file.close()


class PacketCapture:
    """Writes the datagrams it is given to a pcap file, off the caller's
    thread. Share one between endpoints (of any threads), or let each
    owner open its own."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_bytes: int = MAX_BYTES,
        max_packets: int | None = None,
        files: int = FILES,
        max_pending: int = MAX_PENDING,
        flush_interval: float = FLUSH_INTERVAL,
    ) -> None:
        if not isinstance(max_bytes, int) or max_bytes < 1024:
            raise InvalidArgumentError("max_bytes", max_bytes, "must be >= 1024")
        if max_packets is not None and (
            not isinstance(max_packets, int) or max_packets < 1
        ):
            raise InvalidArgumentError("max_packets", max_packets, "must be >= 1")
        if not isinstance(files, int) or files < 1:
            raise InvalidArgumentError("files", files, "must be >= 1")
        if not isinstance(max_pending, int) or max_pending < 1:
            raise InvalidArgumentError("max_pending", max_pending, "must be >= 1")
        self.path = Path(path)
        self.max_bytes, self.max_packets = max_bytes, max_packets
        self.files, self.max_pending = files, max_pending
        self._interval = flush_interval
        #: Datagrams written, and those lost because the writer fell behind
        #: (or that came after close).
        self.written = 0
        self.dropped = 0
        #: Files started (1 + rotations) and the writer thread's CPU
        #: seconds (known once closed).
        self.opened = 0
        self.writer_seconds = 0.0
        #: Records not yet taken by the writer, and how many may wait:
        #: max_pending while open, 0 once closed. No lock: a list's
        #: append, slice and del each hold the interpreter's lock, so
        #: senders of any threads and the writer share it safely.
        self._records: list[bytes] = []
        self._room = max_pending
        self._closed = False
        self._wake = threading.Event()
        self._log = log.bind(capture=str(self.path))
        # Opened here: a bad path fails in the caller, at once.
        self._file = PcapFile(self.path, max_bytes, max_packets, files)
        self._thread = threading.Thread(
            target=self._run, name=f"capture-{self.path.name}", daemon=True
        )
        self._thread.start()

    # -- the hot path ----------------------------------------------------------

    @staticmethod
    def links(local: Address) -> LinkBook:
        """A book of the links to and from ``local``, for an endpoint."""
        return LinkBook(local)

    def add(self, link: Link, data: Datagram) -> None:
        """Record one datagram that went ``link``'s way, now."""
        records = self._records
        if len(records) < self._room:
            length = len(data)
            head = link.heads.get(length) or link.head(length)
            records.append(_stamp(*divmod(_now(), _NANOS)) + head + data)
        else:
            self.dropped += 1

    def add_burst(
        self, links: LinkBook, datagrams: list[tuple[bytes, Address]]
    ) -> None:
        """Record a burst of received datagrams (one clock reading)."""
        records = self._records
        if len(records) + len(datagrams) > self._room:
            self.dropped += len(datagrams)
            return
        stamp = _stamp(*divmod(_now(), _NANOS))
        inbound, append = links.inbound, records.append
        for data, sender in datagrams:
            link = inbound(sender)
            length = len(data)
            append(stamp + (link.heads.get(length) or link.head(length)) + data)

    # -- the writer --------------------------------------------------------------

    def _run(self) -> None:
        wake = self._wake
        started = time.thread_time()
        try:
            while not self._closed:
                wake.wait(self._interval)
                self._write_pending()
            self._write_pending()
        finally:
            self._file.close()
            self.opened = self._file.opened
            self.writer_seconds = time.thread_time() - started

    def _write_pending(self) -> None:
        records = self._records
        count = len(records)
        if count:
            batch = records[:count]
            del records[:count]  # (what came meanwhile stays)
            self._file.write(batch)  # the file write lets the GIL go
            self.written += count

    # -- lifetime ------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Write what is waiting, close the file and join the writer."""
        if self._closed:
            return
        self._closed = True
        self._room = 0
        self._wake.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=_CLOSE_TIMEOUT)
        self._log.debug(
            "capture.closed", written=self.written, dropped=self.dropped,
            files=self.opened,
        )  # fmt: skip

    def __enter__(self) -> PacketCapture:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PacketCapture({str(self.path)!r}, written={self.written})"


def attach(endpoint: DatagramEndpoint, capture: PacketCapture) -> DatagramEndpoint:
    """``endpoint`` with every datagram going to ``capture``: a UDP socket
    tapped (no wrapper on its hot path), any other endpoint wrapped."""
    if type(endpoint) is UDPEndpoint:
        endpoint.tap(capture)
        return endpoint
    return CapturingEndpoint(endpoint, capture)


def open_capture(
    target: CaptureTarget | None, host: str, port: int
) -> tuple[PacketCapture | None, bool]:
    """The capture for the board at ``host:port`` and whether the caller
    owns it (opened here) or shares it (given)."""
    if target is None:
        return None, False
    if isinstance(target, PacketCapture):
        return target, False
    if not isinstance(target, (str, os.PathLike)):
        raise InvalidArgumentError(
            "capture", target, "must be a file path, a directory or a PacketCapture"
        )
    return PacketCapture(capture_path(target, host, port)), True


class LinkBook:
    """The Links of one endpoint, to and from each peer (made once)."""

    def __init__(self, local: Address) -> None:
        self.local = local
        self._out: dict[Address, Link] = {}
        self._in: dict[Address, Link] = {}

    def outbound(self, peer: Address) -> Link:
        link = self._out.get(peer)
        if link is None:
            if len(self._out) >= _LINKS_KEPT:
                self._out.clear()
            link = self._out[peer] = Link(self.local, peer)
        return link

    def inbound(self, peer: Address) -> Link:
        link = self._in.get(peer)
        if link is None:
            if len(self._in) >= _LINKS_KEPT:
                self._in.clear()
            link = self._in[peer] = Link(peer, self.local)
        return link


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
