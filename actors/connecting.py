"""connect(): one board gives a Client, many boards a Machine.

It lives above both, so that neither the one-board client nor the
placement of many boards needs to know about the other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, overload

from actors.board.client import Client
from actors.boot.options import BootOptions
from actors.placement.machine import Machine
from transport.connections.scamp import SCP_SCAMP_PORT


@overload
def connect(
    host: str,
    port: int = SCP_SCAMP_PORT,
    *,
    boot: BootOptions | bool | Mapping[str, Any] = False,
    **options: Any,
) -> Client: ...


@overload
def connect(
    host: Sequence[Any] | Mapping[Any, Any],
    port: int = SCP_SCAMP_PORT,
    *,
    boot: BootOptions | bool | Mapping[str, Any] = False,
    **options: Any,
) -> Machine: ...


def connect(
    host: str | Sequence[Any] | Mapping[Any, Any],
    port: int = SCP_SCAMP_PORT,
    *,
    boot: BootOptions | bool | Mapping[str, Any] = False,
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

    ``boot`` (True, a BootOptions or a mapping of its options) brings the
    board, or every board, up before returning: booted if silent, never
    if it answers (Client.boot, Machine.boot); if that fails, everything
    is closed again and the BootError raised.
    """
    wanted = None if boot is False else BootOptions.of(boot)
    if isinstance(host, str):
        client = Client(host, port, **options)
        return client if wanted is None else _booted(client, wanted)
    if port != SCP_SCAMP_PORT and not isinstance(host, Mapping):
        host = [(board, port) if isinstance(board, str) else board for board in host]
    machine = Machine(host, **options)
    return machine if wanted is None else _booted(machine, wanted)


def _booted(board: Client | Machine, options: BootOptions) -> Any:
    """``board`` once booted; closed if it cannot be."""
    try:
        board.boot(options)
    except BaseException:
        board.close()
        raise
    return board
