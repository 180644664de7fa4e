"""Booting as supervised, bounded work, over real UDP on 127.0.0.x:
connect(boot=...), a board's boot(), and a Machine booting its boards at
once, against cold virtual boards and a virtual BMP.

A board that answers is never booted again (its ROM hears nothing); a
lossy boot is finished by sending every frame again; a board that never
comes up fails within its deadline naming the stage; a silent board with
a BMP is powered on and booted; a BMP that is silent or refuses, and a
host that is a BMP, are each named.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Hashable, Iterator
from pathlib import Path

import pykka
import pytest

from actors import connect
from actors.boot import (
    BMPRefused,
    BoardBMP,
    BootError,
    BootOptions,
    MachineBootError,
    set_power,
)
from messages.boot import BootImageError
from tests.system.cold import booted, cold_board, cold_boards, rom_of
from tests.transport.loopback import BOOT_PORT, first_free, udp_socket
from transport import FaultPlan, VirtualBMP, VirtualBoard
from transport.capture.pcap import read_packets
from transport.capture.replay import exchanges
from transport.capture.writer import PacketCapture
from transport.virtual.rom import ROMState

pytestmark = pytest.mark.timeout(60)
BASE = 0x6000_0000
#: Quick to give up on a silent board, generous for the rest (the machine
#: may be busy with other suites).
FAST = {"probe_timeout": 0.3, "pass_timeout": 0.5, "power_settle": 0.3}


def options(**given: object) -> BootOptions:
    return BootOptions(**{"deadline": 20.0, **FAST, **given})  # type: ignore[arg-type]


def pattern(size: int, seed: int = 0) -> bytes:
    return bytes((seed + 7 * i) & 0xFF for i in range(size))


def test_connect_boots_a_cold_board_that_then_reads_and_writes() -> None:
    with cold_board(150, netinit=0.2) as board:
        with connect(*board.address, boot=options()) as client:
            data = pattern(3000)
            client.write(1, 1, BASE, data)
            assert client.read(1, 1, BASE, len(data)) == data
            info = client.version()
        record = board.stats.rom.booted  # type: ignore[union-attr]
    assert (info.name, info.x, info.y) == ("SC&MP", 0, 0)
    assert record is not None and record.hardware_version == 5
    assert record.length == 29868


def test_a_board_that_answers_is_never_booted_again() -> None:
    with cold_board(154, booted=True) as board:  # up, with a ROM
        with connect(*board.address, boot=True) as client:
            report = client.boot()
        assert not report.booted and report.passes == 0
        stats = rom_of(board).stats
    assert stats.datagrams == 0 and stats.boots == 0  # not one frame


def test_booting_a_booted_board_twice_sends_one_image() -> None:
    with cold_board(156) as board, connect(*board.address) as client:
        first = client.boot(options())
        again = client.boot(options())
        stats = rom_of(board).stats
    assert first.booted and first.passes == 1 and not again.booted
    assert stats.datagrams == 32 and stats.boots == 1


def test_a_lossy_boot_is_finished_by_another_pass_within_the_deadline() -> None:
    # Seed 0 loses a block of the first pass (as test_cold_board shows).
    plan = FaultPlan(drop=0.1, duplicate=0.1, reorder=0.1, seed=0)
    started = time.monotonic()
    with cold_board(158, faults=plan) as board:
        with connect(*board.address) as client:
            report = client.boot(options(deadline=15.0, gap=0.002))
            assert client.read(0, 0, BASE, 16) == bytes(16)
        stats = rom_of(board).stats
    assert report.booted and report.passes >= 2
    assert time.monotonic() - started < 15.0
    assert plan.counts.dropped >= 1 and stats.repeated_blocks >= 1
    assert stats.boots == 1


def test_a_board_that_never_comes_up_fails_within_its_deadline() -> None:
    deaf = FaultPlan(drop=1.0, seed=1)  # every boot frame lost
    with cold_board(162, faults=deaf) as board:
        client = connect(*board.address)
        started = time.monotonic()
        with client, pytest.raises(BootError) as raised:
            client.boot(options(deadline=2.0, passes=100))
        took = time.monotonic() - started
    host, port = board.address
    error = raised.value
    assert error.stage == "boot" and took < 2.0 + 1.0
    assert str(error).startswith(
        f"board {host}:{port}: no answer to boot within the deadline of 2 s: "
        f"SC&MP did not come up after "
    )
    assert re.search(r"\(stage: boot, 2\.\d s\)$", str(error)), str(error)


def test_one_stuck_at_255_255_fails_naming_the_locate_stage() -> None:
    with cold_board(164, netinit=60.0) as board, connect(*board.address) as client:
        started = time.monotonic()
        with pytest.raises(BootError) as raised:
            client.boot(options(deadline=1.5))
        took = time.monotonic() - started
    assert raised.value.stage == "locate" and took < 1.5 + 1.0
    assert "stuck at chip (255, 255): SC&MP answers but did not find its " in str(
        raised.value
    )


def test_connect_closes_the_client_when_the_boot_fails() -> None:
    before = len(pykka.ActorRegistry.get_all())
    with (
        cold_board(166, faults=FaultPlan(drop=1.0)) as board,
        pytest.raises(BootError, match="no answer to boot"),
    ):
        connect(*board.address, boot=options(deadline=1.0))
    assert len(pykka.ActorRegistry.get_all()) == before  # its actors stopped


def test_a_bad_image_is_refused_before_anything_is_sent(tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "scamp.boot")
    with open(path, "wb") as file:
        file.write(bytes(33 * 1024))  # too big
    with cold_board(168) as board, connect(*board.address) as client:
        with pytest.raises(BootImageError, match="a boot image is at most 32768"):
            client.boot(options(image=path))
        with pytest.raises(BootImageError, match="no such file"):
            client.boot(options(image=path + ".missing"))
        assert rom_of(board).stats.datagrams == 0
        assert board.stats.received == 0  # not even a probe


@pytest.fixture
def frame() -> Iterator[tuple[VirtualBMP, list[VirtualBoard]]]:
    """Two cold boards and their BMP, board 1 powered off."""
    boards = cold_boards(170, 2)
    bmp = VirtualBMP(boards, power_on_delay=0.05).start()
    try:
        yield bmp, boards
    finally:
        bmp.stop()
        for board in boards:
            board.stop()


def board_bmp(bmp: VirtualBMP, number: int) -> BoardBMP:
    host, port = bmp.address
    return BoardBMP(host, number, port)


def test_a_board_powered_off_is_powered_on_through_its_bmp_and_booted(
    frame: tuple[VirtualBMP, list[VirtualBoard]],
) -> None:
    bmp, boards = frame
    with connect(*boards[1].address) as client:
        client.boot(options())
        bmp.set_temperature(1, 95.0)  # shut down: off, and silent
        bmp.set_temperature(1, 40.0)
        with pytest.raises(BootError, match="no answer to boot"):
            client.boot(options(passes=1))  # no BMP given: nothing to do
        report = client.boot(options(passes=1, bmp=board_bmp(bmp, 1)))
        assert client.read(0, 0, BASE, 8) == bytes(8)
    assert report.booted and report.powered_on and report.passes == 2
    assert bmp.powered(1) and bmp.stats.power_ons == 1
    assert rom_of(boards[1]).stats.boots == 2


def test_a_bmp_that_refuses_is_named(
    frame: tuple[VirtualBMP, list[VirtualBoard]],
) -> None:
    bmp, boards = frame
    absent = board_bmp(bmp, 7)
    with (
        cold_board(174, faults=FaultPlan(drop=1.0)) as board,
        connect(*board.address) as client,
        pytest.raises(BootError) as raised,
    ):
        client.boot(options(passes=1, bmp=absent))
    host, port = bmp.address
    assert raised.value.stage == "power"
    assert (
        f"board {board.address[0]}:{board.address[1]}: BMP {host}:{port} has "
        f"no board 7 in its frame (its CAN bus reaches boards 0-1) (stage: power, "
    ) in str(raised.value)
    assert bmp.stats.power_ons == 0


def test_set_power_checks_the_boards_it_is_given_without_asking_again(
    frame: tuple[VirtualBMP, list[VirtualBoard]],
) -> None:
    """``there=`` (the frame's boards, just learnt) is checked as the BMP's
    own answer is: an absent board is refused with nothing sent."""
    bmp, _ = frame
    host, port = bmp.address
    with pytest.raises(BMPRefused, match=f"BMP {host}:{port} has no board 7 in"):
        set_power(bmp.address, [1, 7], False, there=(0, 1))
    assert bmp.stats.received == 0
    assert set_power(bmp.address, [1], False, there=(0, 1)) == (1,)
    assert (bmp.stats.received, bmp.stats.power_offs) == (1, 1)  # the command alone


def test_a_bmp_that_does_not_answer_is_named() -> None:
    silent = first_free(176, udp_socket(0))
    host, port = silent.getsockname()
    try:
        with (
            cold_board(177, faults=FaultPlan(drop=1.0)) as board,
            connect(*board.address) as client,
            pytest.raises(BootError) as raised,
        ):
            client.boot(
                options(passes=1, power_timeout=0.3, bmp=BoardBMP(host, 0, port))
            )
    finally:
        silent.close()
    assert raised.value.stage == "power"
    assert (
        f"BMP {host}:{port} not answering: no reply to which boards it has "
        f"after 3 tries of 0.1 s; check the BMP's address and that it is powered "
        f"(stage: power, "
    ) in str(raised.value)


def test_a_host_that_is_a_bmp_is_named_and_nothing_is_booted(
    frame: tuple[VirtualBMP, list[VirtualBoard]],
) -> None:
    bmp, boards = frame
    host, port = bmp.address
    with pytest.raises(BootError) as raised:
        connect(host, port, boot=options())
    assert raised.value.stage == "probe"
    assert str(raised.value) == (
        f"board {host}:{port}: the host is a BMP, not a board: it answers "
        f"version as BC&MP/Spin5-BMP 2.1.2; give the board's own address, and "
        f"this one as its BMP (stage: probe, 0.0 s)"
    )
    assert bmp.stats.power_ons == 0


@pytest.mark.timeout(90)
@pytest.mark.parametrize("workers", [0, 2])
def test_a_machine_boots_eight_cold_boards_at_once(workers: int) -> None:
    boards = cold_boards(180 + 9 * (workers // 2), 8, netinit=0.3)
    try:
        with connect(boards, workers=workers) as machine:
            started = time.monotonic()
            reports = machine.boot(options(gap=0.01))
            took = time.monotonic() - started
            for name in machine.boards:
                data = pattern(600, name)  # type: ignore[arg-type]
                machine.write(name, 0, 1, BASE, data)
                assert machine.read(name, 0, 1, BASE, len(data)) == data
            again = machine.boot(options())
    finally:
        for board in boards:
            board.stop()
    assert reports.keys() == set(range(8))
    assert all(report.booted for report in reports.values())
    # One board takes its probe, 32 frames 10 ms apart and its (255, 255)
    # phase: about 0.9 s. At once, eight take about as long as the slowest;
    # one after another, they would take the sum.
    seconds = [report.seconds for report in reports.values()]
    assert took < 0.5 * sum(seconds), (took, seconds)
    assert not any(report.booted for report in again.values())
    assert all(rom_of(board).stats.boots == 1 for board in boards)


def test_a_machine_names_each_board_that_did_not_come_up() -> None:
    boards = cold_boards(198, 3)
    deaf = cold_board(
        int(boards[-1].address[0].rsplit(".", 1)[1]) + 1, faults=FaultPlan(drop=1.0)
    )
    try:
        named: dict[Hashable, VirtualBoard] = {
            "a": boards[0],
            "b": deaf,
            "c": boards[1],
            "d": boards[2],
        }
        with connect(named, workers=0) as machine:
            with pytest.raises(MachineBootError) as raised:
                machine.boot(options(deadline=2.0))
            assert machine.read("a", 0, 0, BASE, 4) == bytes(4)
    finally:
        for board in [*boards, deaf]:
            board.stop()
    error = raised.value
    host, port = deaf.address
    assert error.errors.keys() == {"b"} and error.reports.keys() == {"a", "c", "d"}
    assert str(error).startswith(
        f"1 of 4 boards did not come up: board 'b' at {host}:{port}: no answer to boot"
    )


def test_a_machine_powers_its_boards_off_and_on_in_bulk(
    frame: tuple[VirtualBMP, list[VirtualBoard]],
) -> None:
    bmp, boards = frame
    bmps = {0: board_bmp(bmp, 0), 1: board_bmp(bmp, 1)}
    with connect(boards, workers=0, bmps=bmps) as machine:
        machine.boot(options())
        assert machine.power_off() == {bmp.address: (0, 1)}
        assert not bmp.powered(0) and not bmp.powered(1)
        assert machine.power_on() == {bmp.address: (0, 1)}
        assert all(rom_of(b).stats.state is ROMState.LISTENING for b in boards)
        reports = machine.boot(options())
    assert all(report.booted and not report.powered_on for report in reports.values())
    stats = bmp.stats
    assert (stats.power_offs, stats.power_ons) == (2, 2)
    assert stats.received == 4  # one command per BMP each way, each checked
    assert all(rom_of(board).wait_until(booted, 1) for board in boards)


def test_a_machines_boot_is_in_each_boards_capture(
    frame: tuple[VirtualBMP, list[VirtualBoard]], tmp_path: Path
) -> None:
    """In this process (workers=0) each board's client records its boot:
    the boot frames to its own port 54321 and, for the board powered off,
    the power-on's exchanges with the BMP."""
    bmp, boards = frame
    bmp.set_temperature(1, 95.0)  # shut down: off, and silent
    bmp.set_temperature(1, 40.0)
    bmps = {0: board_bmp(bmp, 0), 1: board_bmp(bmp, 1)}
    template = str(tmp_path / "{host}-{port}.pcap")
    with connect(boards, workers=0, bmps=bmps, capture=template) as machine:
        reports = machine.boot(options(passes=1))
    assert [report.powered_on for report in reports.values()] == [False, True]
    for name, board in enumerate(boards):
        host, port = board.address
        path = Path(template.format(host=host, port=port))
        packets = list(read_packets(path.read_bytes()))
        frames = [p for p in packets if p.destination == (host, BOOT_PORT)]
        assert len(frames) == 32 * reports[name].passes
        to_bmp = [e.command for e in exchanges(packets) if e.destination == bmp.address]
        assert to_bmp == (["CMD_BMP_INFO", "CMD_BMP_POWER"] if name else [])


@pytest.mark.parametrize("shared", [False, True])
def test_a_machines_power_commands_are_in_its_boards_captures(
    frame: tuple[VirtualBMP, list[VirtualBoard]], tmp_path: Path, shared: bool
) -> None:
    """power_off() and power_on() of boards in this process (workers=0):
    the BMP's one command for both boards, and the CAN status asked first,
    each with its reply, in each board's capture (once in a PacketCapture
    they share)."""
    bmp, boards = frame
    bmps = {0: board_bmp(bmp, 0), 1: board_bmp(bmp, 1)}
    template = str(tmp_path / "{host}-{port}.pcap")
    with contextlib.ExitStack() as stack:
        capture: str | PacketCapture = template
        if shared:
            capture = stack.enter_context(PacketCapture(tmp_path / "machine.pcap"))
        with connect(boards, workers=0, bmps=bmps, capture=capture) as machine:
            assert machine.power_off() == {bmp.address: (0, 1)}
            assert machine.power_on() == {bmp.address: (0, 1)}
    paths = sorted(tmp_path.iterdir())
    assert len(paths) == (1 if shared else 2), paths
    for path in paths:
        packets = list(read_packets(path.read_bytes()))
        to_bmp = [
            (e.command, e.answer is not None)
            for e in exchanges(packets)
            if e.destination == bmp.address
        ]
        info, power = ("CMD_BMP_INFO", True), ("CMD_BMP_POWER", True)  # answered
        assert to_bmp == [info, power, info, power], path
    assert bmp.stats.received == 4  # still one command per BMP each way
