"""What crosses between the parent and a board group: plain, picklable data.

Jobs and outcomes, stats, heartbeats, heard messages and rate-limit leases
cross a batch at a time, pickled (``encode``/``decode``); never sockets,
locks or callables.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

from actors.errors import RequestError
from actors.protocol.fences import Span
from actors.protocol.jobs import Job, Outcome
from messages.errors import InvalidArgumentError
from transport.connections.eieio import EIEIOConnection
from transport.connections.sdp import SDPConnection
from transport.links.endpoint import Address
from transport.logs import get_logger

log = get_logger(__name__)

#: What a listener can listen for, and the connection that hears it.
LISTEN_KINDS: Mapping[str, type[SDPConnection] | type[EIEIOConnection]] = {
    "sdp": SDPConnection,
    "eieio": EIEIOConnection,
}


#: How often a group says it is alive when it has nothing else to say.
HEARTBEAT = 0.1


#: Client options a group accepts (plain data, so they can cross).
GROUP_OPTIONS = frozenset(
    {
        "window",
        "timeout",
        "retries",
        "rto_floor",
        "local_host",
        "max_restarts",
        "period",
        "backoff",
        # A pcap file per board: a template with {host} and {port}, or a
        # directory (a plain string crosses to the worker).
        "capture",
    }
)


@dataclass(frozen=True)
class BoardSpec:
    """One board of a group: its name in the caller's machine, and where
    it answers."""

    name: Hashable
    host: str
    port: int


@dataclass(frozen=True)
class GroupSpec:
    """What a group needs to start: its boards and their Client options."""

    name: str
    boards: tuple[BoardSpec, ...]
    options: Mapping[str, Any] = field(default_factory=dict)
    #: Log records at this level and above go back to the parent's loggers.
    log_level: int = logging.WARNING
    #: The connections draw on the parent's rate limiter (RemoteLimiter).
    limited: bool = False

    def __post_init__(self) -> None:
        unknown = set(self.options) - GROUP_OPTIONS
        if unknown:
            raise InvalidArgumentError(
                "options",
                sorted(unknown),
                f"a board group takes only {sorted(GROUP_OPTIONS)} (plain "
                f"data that can cross to another process)",
            )


@dataclass(frozen=True)
class Post:
    """Run these jobs, each on its board (job keys are the parent's).

    ``fenced`` are write ranges, each on its board, that a lost worker may
    still have copies of on the wire: the board's connection fences them
    for its max_datagram_age before anything overlapping is written."""

    entries: list[tuple[Hashable, Job]]
    fenced: list[tuple[Hashable, Span]] = field(default_factory=list)


@dataclass(frozen=True)
class Cancel:
    """Give up on these jobs, each on its board (the parent's job keys):
    each not ended yet ends with Cancelled."""

    entries: list[tuple[Hashable, Hashable]]


@dataclass(frozen=True)
class GetGroupStats:
    """Ask for each board's ConnectionStats (``health``: its BoardHealth,
    all asked at once and waited for up to ``timeout`` seconds in all, so
    the answer is back before the parent's health check gives up)."""

    ticket: int
    health: bool = False
    timeout: float | None = None


@dataclass(frozen=True)
class Listen:
    """Open a UDP port for ``kind`` ("sdp" or "eieio") messages and send
    what arrives back as Heard."""

    listen_id: int
    kind: str
    local_host: str | None
    local_port: int | None


@dataclass(frozen=True)
class Unlisten:
    """Close a Listen's port."""

    listen_id: int


@dataclass(frozen=True)
class Stop:
    """Close every board's client and listener, then exit."""


@dataclass(frozen=True)
class Ready:
    pid: int


@dataclass(frozen=True)
class Outcomes:
    outcomes: list[Outcome]


@dataclass(frozen=True)
class Heartbeat:
    pass


@dataclass(frozen=True)
class GroupStats:
    ticket: int
    #: ConnectionStats or a text saying why none (BoardHealth if asked).
    stats: dict[Hashable, Any]


@dataclass(frozen=True)
class Listening:
    """Where a Listen's port is open (``error`` says why not)."""

    listen_id: int
    address: Address | None
    error: str | None = None


@dataclass(frozen=True)
class Heard:
    listen_id: int
    messages: list[Any]


@dataclass(frozen=True)
class LogRecords:
    """Log records of the group's loggers, as plain attribute dicts."""

    records: list[dict[str, Any]]


@dataclass(frozen=True)
class GroupFailed:
    """The group cannot go on (a board's supervisor gave up): the parent
    should restart it, as OTP escalates to the parent supervisor."""

    reason: str


def encode(messages: list[Any]) -> bytes:
    return pickle.dumps(messages, protocol=pickle.HIGHEST_PROTOCOL)


def decode(blob: bytes) -> list[Any]:
    messages = pickle.loads(blob)
    if not isinstance(messages, list):
        raise TypeError(
            f"a group message batch is a list, not {type(messages).__name__}"
        )
    return messages


def encode_outbound(messages: list[Any]) -> bytes:
    """encode(), but what will not pickle does not fail the whole batch: an
    outcome crosses as a RequestError that names it, a heard message that
    will not pickle is dropped (and logged), as is any other message."""
    try:
        return encode(messages)
    except Exception:  # noqa: BLE001 - any pickling failure
        return encode(
            [safe for message in messages if (safe := _picklable(message)) is not None]
        )


def _pickles(value: Any) -> bool:
    try:
        pickle.dumps(value)
    except Exception:  # noqa: BLE001 - any pickling failure
        return False
    return True


def _picklable(message: Any) -> Any:
    """``message`` with what will not pickle replaced or left out (None:
    nothing of it can cross)."""
    if isinstance(message, Outcomes):
        return Outcomes(
            [
                outcome
                if _pickles(outcome)
                else Outcome(
                    outcome.key,
                    error=RequestError(
                        f"the outcome could not cross back to the caller: "
                        f"{outcome.error!r}"
                    ),
                )
                for outcome in message.outcomes
            ]
        )
    if isinstance(message, Heard):
        kept = [heard for heard in message.messages if _pickles(heard)]
        if len(kept) < len(message.messages):
            log.warning(
                "group.heard_not_picklable", dropped=len(message.messages) - len(kept)
            )
        return Heard(message.listen_id, kept)
    if _pickles(message):
        return message
    log.warning("group.message_not_picklable", kind=type(message).__name__)
    return None


def _merged(batch: list[Any]) -> list[Any]:
    """The batch with all Heard of one listener, and all Outcomes, each
    merged into one message (fewer objects to pickle and unpickle)."""
    if len(batch) < 2:
        return batch
    out: list[Any] = []
    outcomes: list[Outcome] = []
    records: list[dict[str, Any]] = []
    heard: dict[int, list[Any]] = {}
    for message in batch:
        if isinstance(message, Outcomes):
            outcomes += message.outcomes
        elif isinstance(message, LogRecords):
            records += message.records
        elif isinstance(message, Heard):
            heard.setdefault(message.listen_id, []).extend(message.messages)
        else:
            out.append(message)
    if outcomes:
        out.append(Outcomes(outcomes))
    if records:
        out.append(LogRecords(records))
    out += [Heard(listen_id, messages) for listen_id, messages in heard.items()]
    return out
