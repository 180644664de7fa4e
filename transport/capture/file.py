"""The writing half of a capture: a pcap file that rotates, or a stream,
and what happens when the disk, the reader or the path fails.

Only whole records reach a file: a write cut short (a full disk) is cut
back to the last whole record with ftruncate, and a file whose header
cannot be written is removed, so every file read_packets and tshark open
is valid to its end. A failure never ends the writer: it is counted
(``write_errors``; the datagrams it lost in ``lost``), logged at most once
per ``WARN_INTERVAL`` (saying how many were held back) and the next batch
tries again: the same file once there is room, the rotation or the open
that failed, a FIFO once a reader comes.

What the path is decides what is written (checked with lstat at each
open, then on the open descriptor):

- nothing yet, or a regular file: a capture file, created (or truncated)
  without following a link (O_NOFOLLOW), rotated at ``max_bytes`` or
  ``max_packets``. Rotation renames only regular files: ``x.pcap`` only
  while it is still the file this capture made, and the older ones up to
  the first free name (anything else at those names is left alone);
- a FIFO, a character device, or a link to one (``/dev/stdout``,
  ``/dev/fd/N`` of a pipe, ``>(tshark -i -)``): a stream, written as it
  is (never truncated, renamed or rotated; no size bound), a pcap header
  first at each open; a full pipe is waited for (at most until close
  gives up), a reader that went away is counted and the stream opened
  again (with a new header) when one comes;
- a link to a regular file: refused (InvalidArgumentError at the first
  open, a counted error later): a capture does not write through a link
  into someone else's file.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import select
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from messages.errors import InvalidArgumentError
from transport.capture.pcap import FILE_HEADER_SIZE, file_header

#: At most one warning per this many seconds while failures go on.
WARN_INTERVAL = 10.0
#: How long a stream's writer waits for room before it looks at the clock.
_POLL_MS = 100
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
#: Non-blocking: a FIFO with no reader fails at once (ENXIO), never hangs.
_STREAM_FLAGS = os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC


class Complaints:
    """Warnings at most once per ``interval``, each saying how many were
    held back since the last; and one line when things work again."""

    def __init__(
        self,
        log: Any,
        interval: float = WARN_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log, self._interval, self._clock = log, interval, clock
        self._quiet_until = -math.inf
        self._held = 0
        self._told = False

    def warn(self, event: str, **context: object) -> None:
        now = self._clock()
        if now < self._quiet_until:
            self._held += 1
            return
        self._log.warning(event, suppressed=self._held, **context)
        self._held, self._told = 0, True
        self._quiet_until = now + self._interval

    def resolved(self, event: str, **context: object) -> None:
        """Say that it works again, once after each warning."""
        if self._told:
            self._told = False
            self._log.info(event, **context)


class PcapFile:
    """Writes batches of whole pcap records to ``path`` (see the module's
    docstring for files, streams and failures). Opened here: a bad path
    raises at once, except a FIFO that has no reader yet."""

    def __init__(
        self,
        path: Path,
        max_bytes: int,
        max_packets: int | None,
        files: int,
        log: Any,
    ) -> None:
        self.path, self.max_bytes, self.files = path, max_bytes, files
        self.max_packets = max_packets
        #: Opens so far (files started, or a stream opened again).
        self.opened = 0
        #: Records written, records lost, and failed operations.
        self.written = 0
        self.lost = 0
        self.write_errors = 0
        #: Whether the path is written as a stream (never rotated).
        self.stream = False
        #: When a stream's writer stops waiting for its reader (close sets it).
        self.give_up_at = math.inf
        self._complaints = Complaints(log)
        self._failing = False
        self._fd: int | None = None
        #: The file this capture made (st_dev, st_ino): only it is rotated.
        self._identity: tuple[int, int] | None = None
        #: Bytes and records in the file; a cut left to make; a rotation due.
        self._size = self._in_file = 0
        self._dirty = self._rotate_due = False
        try:
            self._open()
        except OSError as error:
            if error.errno != errno.ENXIO:
                raise
            self._failed("capture.open_failed", error)  # a FIFO with no reader yet

    # -- a batch -------------------------------------------------------------------

    def write(self, records: list[bytes], size: int) -> None:
        """Write ``records`` (``size`` bytes in all), starting a new file
        where this one is full; what cannot be written is counted lost."""
        start = 0
        while start < len(records):
            if not self._ready():
                self.lost += len(records) - start
                return
            end = self._fit(records, start, size if start == 0 else None)
            if end == start:  # this file is full: the next one begins
                self._close_fd()
                self._rotate_due = True
                continue
            self._put(records[start:end])
            start = end

    def give_up(self, records: int, error: BaseException) -> None:
        """Count a batch lost to an error nobody foresaw (the writer goes on)."""
        self.lost += records
        self._failed("capture.writer_failed", error)

    def _fit(self, records: list[bytes], start: int, size: int | None) -> int:
        """Where the records that fit in this file end (at least one in an
        empty file, however large)."""
        if self.stream:
            return len(records)
        most = len(records)
        if self.max_packets is not None:
            most = min(most, start + self.max_packets - self._in_file)
        room = self.max_bytes - self._size
        if size is not None and most == len(records) and size <= room:
            return most
        end = start
        while end < most:
            room -= len(records[end])
            if room < 0 and (end > start or self._in_file):
                break
            end += 1
        return end

    def _put(self, chunk: list[bytes]) -> None:
        data = b"".join(chunk)
        done, error = self._emit(data)
        if error is None:
            self._took(len(chunk), len(data))
            if self._failing:
                self._failing = False
                self._complaints.resolved(
                    "capture.resumed", write_errors=self.write_errors, lost=self.lost
                )
            return
        whole = kept = 0
        for record in chunk:  # the whole records that made it stay
            if kept + len(record) > done:
                break
            kept += len(record)
            whole += 1
        self._took(whole, kept)
        self.lost += len(chunk) - whole
        if self.stream:  # a broken stream opens afresh, with a new header
            self._close_fd()
        else:
            self._dirty = True
            with contextlib.suppress(OSError):  # else _ready cuts before more goes
                self._cut()
        self._failed("capture.write_failed", error)

    def _took(self, records: int, size: int) -> None:
        self.written += records
        self._in_file += records
        self._size += size

    def _emit(self, data: bytes) -> tuple[int, OSError | None]:
        """Write ``data`` out: the bytes written, and the error that
        stopped it (a stream that is full is waited for)."""
        done = 0
        assert self._fd is not None
        try:
            with memoryview(data) as view:
                while done < len(view):
                    try:
                        written = os.write(self._fd, view[done:])
                    except BlockingIOError:
                        written = 0
                    if written:
                        done += written
                    elif self.stream:
                        self._await_room(self._fd)
                    else:
                        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError as error:
            return done, error
        return done, None

    def _await_room(self, fd: int) -> None:
        if time.monotonic() >= self.give_up_at:
            raise TimeoutError(
                errno.ETIMEDOUT, "the stream's reader took nothing before close"
            )
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        poller.poll(_POLL_MS)

    # -- opening, cutting back, rotating -----------------------------------------

    def _ready(self) -> bool:
        """Whether there is somewhere to write: a file cut back to its
        whole records, or a new file or stream opened (after the rotation
        that was due)."""
        event = "capture.write_failed"
        try:
            if self._dirty:
                self._cut()
            elif self._fd is None:
                if self._rotate_due:
                    event = "capture.rotate_failed"
                    self._shift()
                    self._rotate_due = False
                event = "capture.open_failed"
                self._open()
        except (OSError, InvalidArgumentError) as error:
            self._failed(event, error)
            return False
        return True

    def _open(self) -> None:
        mode = _mode(self.path)
        if mode is None or stat.S_ISREG(mode):
            self._begin_file()
        else:
            self._begin_stream()
        self.opened += 1
        self._size, self._in_file = FILE_HEADER_SIZE, 0

    def _begin_file(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, _FILE_FLAGS, 0o666)
        try:
            info = os.fstat(fd)
        except OSError:
            os.close(fd)
            raise
        identity = (info.st_dev, info.st_ino)
        try:
            self._begin(fd, stream=False)
        except OSError:  # not even a header: no file is left behind
            with contextlib.suppress(OSError):
                if _is(self.path, identity):
                    os.unlink(self.path)
            raise
        self._identity = identity

    def _begin_stream(self) -> None:
        fd = os.open(self.path, _STREAM_FLAGS)  # follows a link: /dev/stdout
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise InvalidArgumentError(
                "capture",
                str(self.path),
                f"is a link to the regular file {os.path.realpath(self.path)}: a "
                f"capture does not write through a link into a file (name the "
                f"file itself)",
            )
        self._begin(fd, stream=True)

    def _begin(self, fd: int, *, stream: bool) -> None:
        """Write the header to ``fd`` and keep it; close it if that fails."""
        self._fd, self.stream = fd, stream
        _, error = self._emit(file_header())
        if error is not None:
            self._fd = None
            os.close(fd)
            raise error

    def _cut(self) -> None:
        """Cut the file back to its whole records (what a failed write left)."""
        assert self._fd is not None
        os.ftruncate(self._fd, self._size)
        os.lseek(self._fd, self._size, os.SEEK_SET)
        self._dirty = False

    def _shift(self) -> None:
        """Move the files up by one name (x.pcap -> x.pcap.1 -> ...) up to
        the first free one, the last falling off; only regular files move,
        and x.pcap only while it is the file this capture made."""
        if not _is(self.path, self._identity):
            return
        names = [self.path, *(Path(f"{self.path}.{n}") for n in range(1, self.files))]
        top = 0
        for index in range(1, len(names)):
            mode = _mode(names[index])
            if mode is not None and not stat.S_ISREG(mode):
                break  # not ours to replace: the one below it is overwritten
            top = index
            if mode is None:
                break
        for index in range(top, 0, -1):
            os.replace(names[index - 1], names[index])

    # -- failures and the end ------------------------------------------------------

    def _failed(self, event: str, error: BaseException) -> None:
        self.write_errors += 1
        self._failing = True
        self._complaints.warn(
            event, error=str(error), write_errors=self.write_errors, lost=self.lost
        )

    def _close_fd(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError as error:  # a deferred write error (NFS)
                self._failed("capture.write_failed", error)

    def close(self) -> None:
        if self._dirty and self._fd is not None:
            try:
                self._cut()
            except OSError as error:
                self._failed("capture.write_failed", error)
        self._close_fd()


def _mode(path: Path) -> int | None:
    """The path's own mode (a link's, not its target's), None if nothing
    is there."""
    try:
        return os.lstat(path).st_mode
    except FileNotFoundError:
        return None


def _is(path: Path, identity: tuple[int, int] | None) -> bool:
    """Whether ``path`` is still the regular file ``identity`` names."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    return stat.S_ISREG(info.st_mode) and (info.st_dev, info.st_ino) == identity
