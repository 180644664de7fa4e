"""connect(): one board gives a Client, many boards a Machine.

It lives above both, so that neither the one-board client nor the
placement of many boards needs to know about the other.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any, overload

from actors.board.client import Client
from actors.placement.machine import Machine
from transport.connections.scamp import SCP_SCAMP_PORT


@overload
def connect(host: str, port: int = SCP_SCAMP_PORT, **options: Any) -> Client: ...


@overload
def connect(
    host: Sequence[Any] | Mapping[Hashable, Any],
    port: int = SCP_SCAMP_PORT,
    **options: Any,
) -> Machine: ...


def connect(
    host: str | Sequence[Any] | Mapping[Hashable, Any],
    port: int = SCP_SCAMP_PORT,
    **options: Any,
) -> Client | Machine:
    """A Client for the board at ``host:port``; use it as a context manager.

    Options: window, timeout, retries, rto_floor, limiter, local_host,
    connected, endpoint, capture (a pcap file of every datagram; see
    Client).

    Given many boards instead (a list of hosts, (host, port) pairs or
    VirtualBoards, or a mapping of names to them), a Machine that spreads
    them over ``workers`` processes (default: one per core; 0 keeps them in
    this process) or, with ``placement="ray"``, Ray actors; ``port`` is
    then the default for boards given as bare hosts.
    """
    if isinstance(host, str):
        return Client(host, port, **options)
    if port != SCP_SCAMP_PORT and not isinstance(host, Mapping):
        host = [(board, port) if isinstance(board, str) else board for board in host]
    return Machine(host, **options)
