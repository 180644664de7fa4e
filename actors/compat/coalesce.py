"""SpiNNMan's reads and writes of a large region, run as one transfer.

SpiNNMan's memory processes read and write memory as a stream of
256-byte ReadMemory and WriteMemory requests, one object, datagram,
callback and sequence number each. (Under install(), the Transceiver's
own transfers skip the stream: actors/compat/processes.py runs each as
one job. What still comes this way is what those leave to SpiNNMan, and
any other code's requests.) Sent one by one through the connection actor, each
costs the actor as much Python as SpiNNMan's own pipeline spends in all,
and the two threads then fight over the interpreter lock for every
datagram. So a pipeline gathers the requests SpiNNMan sends for one
contiguous region of one core (a Run) and hands them over as one ReadJob
or WriteJob, which the window sends through its bulk lane: pieces of 256
bytes, each with its own sequence number, timer and resend, writes fenced
as any other. Nothing is sent that SpiNNMan would not have sent.

Each request still gets its own callback, with a response of SpiNNMan's
own class, read from the same bytes a board's reply would have held:
the reply's headers (made here: RC_OK, from the core read) and that
request's share of the data.

When a run fails because the board never answered, every request in it
gets that failure, as SpiNNMan's pipeline fails each request against a
silent board. When it fails otherwise (a busy code that persisted, say),
each read in it is sent again on its own, so that each gets the outcome
SpiNNMan would have given it (reads may be repeated); each write in it
gets the failure (a write repeated after later writes to the same bytes
would undo them).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from actors.protocol.jobs import ReadJob, WriteJob
from messages.scp.base import monitor_command
from messages.scp.layout import HEAD, REQUEST_DATA_OFFSET
from messages.validate import MAX_SCP_DATA

#: The most requests one run gathers (SpiNNMan's 256 bytes each: 16 KiB):
#: callbacks wait for their whole run, and while the caller gathers the
#: next run (SpiNNMan's own Python, ~10 us a request) it holds the
#: interpreter lock the connection actor needs to keep a paced board fed:
#: short runs keep those stretches shorter than the board's queue (eight
#: requests, ~0.6 ms at a real board's pace).
RUN_LIMIT = 64
#: Where a write's data starts in its datagram: padding, SDP and SCP
#: headers, three arguments.
_WRITE_DATA = REQUEST_DATA_OFFSET
#: A reply's padding, SDP header (no reply expected, to the host from the
#: core) and SCP header (RC_OK, sequence 0).
_REPLY_HEAD = HEAD
_RC_OK = 0x80
_KINDS = {"CMD_READ": "read", "CMD_WRITE": "write"}


@dataclass(frozen=True)
class Span:
    """What one request reads or writes: on which core, where, how much."""

    kind: str
    core: tuple[int, int, int]
    address: int
    size: int


def span_of(request: Any) -> Span | None:
    """The memory a SpiNNMan ReadMemory or WriteMemory reads or writes;
    None for any other request (those go one by one)."""
    header = request.scp_request_header
    kind = _KINDS.get(monitor_command(header.command) or "")
    if kind is None:
        return None
    address, size = request.argument_1, request.argument_2
    if address is None or size is None or not 0 < size <= MAX_SCP_DATA:
        return None
    sdp = request.sdp_header
    core = (sdp.destination_chip_x, sdp.destination_chip_y, sdp.destination_cpu)
    return Span(kind, core, address, size)


@dataclass
class Run:
    """Requests for one contiguous region of one core, in address order:
    (pending key, size) each, and for writes the data of each."""

    key: Hashable
    kind: str
    core: tuple[int, int, int]
    start: int
    end: int
    members: list[tuple[int, int]] = field(default_factory=list)
    data: list[bytes] = field(default_factory=list)

    def takes(self, span: Span) -> bool:
        """Whether ``span`` carries on where this run ends."""
        return (
            span.kind == self.kind
            and span.core == self.core
            and span.address == self.end
            and len(self.members) < RUN_LIMIT
        )

    def add(self, key: int, span: Span, datagram: bytes | None) -> None:
        self.members.append((key, span.size))
        self.end += span.size
        if datagram is not None:
            self.data.append(datagram[_WRITE_DATA : _WRITE_DATA + span.size])

    def job(self) -> ReadJob | WriteJob:
        x, y, p = self.core
        if self.kind == "read":
            return ReadJob(self.key, x, y, p, self.start, self.end - self.start)
        return WriteJob(self.key, x, y, p, self.start, b"".join(self.data))

    def replies(self, value: Any) -> list[tuple[int, bytes]]:
        """(pending key, reply datagram) of each request: RC_OK, and for
        a read its share of ``value`` (the run's data)."""
        x, y, p = self.core
        head = _REPLY_HEAD.pack(0x07, 0xFF, 0xFF, (1 << 5) | p, 0, 0, y, x, _RC_OK, 0)
        if self.kind == "write":
            return [(key, head) for key, _ in self.members]
        out, offset = [], 0
        view = memoryview(value)
        for key, size in self.members:
            out.append((key, head + view[offset : offset + size]))
            offset += size
        return out


def start_run(key: Hashable, span: Span) -> Run:
    return Run(key, span.kind, span.core, span.address, span.address)
