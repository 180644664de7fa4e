"""Job runs: a job turned into window Requests, and its one Outcome.

Inside the connection actor a job is run by a JobRun, which turns it into
Requests lazily (a 64 MiB read is 262,144 of them), assembles the replies
and reports exactly one Outcome. A run remembers which of its pieces are
done, so that after a restart it asks only for the rest.
"""

from __future__ import annotations

import struct
from typing import Any

from actors.errors import RequestError, reworded
from actors.protocol.jobs import Job, Outcome, OutcomeSink, ReadJob, SCPJob, WriteJob
from actors.protocol.requests import Request
from messages.errors import MalformedDatagramError, UnexpectedResponseCodeError
from messages.scp.bulk import ChunkBuilder
from messages.scp.enums import SCPResult
from messages.scp.layout import (
    ARGUMENTS_OFFSET,
    REPLY_DATA_OFFSET,
    RESULT,
    RESULT_OFFSET,
    SDP_OFFSET,
    parse_reply,
    request_datagram,
)
from messages.validate import MAX_SCP_DATA

_RC_OK = SCPResult.RC_OK.value
#: A read or write datagram's address, its first argument.
_ADDRESS = struct.Struct("<I")
_FULL_REPLY = REPLY_DATA_OFFSET + MAX_SCP_DATA


class JobRun:
    """A job in progress inside a connection actor: the pieces it still has
    to ask for, the ones done, and its one Outcome when it ends."""

    __slots__ = (
        "job",
        "sink",
        "started",
        "deadline",
        "n_pieces",
        "ended",
        "_done",
        "_n_done",
        "_next",
        "_retry",
        "_resends",
        "_retry_code_resent",
        "_timeouts",
        "_outcome",
    )

    def __init__(self, job: Job, sink: OutcomeSink, now: float, n_pieces: int) -> None:
        self.job = job
        self.sink = sink
        self.started = now
        self.deadline = None if job.timeout is None else now + job.timeout
        self.n_pieces = n_pieces
        self.ended = False
        self._done = bytearray(n_pieces)
        self._n_done = 0
        #: The next piece never asked for yet, and pieces to ask again.
        self._next = 0
        self._retry: list[int] = []
        self._resends = self._retry_code_resent = self._timeouts = 0
        #: The outcome of a run that ended in the window's bulk lane.
        self._outcome: Outcome | None = None

    @staticmethod
    def of(job: Job, sink: OutcomeSink, now: float, source: tuple[int, int]) -> JobRun:
        """The run for ``job`` on a connection whose chip is ``source``."""
        if isinstance(job, ReadJob):
            return ReadRun(job, sink, now, source)
        if isinstance(job, WriteJob):
            return WriteRun(job, sink, now, source)
        return SCPRun(job, sink, now, source)

    @property
    def has_more(self) -> bool:
        return not self.ended and (bool(self._retry) or self._next < self.n_pieces)

    def take(self, wanted: int) -> list[Request]:
        """Up to ``wanted`` of the pieces still to ask for."""
        if self.ended:
            return []
        out: list[Request] = []
        retry = self._retry
        while retry and len(out) < wanted:
            out.append(self._request(retry.pop()))
        start = self._next
        stop = min(self.n_pieces, start + wanted - len(out))
        if stop > start:
            out += self._requests(start, stop)
            self._next = stop
        return out

    def take_span(self) -> tuple[int, int] | None:
        """All the pieces never asked for yet, as (start, stop), for the
        window's bulk lane; None if this run cannot use it (it has pieces
        to ask again first, a deadline, or is not a read or write)."""
        return None

    def take_outcome(self) -> Outcome:
        """The outcome of a run whose last piece the bulk lane took."""
        outcome = self._outcome
        assert outcome is not None
        self._outcome = None
        return outcome

    def restart(self) -> Outcome | None:
        """Ask again for every piece not done (the requests were lost with
        the window that held them); the Outcome if that cannot be done."""
        if not self.ended:
            # The pieces after the last one done are asked for afresh (a
            # read or write may then use the window's bulk lane again);
            # those missing before it, one by one.
            done, start = self._done, self._next
            while start and not done[start - 1]:
                start -= 1
            self._next = start
            self._retry = [index for index in range(start) if not done[index]][::-1]
        return None

    def complete(self, request: Request) -> Outcome | None:
        """Take a finished piece; the Outcome once the whole job ends."""
        index: int = request.key[1]  # type: ignore[index]
        if self.ended or self._done[index]:
            return None
        if request.sends > 1:
            self._resends += request.sends - 1
            self._retry_code_resent += request.retry_code_resent
        self._timeouts += request.timeouts
        if request.error is not None:
            return self._end(
                None,
                reworded(
                    request.error,
                    f"{self._piece_text(index)} seq={request.seq}: {request.error}",
                ),
            )
        reply = request.reply
        assert reply is not None
        error = self._use_reply(index, reply)
        if error is not None:
            return self._end(None, error)
        self._done[index] = 1
        self._n_done += 1
        if self._n_done == self.n_pieces:
            return self._end(self._value(), None)
        return None

    def finish_empty(self) -> Outcome:
        """The outcome of a job with no pieces (a read or write of 0 bytes)."""
        self._check_open()
        return self._end(self._value(), None)

    def fail(self, error: BaseException) -> Outcome:
        """End the job now with ``error`` (the connection is stopping)."""
        self._check_open()
        return self._end(None, error)

    def _check_open(self) -> None:
        if self.ended:
            raise RuntimeError(
                f"job {self.job.key!r} has already ended: "
                f"a second outcome would break the contract"
            )

    # -- what each kind of job does ----------------------------------------

    def _request(self, index: int) -> Request:
        raise NotImplementedError

    def _requests(self, start: int, stop: int) -> list[Request]:
        """Pieces start..stop-1 (a loop subclasses may make faster)."""
        return [self._request(index) for index in range(start, stop)]

    def _use_reply(self, index: int, reply: bytes) -> BaseException | None:
        """Use a piece's reply; an error if it says the job failed."""
        raise NotImplementedError

    def _value(self) -> Any:
        return None

    def _piece_text(self, index: int) -> str:
        raise NotImplementedError

    def _end(self, value: Any, error: BaseException | None) -> Outcome:
        self.ended = True
        self._done = bytearray()  # a 64 MiB read's is 256 KiB: let it go
        return Outcome(
            self.job.key,
            value,
            error,
            self._resends,
            self._retry_code_resent,
            self._timeouts,
        )


class SCPRun(JobRun):
    """One request; its raw reply is the value, parsed by the caller."""

    __slots__ = ("_datagram", "_reply_size", "_reply", "_sent")

    def __init__(
        self, job: SCPJob, sink: OutcomeSink, now: float, source: tuple[int, int]
    ) -> None:
        super().__init__(job, sink, now, 1)
        request = job.request
        if job.datagram is None:
            self._datagram = request_datagram(request, *source)
        else:  # made by the connection (SpiNNMan's get_scp_data)
            self._datagram = job.datagram
        payload = request.reply_size  # (without the padding)
        self._reply_size = None if payload is None else SDP_OFFSET + payload
        self._reply: bytes | None = None
        #: The last Request made of it: was it sent before a restart?
        self._sent: Request | None = None

    def _request(self, index: int) -> Request:
        job = self.job
        assert isinstance(job, SCPJob)
        self._sent = Request(
            (self, index),
            bytearray(self._datagram),
            may_resend=job.request.may_resend,
            deadline=self.deadline,
            reply_size=self._reply_size,
            check=(
                None
                if self._reply_size is not None or not job.check_reply
                else self._parses
            ),
        )
        return self._sent

    def _parses(self, reply: bytes) -> bool:
        """Whether an RC_OK reply parses as the request's response: one
        that does not is a loss, and the request is sent again."""
        job = self.job
        assert isinstance(job, SCPJob)
        try:
            parse_reply(job.request, reply)
        except (MalformedDatagramError, struct.error, ValueError, IndexError):
            return False
        return True

    def restart(self) -> Outcome | None:
        job = self.job
        assert isinstance(job, SCPJob)
        sent = self._sent is not None and self._sent.sends > 0
        if sent and not job.request.may_resend and not self.ended:
            return self._end(
                None,
                RequestError(
                    f"{job.request!r}: the connection restarted after it was "
                    f"sent; not sent again, as running it twice is not safe"
                ),
            )
        return super().restart()

    def _use_reply(self, index: int, reply: bytes) -> BaseException | None:
        self._reply = reply
        return None

    def _value(self) -> Any:
        return self._reply

    def _piece_text(self, index: int) -> str:
        job = self.job
        assert isinstance(job, SCPJob)
        x, y, p = job.request.destination
        return f"{type(job.request).__name__}({x},{y},{p})"


class MemoryRun(JobRun):
    """A read or write, split into 256-byte pieces."""

    __slots__ = ("_builder",)
    _operation = ("", "")

    def __init__(
        self,
        job: ReadJob | WriteJob,
        sink: OutcomeSink,
        now: float,
        source: tuple[int, int],
        length: int,
    ) -> None:
        super().__init__(job, sink, now, -(-length // MAX_SCP_DATA))
        self._builder = ChunkBuilder(job.x, job.y, job.p, *source)

    def take_span(self) -> tuple[int, int] | None:
        if self.ended or self._retry or self.deadline is not None:
            return None
        start, self._next = self._next, self.n_pieces
        return start, self.n_pieces

    def piece(self, index: int) -> tuple[bytearray, int]:
        """The datagram of piece ``index`` and its reply's length (a
        Bulk's: see Window)."""
        raise NotImplementedError

    def request(self, index: int) -> Request:
        return self._request(index)

    def accept(self, replies: list[tuple[int, bytes]]) -> bool:
        """RC_OK replies to pieces, as (index, reply); True once the job
        ended."""
        if self.ended:
            return False
        done = self._done
        for index, _ in replies:
            if not done[index]:
                done[index] = 1
                self._n_done += 1
        if self._n_done == self.n_pieces:
            self._outcome = self._end(self._value(), None)
            return True
        return False

    def _use_reply(self, index: int, reply: bytes) -> BaseException | None:
        (code,) = RESULT.unpack_from(reply, RESULT_OFFSET)
        if code == _RC_OK:
            return None
        operation, command = self._operation
        return UnexpectedResponseCodeError(
            f"{self._piece_text(index)}: {operation}", command, SCPResult(code)
        )

    def _piece_text(self, index: int) -> str:
        job = self.job
        assert isinstance(job, (ReadJob, WriteJob))
        kind = "read" if isinstance(job, ReadJob) else "write"
        return (
            f"{kind} at 0x{job.address + index * MAX_SCP_DATA:08x} on "
            f"{job.x},{job.y},{job.p}"
        )


class ReadRun(MemoryRun):
    """Replies are copied into one buffer as they come, in any order."""

    __slots__ = ("_buffer", "_view", "_address", "_length", "_full")
    _operation = ("read memory", "CMD_READ")

    def __init__(
        self, job: ReadJob, sink: OutcomeSink, now: float, source: tuple[int, int]
    ) -> None:
        super().__init__(job, sink, now, source, job.length)
        self._buffer: bytearray | None = bytearray(job.length)
        #: The buffer as accept() writes it: a slice of a memoryview takes
        #: a reply's bytes at half the cost of a bytearray's (released when
        #: the run ends: the caller's bytearray must be free to resize).
        self._view: memoryview | None = memoryview(self._buffer)
        self._address = job.address
        self._length = job.length
        #: A full piece's datagram (its address the job's first).
        self._full = self._builder.read(job.address, MAX_SCP_DATA)

    def _request(self, index: int) -> Request:
        start = index * MAX_SCP_DATA
        size = min(MAX_SCP_DATA, self._length - start)
        return Request(
            (self, index),
            self._builder.read(self._address + start, size),
            deadline=self.deadline,
            reply_size=REPLY_DATA_OFFSET + size,
        )

    def _requests(self, start: int, stop: int) -> list[Request]:
        # The hot loop of a large read: one datagram and Request a piece.
        read, address, length = self._builder.read, self._address, self._length
        deadline = self.deadline
        full = REPLY_DATA_OFFSET + MAX_SCP_DATA
        out: list[Request] = []
        append = out.append
        for index in range(start, stop):
            offset = index * MAX_SCP_DATA
            size = length - offset
            if size >= MAX_SCP_DATA:
                append(
                    Request(
                        (self, index),
                        read(address + offset, MAX_SCP_DATA),
                        True,
                        deadline,
                        full,
                    )
                )
            else:
                append(
                    Request(
                        (self, index),
                        read(address + offset, size),
                        True,
                        deadline,
                        REPLY_DATA_OFFSET + size,
                    )
                )
        return out

    def piece(self, index: int) -> tuple[bytearray, int]:
        start = index * MAX_SCP_DATA
        if self._length - start >= MAX_SCP_DATA:
            # Every full piece differs from the first only in its address.
            datagram = self._full[:]
            _ADDRESS.pack_into(datagram, ARGUMENTS_OFFSET, self._address + start)
            return datagram, _FULL_REPLY
        size = self._length - start
        return (
            self._builder.read(self._address + start, size),
            REPLY_DATA_OFFSET + size,
        )

    def accept(self, replies: list[tuple[int, bytes]]) -> bool:
        # The hot path of a large read: the window's bulk lane.
        view = self._view
        if self.ended or view is None:
            return False
        done = self._done
        n_done = self._n_done
        for index, reply in replies:
            if not done[index]:
                start = index * MAX_SCP_DATA
                view[start : start + len(reply) - REPLY_DATA_OFFSET] = reply[
                    REPLY_DATA_OFFSET:
                ]
                done[index] = 1
                n_done += 1
        self._n_done = n_done
        if n_done == self.n_pieces:
            self._outcome = self._end(self._buffer, None)
            return True
        return False

    def complete(self, request: Request) -> Outcome | None:
        # A first-try RC_OK piece that went the general way.
        reply = request.reply
        if (
            request.sends == 1
            and reply is not None
            and not self.ended
            and reply[RESULT_OFFSET] == _RC_OK
            and not reply[RESULT_OFFSET + 1]
        ):
            index: int = request.key[1]  # type: ignore[index]
            done = self._done
            if not done[index]:
                start = index * MAX_SCP_DATA
                assert self._buffer is not None
                self._buffer[start : start + len(reply) - REPLY_DATA_OFFSET] = (
                    memoryview(reply)[REPLY_DATA_OFFSET:]
                )
                done[index] = 1
                self._n_done += 1
                if self._n_done == self.n_pieces:
                    return self._end(self._buffer, None)
                return None
        return super().complete(request)

    def _use_reply(self, index: int, reply: bytes) -> BaseException | None:
        if reply[RESULT_OFFSET] != _RC_OK or reply[RESULT_OFFSET + 1]:
            return super()._use_reply(index, reply)
        start = index * MAX_SCP_DATA
        assert self._buffer is not None
        self._buffer[start : start + len(reply) - REPLY_DATA_OFFSET] = memoryview(
            reply
        )[REPLY_DATA_OFFSET:]
        return None

    def _value(self) -> Any:
        return self._buffer

    def _end(self, value: Any, error: BaseException | None) -> Outcome:
        if self._view is not None:
            self._view.release()
            self._view = None
        outcome = super()._end(value, error)
        self._buffer = None
        return outcome


class WriteRun(MemoryRun):
    __slots__ = ("_data", "_address")
    _operation = ("write to memory", "CMD_WRITE")

    def __init__(
        self, job: WriteJob, sink: OutcomeSink, now: float, source: tuple[int, int]
    ) -> None:
        super().__init__(job, sink, now, source, len(job.data))
        self._data = memoryview(job.data)
        self._address = job.address

    def _request(self, index: int) -> Request:
        return Request((self, index), self.piece(index)[0], deadline=self.deadline)

    def piece(self, index: int) -> tuple[bytearray, int]:
        start = index * MAX_SCP_DATA
        return self._builder.write(
            self._address + start, self._data[start : start + MAX_SCP_DATA]
        ), 0
