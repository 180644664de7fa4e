"""Packet capture: every datagram an endpoint sends and receives, to pcap.

The sender's thread makes each datagram's pcap record (a cached frame
header per link and length, transport/capture/pcap.py) and appends it to a
list; a writer thread takes what is there every ``FLUSH_INTERVAL`` and
writes it out (transport/capture/file.py), and a file write lets the
interpreter's lock go, so the writer costs the connection almost nothing
(framing in the writer, in bulk, took a fifth of the process's time and
stalled the connection while it held the lock). A capture is bounded: at
most ``max_bytes`` or ``max_packets`` per file, then the file rotates
(``x.pcap`` -> ``x.pcap.1`` -> ...; ``files`` are kept), and at most
``max_pending_bytes`` of records wait for the writer (more are counted
in ``dropped``, never block the sender). A capture fails without harm:
what the writer cannot write is counted (``write_errors``, ``dropped``),
logged at most once per ``WARN_INTERVAL``, and it goes on when it can.
``close`` writes what is left and joins the writer. A capture read while
it runs is at most ``flush_interval`` behind (``flush`` waits for it).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Union

from messages.errors import InvalidArgumentError
from transport.capture.file import PcapFile
from transport.capture.pcap import FRAME_OVERHEAD, RECORD_HEADER_SIZE, STAMP, Link
from transport.links.endpoint import Address, Datagram
from transport.logs import get_logger

log = get_logger(__name__)

_now = time.time_ns
_stamp = STAMP.pack
#: How long close waits for the writer (a stream's reader included).
_CLOSE_TIMEOUT = 10.0
_NANOS = 1_000_000_000
#: Address pairs a LinkBook keeps (a board hears from few hosts).
_LINKS_KEPT = 1024
#: What a waiting record holds besides its bytes: a bytes object's header
#: and its slot in the list.
_OBJECT_COST = sys.getsizeof(b"") + 8

#: How often the writer takes what has piled up.
FLUSH_INTERVAL = 0.02
#: Default bounds: per file, files kept, and the bytes waiting.
MAX_BYTES = 64 << 20
FILES = 4
MAX_PENDING_BYTES = 64 << 20
#: What one datagram waiting for the writer counts against
#: ``max_pending_bytes`` besides its own length: its pcap record's and
#: frame's headers and Python's object, so the bound is the memory.
RECORD_COST = RECORD_HEADER_SIZE + FRAME_OVERHEAD + _OBJECT_COST

#: What ``capture=`` takes: a file (or a template with {host} and
#: {port}, or a directory), or a PacketCapture to share.
CaptureTarget = Union[str, "os.PathLike[str]", "PacketCapture"]
#: Where a connection records its datagrams: a capture, or each of several
#: (one exchange that concerns boards with captures of their own).
Captures = Union["PacketCapture", "Sequence[PacketCapture]"]


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


class PacketCapture:
    """Writes the datagrams it is given to a pcap file, off the caller's
    thread. Share one between endpoints (of any threads), or let each
    owner open its own."""

    #: RECORD_COST, for a tapped socket's inlined add (transport/links/endpoint.py).
    record_cost: ClassVar[int] = RECORD_COST

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_bytes: int = MAX_BYTES,
        max_packets: int | None = None,
        files: int = FILES,
        max_pending_bytes: int = MAX_PENDING_BYTES,
        flush_interval: float = FLUSH_INTERVAL,
    ) -> None:
        _check_bounds(max_bytes, max_packets, files, max_pending_bytes)
        self.path = Path(path)
        self.max_bytes, self.max_packets = max_bytes, max_packets
        self.files, self.max_pending_bytes = files, max_pending_bytes
        self._interval = flush_interval
        #: The writer thread's CPU seconds (known once closed).
        self.writer_seconds = 0.0
        #: Records not yet taken by the writer. Senders append and add
        #: what each costs to _added; the writer takes them, adds what it
        #: took to _taken and moves _limit (-1 once closed): a sender adds
        #: while _added < _limit. No lock: a list's append, slice and del
        #: each hold the interpreter's lock, and each counter has one
        #: side writing it (senders of several threads share _added; its
        #: += makes no call, where CPython would switch threads, and a
        #: lost update would only loosen the bound by a datagram).
        self._records: list[bytes] = []
        self._added = self._taken = 0
        self._limit = max_pending_bytes
        #: Datagrams refused because too much was waiting (or after close).
        self._overflow = 0
        self._flushes: list[threading.Event] = []
        self._closed = False
        self._wake = threading.Event()
        self._log = log.bind(capture=str(self.path))
        # Opened here: a bad path fails in the caller, at once.
        self._file = PcapFile(self.path, max_bytes, max_packets, files, self._log)
        self._thread = threading.Thread(
            target=self._run, name=f"capture-{self.path.name}", daemon=True
        )
        self._thread.start()

    # -- what it has done ----------------------------------------------------------

    @property
    def written(self) -> int:
        """Datagrams written."""
        return self._file.written

    @property
    def dropped(self) -> int:
        """Datagrams lost: too many bytes waiting for the writer, given
        after close, or not written because writing failed."""
        return self._overflow + self._file.lost

    @property
    def write_errors(self) -> int:
        """Failed opens, writes and rotations (each logged, rate-limited)."""
        return self._file.write_errors

    @property
    def opened(self) -> int:
        """Files started (1 + rotations), or opens of a stream."""
        return self._file.opened

    @property
    def pending_bytes(self) -> int:
        """What waits for the writer, as ``max_pending_bytes`` counts it."""
        return self._added - self._taken

    @property
    def stream(self) -> bool:
        """Whether the path is written as a stream (a FIFO, a device)."""
        return self._file.stream

    # -- the hot path ----------------------------------------------------------

    @staticmethod
    def links(local: Address) -> LinkBook:
        """A book of the links to and from ``local``, for an endpoint."""
        return LinkBook(local)

    def add(self, link: Link, data: Datagram) -> None:
        """Record one datagram that went ``link``'s way, now."""
        if self._added < self._limit:
            length = len(data)
            head = link.heads.get(length) or link.head(length)
            self._records.append(_stamp(*divmod(_now(), _NANOS)) + head + data)
            self._added += length + RECORD_COST
        else:
            self._overflow += 1

    def add_burst(
        self, links: LinkBook, datagrams: list[tuple[bytes, Address]]
    ) -> None:
        """Record a burst of received datagrams (one clock reading; the
        burst goes in whole while the bound is not reached)."""
        if self._added >= self._limit:
            self._overflow += len(datagrams)
            return
        stamp = _stamp(*divmod(_now(), _NANOS))
        inbound, append = links.inbound, self._records.append
        added = 0
        for data, sender in datagrams:
            link = inbound(sender)
            length = len(data)
            append(stamp + (link.heads.get(length) or link.head(length)) + data)
            added += length + RECORD_COST
        self._added += added

    # -- the writer --------------------------------------------------------------

    def _run(self) -> None:
        wake = self._wake
        started = time.thread_time()
        try:
            while not self._closed:
                wake.wait(self._interval)
                wake.clear()
                self._write_pending()
            self._write_pending()
        finally:
            self._file.close()
            for done in self._flushes:
                done.set()
            self.writer_seconds = time.thread_time() - started

    def _write_pending(self) -> None:
        flushes = self._flushes[:]
        del self._flushes[: len(flushes)]
        records = self._records
        count = len(records)
        if count:
            batch = records[:count]
            del records[:count]  # (what came meanwhile stays)
            size = sum(map(len, batch))
            file = self._file
            before = file.written + file.lost
            try:
                file.write(batch, size)  # the file write lets the GIL go
            except Exception as error:  # noqa: BLE001 - the writer must go on
                file.give_up(before + count - file.written - file.lost, error)
            # Room for more once these are out (the bound holds while writing).
            self._taken += size + _OBJECT_COST * count
            self._limit = self._taken + self.max_pending_bytes
            if self._closed:
                self._limit = -1
        for done in flushes:
            done.set()

    # -- lifetime ------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the datagrams recorded before this call are written
        (or counted lost): read the file after it and they are there.
        False if that took longer than ``timeout`` seconds."""
        done = threading.Event()
        self._flushes.append(done)
        self._wake.set()
        if self._closed:  # the writer's last round may be past: wait for its end
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return done.wait(timeout)

    def close(self) -> None:
        """Write what is waiting, close the file and join the writer (a
        stream's reader that takes nothing is given up on first)."""
        if self._closed:
            return
        self._closed = True
        self._limit = -1
        self._file.give_up_at = time.monotonic() + _CLOSE_TIMEOUT / 2
        self._wake.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=_CLOSE_TIMEOUT)
        say = self._log.warning if self.write_errors else self._log.debug
        say(
            "capture.closed", written=self.written, dropped=self.dropped,
            write_errors=self.write_errors, files=self.opened,
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


def each_capture(capture: Captures | None) -> tuple[PacketCapture, ...]:
    """The captures a connection's ``capture=`` names (none, one, several)."""
    if capture is None:
        return ()
    if isinstance(capture, PacketCapture):
        return (capture,)
    return tuple(capture)


def _check_bounds(
    max_bytes: int, max_packets: int | None, files: int, max_pending_bytes: int
) -> None:
    if not isinstance(max_bytes, int) or max_bytes < 1024:
        raise InvalidArgumentError("max_bytes", max_bytes, "must be >= 1024")
    if max_packets is not None and (
        not isinstance(max_packets, int) or max_packets < 1
    ):
        raise InvalidArgumentError("max_packets", max_packets, "must be >= 1")
    if not isinstance(files, int) or files < 1:
        raise InvalidArgumentError("files", files, "must be >= 1")
    if not isinstance(max_pending_bytes, int) or max_pending_bytes < 1:
        raise InvalidArgumentError(
            "max_pending_bytes", max_pending_bytes, "must be >= 1"
        )


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
