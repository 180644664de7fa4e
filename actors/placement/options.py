"""What a Machine refuses before anything starts: its boards' addresses,
its placement and the options it hands each board's Client, checked
alike wherever the boards would run, so that a mistake is one error at
once instead of a Client or a worker failing to start later.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import pykka

from actors.board.client import (
    check_client_options,
    check_local_host,
    client_options,
)
from actors.placement.groups import Placement
from actors.placement.wire import GROUP_OPTIONS
from messages.errors import InvalidArgumentError
from messages.validate import check_int
from transport.capture.writer import PacketCapture, names_each_board
from transport.connections.scamp import SCP_SCAMP_PORT
from transport.links.endpoint import UDPEndpoint

#: A board: "host", (host, port), or anything with an ``address`` (a
#: VirtualBoard).
BoardAddress = Any


def _check_capture(capture: Any, boards: int, workers: int | None) -> None:
    """A capture must give each board a file of its own (or, in this
    process, may be one PacketCapture that they share)."""
    if capture is None:
        return
    if isinstance(capture, PacketCapture):
        if workers != 0:
            raise InvalidArgumentError(
                "capture",
                capture,
                "a PacketCapture cannot cross to a worker: give a file "
                "template with {host} and {port}, or a directory",
            )
        return
    if boards > 1 and not names_each_board(capture):
        raise InvalidArgumentError(
            "capture",
            capture,
            "several boards would write one file: give a template with "
            "{host} and {port}, or a directory",
        )


def board_addresses(
    boards: Sequence[BoardAddress] | Mapping[Any, BoardAddress],
) -> dict[Hashable, tuple[str, int]]:
    """Board name -> (host, port): names are the positions in a sequence,
    or the keys of a mapping."""
    items = (
        list(boards.items()) if isinstance(boards, Mapping) else list(enumerate(boards))
    )
    if not items:
        raise InvalidArgumentError("boards", boards, "needs at least one")
    out: dict[Hashable, tuple[str, int]] = {}
    for name, board in items:
        address = getattr(board, "address", board)
        if isinstance(address, str):
            address = (address, SCP_SCAMP_PORT)
        if (
            not isinstance(address, tuple)
            or len(address) != 2
            or not isinstance(address[0], str)
            or not isinstance(address[1], int)
        ):
            raise InvalidArgumentError(
                f"board {name!r}",
                board,
                "must be a host, (host, port) or have an address",
            )
        out[name] = (address[0], address[1])
    return out


#: What a Machine gives each board's Client itself, not an option.
_SET_BY_MACHINE = frozenset({"host", "port", "supervisor", "board_name"})


def check_placement(
    workers: int | None,
    placement: Placement,
    addresses: Mapping[Hashable, tuple[str, int]],
    options: Mapping[str, Any],
) -> int:
    """Refuse a placement that cannot work before anything starts; the
    number of workers (default: one per core, 0 for in this process)."""
    _check_capture(options.get("capture"), len(addresses), workers)
    if workers is None:
        workers = os.cpu_count() or 1
    check_int("workers", workers, 0)
    if placement not in ("process", "ray"):
        raise InvalidArgumentError("placement", placement, 'must be "process" or "ray"')
    _check_option_names(options, workers)
    with _about(_MACHINE_WIDE):
        check_client_options(options)
        if not workers or placement == "process":  # (a Ray node may be elsewhere)
            check_local_host(options.get("local_host"))
    for name, (host, port) in addresses.items():
        with _about(f"board {name!r}"):
            check_int("port", port, 0, 65535)
        if workers:
            # (in this process each Client resolves its own host)
            UDPEndpoint.resolve_host(host)  # a bad name: an error here, now
    limiter = options.get("limiter")
    if workers and limiter is not None and not isinstance(limiter, pykka.ActorRef):
        # (in this process any Limiter will do)
        raise InvalidArgumentError(
            "limiter", limiter, "must be a RateLimiterActor's ActorRef"
        )
    return workers


#: What a Machine's option errors say of where they apply.
_MACHINE_WIDE = "an option of the Machine: the same for each of its boards"


@contextmanager
def _about(where: str) -> Iterator[None]:
    """An InvalidArgumentError raised inside again, saying which board it
    is about, or that the option is the Machine's, for all its boards."""
    try:
        yield
    except InvalidArgumentError as error:
        raise InvalidArgumentError(
            error.name, error.value, f"{error.reason} ({where})"
        ) from None


def _check_option_names(options: Mapping[str, Any], workers: int) -> None:
    """Each option is one the boards take where they are placed: else an
    InvalidArgumentError naming it, the same in this process or in
    workers for an option no Client takes."""
    takes = client_options() - _SET_BY_MACHINE
    crosses = GROUP_OPTIONS | {"limiter"}  # (the limiter stays here)
    for name in sorted(options):
        if name in takes and (not workers or name in crosses):
            continue
        if name in _SET_BY_MACHINE:
            reason = "is set by the Machine for each board, from boards"
        elif name in takes:
            reason = (
                f"cannot cross to a worker process (workers={workers}): a "
                f"worker's boards take only {sorted(crosses)}, plain data "
                f"that can cross; with workers=0 each board's Client takes it"
            )
        else:
            reason = (
                f"is not an option of a Machine or of its boards' Clients "
                f"(those take {sorted(takes)})"
            )
        raise InvalidArgumentError(name, options[name], reason)
