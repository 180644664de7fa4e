"""The boot ROM as a state machine, frames and times in, no sockets.

The frames are the project's own for SpiNNMan's real image (messages.boot,
whose frames equal SpiNNMan's); the rules are the ROM's: a second START is
ignored, a block already held is never replaced, CONTROL runs the image
only once every block is in, and nothing but power resets it.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from messages.boot import (
    BootImage,
    BootPlan,
    SpinnakerBootMessage,
    SpinnakerBootOpCode,
    boot_values,
)
from messages.errors import InvalidArgumentError
from transport.virtual.rom import HELLO, BootROM, ROMSettings, ROMState

Op = SpinnakerBootOpCode
VALUES = boot_values(1_700_000_123)


@pytest.fixture(scope="module")
def plan() -> BootPlan:
    return BootPlan.build(BootImage.load(), VALUES)


def feed(rom: BootROM, datagrams: list[bytes], start: float = 0.0) -> None:
    for index, datagram in enumerate(datagrams):
        rom.receive(datagram, start + index)


def start(blocks: int) -> bytes:
    return SpinnakerBootMessage(Op.FLOOD_FILL_START, 0, 0, blocks - 1).bytestring


def test_a_whole_boot_runs_the_image_with_its_values(plan: BootPlan) -> None:
    rom = BootROM()
    *frames, control = plan.datagrams
    feed(rom, frames)
    assert rom.state is ROMState.LOADING
    record = rom.receive(control, 100.0)
    assert record is not None and rom.state is ROMState.BOOTED
    image = BootImage.load()
    assert record.image == image.with_values(VALUES)
    assert (record.length, record.n_blocks) == (len(image.data), image.n_blocks)
    assert record.values == VALUES
    assert (record.hardware_version, record.unix_time) == (5, 1_700_000_123)
    stats = rom.stats()
    assert (stats.frames, stats.boots, stats.blocks_held) == (32, 1, 30)
    assert stats.booted is record and stats.values == VALUES


def test_a_second_start_is_ignored(plan: BootPlan) -> None:
    rom = BootROM()
    first, *blocks, control = plan.datagrams
    rom.receive(first, 0.0)
    rom.receive(start(2), 1.0)  # a shorter image: the first START stands
    feed(rom, [*blocks[:2], control], 2.0)
    stats = rom.stats()
    assert stats.ignored_starts == 1 and stats.blocks_expected == 30
    assert rom.state is ROMState.LOADING and stats.early_controls == 1
    feed(rom, [*blocks[2:], control], 10.0)
    assert rom.state is ROMState.BOOTED


def test_a_held_block_is_not_replaced(plan: BootPlan) -> None:
    rom = BootROM()
    first, *blocks, control = plan.datagrams
    held = SpinnakerBootMessage.from_bytestring(blocks[3])
    assert held.data is not None
    other = SpinnakerBootMessage(
        Op.FLOOD_FILL_BLOCK, held.operand_1, 0, 0, bytes(len(held.data))
    ).bytestring
    feed(rom, [first, other, *blocks, control])
    assert rom.stats().repeated_blocks == 1
    assert rom.record is not None
    # Block 3 is the zeros that came first, not the image's.
    assert rom.record.image[3 * 1024 : 4 * 1024] == bytes(1024)
    assert rom.record.image != BootImage.load().with_values(VALUES)


def test_control_before_every_block_does_nothing(plan: BootPlan) -> None:
    rom = BootROM()
    first, *blocks, control = plan.datagrams
    feed(rom, [first, *blocks[:-1], control, control])
    assert rom.state is ROMState.LOADING and rom.record is None
    assert rom.stats().early_controls == 2
    feed(rom, [blocks[-1], control], 50.0)
    assert rom.state is ROMState.BOOTED


def test_only_power_resets_it(plan: BootPlan) -> None:
    rom = BootROM()
    feed(rom, list(plan.datagrams))
    record = rom.record
    feed(rom, [start(1), plan.datagrams[1]], 40.0)  # after the boot: ignored
    assert rom.state is ROMState.BOOTED and rom.stats().ignored == 2
    rom.halt()
    rom.receive(plan.datagrams[0], 50.0)
    assert rom.state is ROMState.OFF and rom.stats().off_drops == 1
    rom.power_on(60.0)
    stats = rom.stats()
    assert stats.state is ROMState.LISTENING
    assert (stats.blocks_expected, stats.blocks_held) == (None, 0)
    assert stats.booted is record  # the last boot stays readable
    feed(rom, list(plan.datagrams), 70.0)
    assert rom.stats().boots == 2


def test_stray_frames_change_nothing(plan: BootPlan) -> None:
    rom = BootROM()
    first, *blocks, control = plan.datagrams
    beyond = SpinnakerBootMessage(Op.FLOOD_FILL_BLOCK, (255 << 8) | 30, 0, 0, b"ab" * 2)
    feed(rom, [blocks[0], control, start(33), first, beyond.bytestring])
    stats = rom.stats()
    # A BLOCK before START, a START of 33 blocks, a block numbered 30 of 30.
    assert stats.stray == 3 and stats.early_controls == 1
    assert (stats.blocks_expected, stats.blocks_held) == (30, 0)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=1100), max_size=20))
def test_garbage_never_stops_it(garbage: list[bytes]) -> None:
    rom = BootROM()
    feed(rom, garbage)
    stats = rom.stats()
    assert stats.datagrams == len(garbage)
    # Each one is garbage, a hello heard, or a frame taken: none is lost.
    assert stats.garbage + stats.ignored + stats.frames == len(garbage)
    plan = BootPlan.build(BootImage.load(), VALUES)
    feed(rom, [*plan.datagrams[1:], *plan.datagrams], 100.0)
    assert rom.state is ROMState.BOOTED


def test_garbage_is_counted() -> None:
    rom = BootROM()
    header = SpinnakerBootMessage(Op.FLOOD_FILL_START, 0, 0, 0).bytestring
    feed(rom, [b"", b"\x00", header[:17], b"\x00\x02" + header[2:], header + b"abc"])
    assert rom.stats().garbage == 5 and rom.state is ROMState.LISTENING


def test_frames_closer_than_the_minimum_gap_are_lost(plan: BootPlan) -> None:
    rom = BootROM(min_gap=0.01)
    for index, datagram in enumerate(plan.datagrams):
        rom.receive(datagram, index * 0.006)  # every other one comes too soon
    stats = rom.stats()
    assert stats.gap_drops == 16 and stats.frames == 16
    assert rom.state is ROMState.LOADING
    for index, datagram in enumerate(plan.datagrams):
        rom.receive(datagram, 1.0 + index * 0.011)
    assert rom.state is ROMState.BOOTED


def test_hellos_come_every_interval_while_it_waits(plan: BootPlan) -> None:
    rom = BootROM(hello_interval=4.1, now=10.0)
    assert rom.hello(10.0) == HELLO  # at once, on power-on
    assert rom.hello(14.0) is None and rom.next_hello == pytest.approx(14.1)
    assert rom.hello(14.2) == HELLO
    rom.receive(plan.datagrams[0], 15.0)  # loading: still saying hello
    assert rom.hello(18.4) == HELLO
    rom.halt()
    assert rom.next_hello is None and rom.hello(100.0) is None
    rom.power_on(200.0)
    assert rom.hello(200.0) == HELLO
    feed(rom, list(plan.datagrams), 201.0)
    assert rom.hello(1000.0) is None  # SC&MP runs: the ROM is done
    assert rom.stats().hellos == 4
    assert BootROM(booted=True).next_hello is None


def test_a_hello_heard_is_ignored() -> None:
    rom = BootROM()
    rom.receive(HELLO, 0.0)
    assert rom.stats().ignored == 1 and rom.state is ROMState.LISTENING


@pytest.mark.parametrize(
    ("name", "value"),
    [("hello_interval", 0), ("hello_interval", float("nan")), ("min_gap", -1)],
)
def test_bad_settings_are_refused(name: str, value: float) -> None:
    with pytest.raises(InvalidArgumentError, match=name):
        ROMSettings(**{name: value})  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match=name):
        BootROM(**{name: value})  # type: ignore[arg-type]


def test_a_short_image_runs_without_values() -> None:
    rom = BootROM()
    block = SpinnakerBootMessage(Op.FLOOD_FILL_BLOCK, 255 << 8, 0, 0, bytes(256))
    control = SpinnakerBootMessage(Op.FLOOD_FILL_CONTROL, 1, 0, 0)
    feed(rom, [start(1), block.bytestring, control.bytestring])
    assert rom.record is not None and rom.record.values is None
    assert rom.record.hardware_version is None and rom.record.length == 256
