"""SpiNNMan's memory processes, with whole reads and writes run on
spinnactors.

SpiNNMan's ReadMemoryProcess and WriteMemoryProcess (what
Transceiver.read_memory and write_memory, ExtendedTransceiver and
LoadMultiCastRoutesProcess use) make a SpiNNMan request per 256 bytes,
and read a SpiNNMan response back for each, on the caller's thread:
that Python, not the wire, sets SpiNNMan's pace. install() puts these
subclasses in their place. When the connection SpiNNMan's selector
chooses is one spinnactors drives through its socket (an unmodified
SCAMPConnection, SpiNNMan's or ours), a read or write of more than one
piece is one job on that connection's shared, supervised actor
(actors/compat/bulk.py): the same pieces on the wire, with no object per
piece. Everything else is SpiNNMan's own code (through the installed
pipeline): one piece or less, ReadLink and WriteLink, a connection that
must be driven through its own methods (a BMP's, a spalloc proxy's, a
subclass), a selector that may pick a connection per piece (only
MostDirectConnectionSelector and FixedConnectionSelector pick by chip),
and arguments SpiNNMan would treat oddly (data shorter than asked for).

SpiNNMan's contract is kept: the same return values (a bytearray; the
checksum computed as SpiNNMan computes it), the same exceptions,
raised the same way (the process's check_for_error: one failed piece a
SpinnmanGenericProcessException, more a SpinnmanGroupedProcessException,
each piece's exception SpiNNMan's own). A read the board never answered
fails each of its pieces with SpinnmanTimeoutException, as against a
silent board; a read that failed otherwise (a busy code that persisted,
an error code) is read again SpiNNMan's way, so each piece gets the
outcome SpiNNMan would give it. A write that failed fails each of its
pieces (a write repeated after later writes to the same bytes would undo
them), SpiNNMan's exception for it.

Only install() imports this module (through actors/compat/bridge.py).
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO

import numpy
from spinnman.constants import UDP_MESSAGE_MAX_SIZE
from spinnman.messages.scp.impl import ReadMemory, WriteMemory
from spinnman.processes import read_memory_process, write_memory_process
from spinnman.processes.fixed_connection_selector import FixedConnectionSelector
from spinnman.processes.most_direct_connection_selector import (
    MostDirectConnectionSelector,
)

from actors.compat.bulk import BulkTransfer, count
from actors.compat.foreign import spinnman_error
from actors.compat.pipeline import error_traceback, window_settings
from actors.errors import RequestTimeout
from actors.protocol.jobs import WriteJob
from messages.errors import InvalidArgumentError
from messages.scp.bulk import check_transfer
from transport.connections.driven import is_plain, spinnmans_socket

#: SpiNNMan's originals, as they were when this module was first imported.
ORIGINAL_READ = read_memory_process.ReadMemoryProcess
ORIGINAL_WRITE = write_memory_process.WriteMemoryProcess
#: Selectors that choose by the destination chip only, so one choice
#: holds for every piece of an operation.
_BY_CHIP = (MostDirectConnectionSelector, FixedConnectionSelector)
#: A write read from a file goes in jobs of this many bytes, at most this
#: many handed over at once (a file is not held in memory whole).
SEGMENT = 1 << 20
SEGMENTS_AHEAD = 4
_UNSIGNED_WORD = 0xFFFFFFFF


def _pieces(address: int, length: int) -> Iterator[tuple[int, int]]:
    """(address, size) of each request SpiNNMan makes for a transfer."""
    for offset in range(0, length, UDP_MESSAGE_MAX_SIZE):
        yield address + offset, min(UDP_MESSAGE_MAX_SIZE, length - offset)


def _write_pieces(
    coordinates: tuple[int, int, int],
    writes: list[tuple[int, bytes, BaseException]],
) -> Iterator[tuple[Any, BaseException]]:
    """SpiNNMan's WriteMemory for each piece of each (address, data,
    error) of ``writes``, with that error."""
    for start, data, error in writes:
        view = memoryview(data)
        for address, size in _pieces(start, len(data)):
            at = address - start
            yield WriteMemory(coordinates, address, bytes(view[at : at + size])), error


def _direct(connection: object) -> bool:
    """Whether spinnactors drives ``connection`` through its socket."""
    return is_plain(connection) or spinnmans_socket(connection) is not None


class _Bulk:
    """What both processes share (a mixin over SpiNNMan's process)."""

    __slots__ = ()
    # SpiNNMan's AbstractMultiConnectionProcess's, which this is mixed into.
    _conn_selector: Any
    _n_retries: int
    _timeout: float
    _n_channels: int
    _intermediate_channel_waits: int
    _non_fail_retry_codes: Any
    _exceptions: list[Exception]
    _receive_error: Any
    check_for_error: Any

    def _bulk_connection(
        self,
        probe: Callable[[], Any],
        coordinates: tuple[int, int, int],
        address: int,
        length: object,
    ) -> Any:
        """The connection to run a transfer of ``length`` bytes on as a
        whole (the one SpiNNMan's selector picks for ``probe()``, its
        first piece); None to leave it to SpiNNMan (as for arguments a
        job refuses: SpiNNMan sends them as they are)."""
        if not isinstance(length, int) or length <= UDP_MESSAGE_MAX_SIZE:
            return None
        if type(self._conn_selector) not in _BY_CHIP:
            return None
        try:
            check_transfer(*coordinates, address, length)
        except (InvalidArgumentError, TypeError):
            return None
        connection = self._conn_selector.get_next_connection(probe())
        return connection if _direct(connection) else None

    def _transfer(self, connection: Any) -> BulkTransfer:
        """A transfer with the settings SpiNNMan's pipeline for this
        process would have (so a lingering actor is reused as it is)."""
        settings = window_settings(
            self._n_channels,
            self._intermediate_channel_waits,
            self._n_retries,
            self._timeout,
            self._non_fail_retry_codes,
        )
        return BulkTransfer(connection, settings)

    def _fail(
        self, failures: Iterable[tuple[Any, BaseException]], connection: Any
    ) -> None:
        """Each of SpiNNMan's requests failed with its error: recorded as
        SpiNNMan's pipeline records it, raised as its process raises."""
        for request, error in failures:
            mapped = spinnman_error(error, request, self._timeout)
            assert isinstance(mapped, Exception)
            self._receive_error(request, mapped, error_traceback(mapped), connection)
        if self._exceptions:
            self.check_for_error()


class ReadMemoryProcess(_Bulk, ORIGINAL_READ):
    """SpiNNMan's ReadMemoryProcess; a read of more than one piece on a
    connection spinnactors drives is one ReadJob."""

    __slots__ = ()

    def read_memory(
        self, coordinates: tuple[int, int, int], base_address: int, length: int
    ) -> bytearray:
        connection = self._bulk_connection(
            lambda: ReadMemory(coordinates, base_address, UDP_MESSAGE_MAX_SIZE),
            coordinates,
            base_address,
            length,
        )
        if connection is not None:
            with self._transfer(connection) as transfer:
                transfer.read(*coordinates, base_address, length)
                (outcome,) = transfer.take()
            if outcome.error is None:
                count(reads=1, read_bytes=length)
                value = outcome.value
                return value if isinstance(value, bytearray) else bytearray(value)
            count(reads=1, failed=1)
            error = outcome.error
            if isinstance(error, RequestTimeout):
                self._fail(
                    (
                        (ReadMemory(coordinates, address, size), error)
                        for address, size in _pieces(base_address, length)
                    ),
                    connection,
                )
        count(handed_back=1)
        return super().read_memory(coordinates, base_address, length)


class WriteMemoryProcess(_Bulk, ORIGINAL_WRITE):
    """SpiNNMan's WriteMemoryProcess; a write of more than one piece on a
    connection spinnactors drives is one WriteJob (one a MiB, from a
    file)."""

    __slots__ = ()

    def write_memory_from_bytearray(
        self,
        coordinates: tuple[int, int, int],
        base_address: int,
        data: bytes,
        offset: int,
        n_bytes: int,
        get_sum: bool = False,
    ) -> int:
        connection = None
        if (
            isinstance(data, (bytes, bytearray))
            and isinstance(offset, int)
            and isinstance(n_bytes, int)
            and offset >= 0
            and offset + n_bytes <= len(data)
        ):
            connection = self._write_connection(coordinates, base_address, n_bytes)
        if connection is None:
            count(handed_back=1)
            return super().write_memory_from_bytearray(
                coordinates, base_address, data, offset, n_bytes, get_sum
            )
        if offset == 0 and n_bytes == len(data) and isinstance(data, bytes):
            payload = data
        else:
            payload = bytes(memoryview(data)[offset : offset + n_bytes])
        self._write(connection, coordinates, iter([(base_address, payload)]))
        if not get_sum:
            return 0
        # (SpiNNMan's sum: of all of ``data``, whatever part was written)
        np_data = numpy.array(data, dtype=numpy.uint8)
        np_sum = int(numpy.sum(np_data.view(numpy.uint32), dtype=numpy.uint32))
        return np_sum & _UNSIGNED_WORD

    def write_memory_from_reader(
        self,
        coordinates: tuple[int, int, int],
        base_address: int,
        reader: BinaryIO,
        n_bytes: int,
        get_sum: bool = False,
    ) -> int:
        connection = self._write_connection(coordinates, base_address, n_bytes)
        if connection is None:
            count(handed_back=1)
            return super().write_memory_from_reader(
                coordinates, base_address, reader, n_bytes, get_sum
            )
        segments = _Segments(reader, base_address, n_bytes, get_sum)
        self._write(connection, coordinates, iter(segments))
        if segments.left:
            # The reader ran dry early: the rest as SpiNNMan goes on.
            count(handed_back=1)
            rest: int = self._write_memory_from_reader(
                segments.address,
                reader,
                segments.left,
                functools.partial(WriteMemory, coordinates),
                get_sum,
            )
            return (segments.checksum + rest) & _UNSIGNED_WORD
        return segments.checksum

    def _write_connection(
        self, coordinates: tuple[int, int, int], base_address: int, n_bytes: int
    ) -> Any:
        """The connection to write ``n_bytes`` whole on (None: SpiNNMan's
        own pieces), as _bulk_connection decides for a WriteMemory."""
        return self._bulk_connection(
            lambda: WriteMemory(coordinates, base_address, b""),
            coordinates,
            base_address,
            n_bytes,
        )

    def _write(
        self,
        connection: Any,
        coordinates: tuple[int, int, int],
        segments: Iterator[tuple[int, bytes]],
    ) -> None:
        """Write each (address, data) of ``segments`` as a WriteJob, a few
        handed over at once; then raise as SpiNNMan would for the pieces
        of any that failed. An exception from ``segments`` (the reader's)
        is raised once what was read before it is written."""
        x, y, p = coordinates
        failed: list[tuple[int, bytes, BaseException]] = []
        written = 0
        with self._transfer(connection) as transfer:
            try:
                for address, data in segments:
                    transfer.write(x, y, p, address, data)
                    while len(transfer.open) >= SEGMENTS_AHEAD:
                        written += self._settle(transfer, failed)
            finally:
                while transfer.open:
                    written += self._settle(transfer, failed)
        count(writes=1, written_bytes=written, failed=1 if failed else 0)
        failed.sort(key=lambda entry: entry[0])
        self._fail(_write_pieces(coordinates, failed), connection)

    @staticmethod
    def _settle(
        transfer: BulkTransfer, failed: list[tuple[int, bytes, BaseException]]
    ) -> int:
        """Wait for outcomes; note the failed writes; the bytes written."""
        jobs = dict(transfer.open)
        written = 0
        for outcome in transfer.take():
            job = jobs[outcome.key]  # type: ignore[index]
            assert isinstance(job, WriteJob)
            if outcome.error is None:
                written += len(job.data)
            else:
                failed.append((job.address, job.data, outcome.error))
        return written


class _Segments:
    """A reader's bytes as (address, data) segments of up to SEGMENT
    bytes, read as SpiNNMan reads them (256 bytes a call) and summed as it
    sums them. ``left`` bytes were not read when the reader gave nothing;
    ``address`` is where they go."""

    def __init__(
        self, reader: BinaryIO, address: int, n_bytes: int, get_sum: bool
    ) -> None:
        self._reader = reader
        self._get_sum = get_sum
        self.address = address
        self.left = int(n_bytes)
        self.checksum = 0

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        while self.left > 0:
            start, buffer = self.address, io.BytesIO()
            dry, raised = False, None
            try:
                dry = self._fill(buffer)
            except Exception as error:  # noqa: BLE001 - raised after the write
                raised = error
            if buffer.tell():
                yield start, buffer.getvalue()
            if raised is not None:
                raise raised
            if dry:
                return

    def _fill(self, buffer: io.BytesIO) -> bool:
        """Read up to a segment into ``buffer``; whether the reader ran
        dry. A chunk is kept before it is summed: SpiNNMan sends it before
        its sum can raise."""
        while self.left > 0 and buffer.tell() < SEGMENT:
            chunk = self._reader.read(min(self.left, UDP_MESSAGE_MAX_SIZE))
            if not chunk:
                return True
            buffer.write(chunk)
            self.left -= len(chunk)
            self.address += len(chunk)
            if self._get_sum:
                self._add(chunk)
        return False

    def _add(self, chunk: bytes) -> None:
        np_data = numpy.frombuffer(chunk, dtype=numpy.uint8)
        np_sum = int(numpy.sum(np_data.view(numpy.uint32)))
        self.checksum = (self.checksum + np_sum) & _UNSIGNED_WORD
