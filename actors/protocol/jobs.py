"""Jobs: what callers ask a connection for, and the one outcome each gets.

A job is plain, picklable data (a single SCP request, or a read or write of
any length) so that it can cross to another thread, process or host;
runs.py turns one into window Requests.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from messages.scp.base import AbstractSCPRequest
from messages.scp.bulk import check_transfer


@dataclass(frozen=True)
class Outcome:
    """How a job ended: ``value`` (None for a write) or ``error``."""

    key: Hashable
    value: Any = None
    error: BaseException | None = None
    resends: int = 0
    retry_code_resent: int = 0
    timeouts: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None


class OutcomeSink(Protocol):
    """Where a connection delivers outcomes, a batch at a time (a
    queue.SimpleQueue will do)."""

    def put(self, item: list[Outcome], /) -> None: ...


def deliver(outcomes: Iterable[tuple[OutcomeSink, Outcome]]) -> None:
    """Hand each sink its outcomes, all in one batch."""
    batches: dict[int, tuple[OutcomeSink, list[Outcome]]] = {}
    for sink, outcome in outcomes:
        batches.setdefault(id(sink), (sink, []))[1].append(outcome)
    for sink, batch in batches.values():
        sink.put(batch)


def with_errors(
    outcomes: Iterable[tuple[OutcomeSink, Outcome]],
    remake: Callable[[BaseException], BaseException],
) -> list[tuple[OutcomeSink, Outcome]]:
    """The outcomes, each error replaced by ``remake(error)``."""
    return [
        (sink, outcome)
        if outcome.error is None
        else (sink, replace(outcome, error=remake(outcome.error)))
        for sink, outcome in outcomes
    ]


@dataclass(frozen=True)
class SCPJob:
    """One SCP request; the outcome's value is the raw reply datagram,
    which the caller parses with ``request.get_scp_response()``.

    ``datagram`` is the request as its connection made it (SpiNNMan's
    ``get_scp_data``: padding included, sequence 0), None to have it made
    from the request. ``check_reply`` False hands every RC_OK reply to the
    caller as it came, even one the request's response cannot parse (see
    actors/compat/foreign.py); True takes such a reply as a loss.
    """

    key: Hashable
    request: AbstractSCPRequest[Any]
    timeout: float | None = None
    datagram: bytes | None = None
    check_reply: bool = True


@dataclass(frozen=True)
class ReadJob:
    """``length`` bytes from ``address`` on core (x, y, p); the outcome's
    value is a bytearray of them."""

    key: Hashable
    x: int
    y: int
    p: int
    address: int
    length: int
    timeout: float | None = None

    def __post_init__(self) -> None:
        check_transfer(self.x, self.y, self.p, self.address, self.length)


@dataclass(frozen=True)
class WriteJob:
    """``data`` to ``address`` on core (x, y, p)."""

    key: Hashable
    x: int
    y: int
    p: int
    address: int
    data: bytes
    timeout: float | None = None

    def __post_init__(self) -> None:
        check_transfer(self.x, self.y, self.p, self.address, len(self.data))


Job = SCPJob | ReadJob | WriteJob


def written_span(job: Job) -> tuple[tuple[int, int], int, int] | None:
    """The chip and [start, end) of the memory ``job`` writes, if any: the
    range its write fence claims."""
    if isinstance(job, WriteJob):
        if not job.data:
            return None
        return (job.x, job.y), job.address, job.address + len(job.data)
    if isinstance(job, SCPJob):
        written = job.request.memory_written
        if written is not None:
            x, y, address, length = written
            return (x, y), address, address + length
    return None
