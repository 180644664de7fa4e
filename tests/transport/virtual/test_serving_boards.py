"""serving_boards() lists only the virtual boards that answer SCP now: not
one in its boot ROM, powered off by its BMP, or stopped (what metrics
exports as a board's own figures)."""

from __future__ import annotations

import pytest

from messages.bmp import PowerCommand, SetPower
from messages.scp import GetVersion
from tests.transport.loopback import first_free
from transport import (
    BMPConnection,
    ROMSettings,
    SCAMPConnection,
    VirtualBMP,
    VirtualBoard,
)
from transport.connections.call import call
from transport.virtual.board import serving_boards
from transport.virtual.rom import ROMState

pytestmark = pytest.mark.timeout(30)

#: No hellos, no (255, 255) phase: a ROM that only waits for its power.
QUIET = ROMSettings(hello_to=None, netinit=0.0)


def answers(board: VirtualBoard) -> bool:
    """Whether ``board`` answers a GetVersion now (a real reply on UDP)."""
    host, port = board.address
    with SCAMPConnection(remote_host=host, remote_port=port) as connection:
        try:
            call(connection, GetVersion(0, 0, 0), timeout=0.2, retries=1)
        except Exception:  # noqa: BLE001 - silent: that is the answer
            return False
    return True


def test_only_boards_that_answer_are_listed() -> None:
    warm = first_free(
        120, lambda host: VirtualBoard(2, 2, host=host, rom=QUIET)
    ).start()
    start = int(warm.address[0].rsplit(".", 1)[1]) + 1
    cold = first_free(
        start, lambda host: VirtualBoard(2, 2, host=host, booted=False, rom=QUIET)
    ).start()
    bmp = VirtualBMP([warm, cold], power_on_delay=0.0).start()
    try:
        # The warm board answers; the cold one waits in its boot ROM.
        assert answers(warm) and not answers(cold)
        assert cold.rom is not None and cold.rom.stats.state is ROMState.LISTENING
        listed = serving_boards()
        assert warm in listed and cold not in listed
        host, port = bmp.address
        with BMPConnection(remote_host=host, remote_port=port, boards=[0]) as wire:
            call(wire, SetPower(PowerCommand.POWER_OFF, [0]))
        assert not bmp.powered(0) and not answers(warm)
        assert warm not in serving_boards()  # its thread still runs: off
        warm.stop()
        assert warm not in serving_boards()
    finally:
        bmp.stop()
        warm.stop()
        cold.stop()
