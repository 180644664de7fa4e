"""Cold virtual boards on loopback for system tests: each on the first
127.0.0.x from a given one where port 54321 is free."""

from __future__ import annotations

import time
from typing import Any

from messages.boot import BootPlan, SystemVariableBootValues
from messages.scp import GetVersion
from messages.scp.version import VersionInfo
from tests.transport.loopback import first_free
from transport import BootConnection, ROMSettings, SCAMPConnection, VirtualBoard
from transport.connections.call import call
from transport.virtual.rom import ROMState, ROMStats

#: Test-sized ROM timings: hellos every 50 ms, no (255, 255) phase.
FAST = {"hello_interval": 0.05, "netinit": 0.0, "hello_to": None}


def cold_board(start: int, *, booted: bool = False, **rom: Any) -> VirtualBoard:
    """A 2x2 board in its boot ROM (or booted, with a ROM), serving."""
    settings = ROMSettings(**{**FAST, **rom})
    board = first_free(
        start,
        lambda host: VirtualBoard(2, 2, host=host, booted=booted, rom=settings),
    )
    return board.start()


def boot(
    board: VirtualBoard,
    *,
    gap: float = 0.001,
    values: SystemVariableBootValues | None = None,
) -> BootPlan:
    """Send ``board`` a whole boot (SpiNNMan's image) with our BootConnection."""
    with BootConnection(board.address[0], gap=gap) as connection:
        return connection.boot(values=values)


def booted(stats: ROMStats) -> bool:
    return stats.state is ROMState.BOOTED


def rom_of(board: VirtualBoard) -> Any:
    assert board.rom is not None
    return board.rom


def version(board: VirtualBoard, timeout: float = 0.5, retries: int = 3) -> VersionInfo:
    """Ask ``board``'s core 0,0,0 who it is (ReceiveTimeout if silent)."""
    host, port = board.address
    with SCAMPConnection(remote_host=host, remote_port=port) as connection:
        info = call(
            connection, GetVersion(0, 0, 0), timeout=timeout, retries=retries
        ).version_info
    assert info is not None
    return info


def located_version(board: VirtualBoard, limit: float = 10.0) -> VersionInfo:
    """Ask until the answer says where the chip is (past (255, 255))."""
    deadline = time.monotonic() + limit
    while True:
        info = version(board)
        if (info.x, info.y) != (255, 255) or time.monotonic() > deadline:
            return info
        time.sleep(0.02)


def cold_boards(start: int, count: int, **rom: Any) -> list[VirtualBoard]:
    """``count`` cold boards on the first free 127.0.0.x from ``start``
    on, each on an address of its own (stopped again if one cannot be)."""
    boards: list[VirtualBoard] = []
    try:
        while len(boards) < count:
            after = (
                int(boards[-1].address[0].rsplit(".", 1)[1]) + 1 if boards else start
            )
            boards.append(cold_board(after, **rom))
    except BaseException:
        for board in boards:
            board.stop()
        raise
    return boards
