"""Packet capture: every datagram an endpoint sends and receives, to pcap.

The hot path only appends (time, source, destination, bytes) to a deque;
a writer thread wakes every ``FLUSH_INTERVAL`` to frame what has piled up
(transport/pcap.py) and write it in one go. A capture is bounded: at most
``max_bytes`` or ``max_packets`` per file, then the file rotates
(``x.pcap`` -> ``x.pcap.1`` -> ...; ``files`` are kept), and at most
``max_pending`` datagrams wait for the writer (more are counted in
``dropped``, never block the sender). ``close`` writes what is left and
joins the writer. Records are written every ``flush_interval`` seconds, so
a capture read while it runs is at most that far behind.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Union

from messages.errors import InvalidArgumentError
from transport.endpoint import Address, Datagram, DatagramEndpoint
from transport.logs import get_logger
from transport.pcap import FILE_HEADER_SIZE, Framer, file_header

log = get_logger(__name__)

#: How often the writer looks for datagrams to write.
FLUSH_INTERVAL = 0.05
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
    except (KeyError, IndexError, ValueError) as error:
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


class PacketCapture:
    """Writes the datagrams it is given to a pcap file, off the caller's
    thread. Share one between endpoints, or let each owner open its own."""

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
        #: Datagrams written, and those lost because the writer fell behind.
        self.written = 0
        self.dropped = 0
        #: Files started so far (1 + rotations).
        self.opened = 0
        self._pending: deque[tuple[int, Address, Address, bytes]] = deque()
        self._framer = Framer()
        self._file = self._open()  # a bad path fails here, in the caller
        self._in_file = 0
        self._bytes = FILE_HEADER_SIZE
        self._closed = False
        self._wake = threading.Event()
        self._log = log.bind(capture=str(self.path))
        self._thread = threading.Thread(
            target=self._run, name=f"capture-{self.path.name}", daemon=True
        )
        self._thread.start()

    # -- the hot path ----------------------------------------------------------

    def add(self, source: Address, destination: Address, data: Datagram) -> None:
        """Note one datagram (copied: a sender may reuse its buffer)."""
        pending = self._pending
        if len(pending) < self.max_pending and not self._closed:
            pending.append((time.time_ns(), source, destination, bytes(data)))
        else:
            self.dropped += 1

    def add_received(
        self, local: Address, datagrams: list[tuple[bytes, Address]]
    ) -> None:
        """Note a burst of received datagrams (one clock reading)."""
        pending = self._pending
        if len(pending) + len(datagrams) > self.max_pending or self._closed:
            self.dropped += len(datagrams)
            return
        now = time.time_ns()
        append = pending.append
        for data, sender in datagrams:
            append((now, sender, local, data))

    # -- the writer --------------------------------------------------------------

    def _run(self) -> None:
        wake = self._wake
        while not self._closed:
            wake.wait(self._interval)
            self._write_pending()
        self._write_pending()
        self._file.close()

    def _write_pending(self) -> None:
        pending, record = self._pending, self._framer.record
        parts: list[bytes] = []
        size = 0
        while True:
            try:
                stamp, source, destination, data = pending.popleft()
            except IndexError:
                break
            if self._in_file and (
                self._bytes + 32 + len(data) + 42 > self.max_bytes
                or (self.max_packets is not None and self._in_file >= self.max_packets)
            ):
                self._file.write(b"".join(parts))
                parts, size = [], 0
                self._rotate()
            item = record(stamp, source, destination, data)
            parts += item
            grown = len(item[0]) + len(item[1]) + len(data)
            size += grown
            self._bytes += grown
            self._in_file += 1
            self.written += 1
        if parts:
            try:
                self._file.write(b"".join(parts))
                self._file.flush()
            except OSError as error:  # a full disk: say so, keep the sender going
                self._log.warning("capture.write_failed", error=str(error))

    def _open(self) -> BinaryIO:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        file = open(self.path, "wb", buffering=1 << 20)  # noqa: SIM115 - closed in _run
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

    # -- lifetime ------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Write what is waiting, close the file and join the writer."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
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


class CapturingEndpoint:
    """An endpoint that hands a copy of every datagram to a capture, as
    it went on the wire (wrap it inside any fault injector)."""

    def __init__(self, inner: DatagramEndpoint, capture: PacketCapture) -> None:
        self.inner = inner
        self.capture = capture

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
        self.capture.add(self.inner.address, address, data)

    def receive_from(self, timeout: float | None) -> tuple[bytes, Address]:
        data, sender = self.inner.receive_from(timeout)
        self.capture.add(sender, self.inner.address, data)
        return data, sender

    def receive_waiting(self, limit: int) -> list[tuple[bytes, Address]]:
        out = self.inner.receive_waiting(limit)
        if out:
            self.capture.add_received(self.inner.address, out)
        return out

    def wait_readable(self, timeout: float) -> bool:
        return self.inner.wait_readable(timeout)

    def close(self) -> None:
        self.inner.close()

    def __repr__(self) -> str:
        return f"CapturingEndpoint({self.inner!r}, {self.capture!r})"
