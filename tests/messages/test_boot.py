"""Boot frames, the boot image and its system variables.

SpiNNMan is the oracle for what goes on the wire: its SpinnakerBootMessages
(its real image, its real configuration for a SpiNN-5) and ours make the
same frames for the same time and values. Its own parser is not: it reads
the header in native order from byte 2, so ours is checked against the
frames instead (round trips, and garbage refused as MalformedDatagramError).
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from messages import InvalidArgumentError, MalformedDatagramError
from messages.boot import (
    BOOT_HEADER,
    BOOT_PORT,
    MAX_IMAGE_BYTES,
    SYSTEM_VARIABLES_OFFSET,
    BootImage,
    BootImageError,
    BootPlan,
    SpinnakerBootMessage,
    SpinnakerBootOpCode,
    SystemVariableBootValues,
    SystemVariableDefinition,
    boot_messages,
    boot_values,
    spinnman_image_path,
    swap_words,
)

common = settings(max_examples=200, deadline=None)
#: The variables that travel in a boot image (the first 128 bytes).
BOOTED = [
    variable
    for variable in SystemVariableDefinition
    if variable.offset + variable.size <= 128
]


@pytest.fixture(scope="module")
def spinnman_spinn5() -> Iterator[Any]:
    """SpiNNMan configured as for a SpiNN-5 (its unit-test set-up), and its
    boot messages module."""
    from spinnman.messages.spinnaker_boot import spinnaker_boot_messages

    from tests.system.spinnman_kit import spinnman_configured

    with spinnman_configured():
        yield spinnaker_boot_messages


def their_frames(module: Any, extra: dict[Any, Any] | None = None) -> list[bytes]:
    from spinnman.messages.spinnaker_boot import SystemVariableDefinition as Theirs

    values = {Theirs.led_0: 0x00000001}  # what Version5Transceiver adds
    values.update(extra or {})
    return [
        message.bytestring
        for message in module.SpinnakerBootMessages(extra_boot_values=values).messages
    ]


def time_in(frames: list[bytes]) -> int:
    """The boot time SpiNNMan wrote into its first block's system variables."""
    block = swap_words(frames[1][BOOT_HEADER.size :])
    start = SYSTEM_VARIABLES_OFFSET + SystemVariableDefinition.unix_timestamp.offset
    (when,) = struct.unpack_from("<I", block, start)
    return int(when)


@pytest.mark.timeout(30)
def test_frames_equal_spinnmans_for_its_image_and_time(spinnman_spinn5: Any) -> None:
    theirs = their_frames(spinnman_spinn5)
    when = time_in(theirs)
    ours = [
        message.bytestring
        for message in boot_messages(BootImage.load(), boot_values(when))
    ]
    assert len(ours) == len(theirs) == 32  # START, 30 blocks, CONTROL
    for index, (mine, reference) in enumerate(zip(ours, theirs, strict=True)):
        assert mine == reference, f"frame {index} differs"


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_frames_equal_spinnmans_with_extra_boot_values(
    spinnman_spinn5: Any, data: st.DataObject
) -> None:
    from spinnman.messages.spinnaker_boot import SystemVariableDefinition as Theirs

    chosen = data.draw(st.lists(st.sampled_from(BOOTED), max_size=6, unique=True))
    extra: dict[SystemVariableDefinition, int] = {
        variable: data.draw(st.integers(0, (1 << (8 * variable.size)) - 1))
        for variable in chosen
        if variable not in (SystemVariableDefinition.unix_timestamp,)
    }
    theirs = their_frames(
        spinnman_spinn5, {Theirs[v.name]: value for v, value in extra.items()}
    )
    values = boot_values(time_in(theirs), extra_boot_values=extra)
    if SystemVariableDefinition.boot_signature not in extra:
        # SpiNNMan signs with the time unless the signature is given.
        assert values[SystemVariableDefinition.boot_signature] == time_in(theirs)
    ours = [m.bytestring for m in boot_messages(BootImage.load(), values)]
    assert ours == theirs


def test_boot_values_are_spinnmans_for_a_spinn5() -> None:
    values = boot_values(1_700_000_000)
    variable = SystemVariableDefinition
    assert values[variable.hardware_version] == 5
    assert values[variable.unix_timestamp] == 1_700_000_000
    assert values[variable.boot_signature] == 1_700_000_000
    assert values[variable.is_root_chip] == 1
    assert values[variable.led_0] == 1
    assert values[variable.cpu_clock_mhz] == 200  # a default


@common
@given(st.data())
def test_the_booted_block_is_spinnmans(data: st.DataObject) -> None:
    from spinnman.messages.spinnaker_boot.system_variable_boot_values import (
        SystemVariableBootValues as TheirValues,
    )
    from spinnman.messages.spinnaker_boot.system_variable_boot_values import (
        SystemVariableDefinition as Theirs,
    )

    ours, theirs = SystemVariableBootValues(), TheirValues()
    for variable in data.draw(st.lists(st.sampled_from(BOOTED), unique=True)):
        value = data.draw(st.integers(0, (1 << (8 * variable.size)) - 1))
        ours.set_value(variable, value)
        theirs.set_value(Theirs[variable.name], value)
    assert ours.boot_block == theirs.bytestring[:128]
    assert SystemVariableBootValues.from_bytestring(ours.boot_block) == ours


def test_the_whole_block_puts_byte_arrays_at_their_offsets() -> None:
    """SpiNNMan packs each byte array as one byte; the 256 bytes here hold
    them where SC&MP keeps them."""
    values = SystemVariableBootValues()
    address = bytes([10, 11, 12, 13])
    values.set_value(SystemVariableDefinition.ethernet_ip_address, address)
    values.set_value(SystemVariableDefinition.board_info, 0x12345678)
    block = values.bytestring
    assert len(block) == 256
    assert block[0xF0:0xF4] == address
    assert block[0xF8:0xFC] == struct.pack("<I", 0x12345678)
    assert SystemVariableBootValues.from_bytestring(block) == values


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        (SystemVariableDefinition.hardware_version, 256),
        (SystemVariableDefinition.led_0, -1),
        (SystemVariableDefinition.unix_timestamp, 2**32),
        (SystemVariableDefinition.status_map, bytes(19)),
        (SystemVariableDefinition.cpu_clock_mhz, "200"),
    ],
)
def test_a_value_that_does_not_fit_is_refused(
    variable: SystemVariableDefinition, value: object
) -> None:
    with pytest.raises(InvalidArgumentError, match=variable.name):
        SystemVariableBootValues().set_value(variable, value)


def test_a_short_system_variable_block_is_malformed() -> None:
    with pytest.raises(MalformedDatagramError, match="128"):
        SystemVariableBootValues.from_bytestring(bytes(127))


# -- frames --------------------------------------------------------------------

opcodes = st.sampled_from(list(SpinnakerBootOpCode))
words = st.integers(0, 2**32 - 1)
payloads = st.none() | st.integers(1, 256).flatmap(
    lambda n: st.binary(min_size=4 * n, max_size=4 * n)
)


@common
@given(opcodes, words, words, words, payloads, st.binary(max_size=5))
def test_frames_round_trip(
    opcode: SpinnakerBootOpCode,
    operand_1: int,
    operand_2: int,
    operand_3: int,
    data: bytes | None,
    prefix: bytes,
) -> None:
    message = SpinnakerBootMessage(opcode, operand_1, operand_2, operand_3, data)
    wire = message.bytestring
    assert wire[:2] == b"\x00\x01"  # version 1, big-endian, no SDP padding
    assert len(wire) == 18 + (0 if data is None else len(data))
    parsed = SpinnakerBootMessage.from_bytestring(prefix + wire, len(prefix))
    assert parsed == message
    assert (parsed.opcode, parsed.operand_1, parsed.operand_2, parsed.operand_3) == (
        opcode,
        operand_1,
        operand_2,
        operand_3,
    )
    assert parsed.data == data


def test_real_frames_parse_as_they_were_made() -> None:
    frames = boot_messages(BootImage.load(), boot_values(1_700_000_000))
    for frame in frames:
        parsed = SpinnakerBootMessage.from_bytestring(frame.bytestring)
        assert parsed == frame
    start, block_0, last, control = frames[0], frames[1], frames[-2], frames[-1]
    assert (start.opcode, start.operand_3) == (
        SpinnakerBootOpCode.FLOOD_FILL_START,
        29,
    )
    assert (block_0.opcode, block_0.operand_1, block_0.block) == (
        SpinnakerBootOpCode.FLOOD_FILL_BLOCK,
        0xFF00,
        0,
    )
    assert (last.operand_1, last.block) == (0xFF1D, 29)
    assert last.data is not None and len(last.data) == 29868 - 29 * 1024
    assert (control.opcode, control.operand_1) == (
        SpinnakerBootOpCode.FLOOD_FILL_CONTROL,
        1,
    )
    # The image's words go on the wire byte-swapped.
    image = BootImage.load().data
    assert block_0.data is not None and block_0.data[:4] == image[3::-1]


@pytest.mark.parametrize(
    ("datagram", "reason"),
    [
        (b"", "18"),
        (bytes(17), "18"),
        (struct.pack(">HIIII", 2, 1, 0, 0, 0), "version 2"),
        (struct.pack(">HIIII", 1, 0x42, 0, 0, 0), "opcode 0x42"),
        (struct.pack(">HIIII", 1, 3, 0, 0, 0) + bytes(3), "3 bytes of data"),
        (struct.pack(">HIIII", 1, 3, 0, 0, 0) + bytes(1028), "1028 bytes of data"),
        # An SDP datagram (padding, header, SCP) is not a boot frame.
        (b"\0\0\x87\xff\0\xff\0\0\0\0" + bytes(16), "version 0"),
    ],
)
def test_garbage_frames_are_malformed(datagram: bytes, reason: str) -> None:
    with pytest.raises(MalformedDatagramError, match=reason):
        SpinnakerBootMessage.from_bytestring(datagram)


@common
@given(st.binary(max_size=1100))
def test_any_datagram_parses_exactly_or_is_malformed(datagram: bytes) -> None:
    try:
        message = SpinnakerBootMessage.from_bytestring(datagram)
    except MalformedDatagramError:
        return
    assert message.bytestring == datagram


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: SpinnakerBootMessage(0x41, 0, 0, 0), "opcode"),  # type: ignore[arg-type]
        (
            lambda: SpinnakerBootMessage(SpinnakerBootOpCode.HELLO, -1, 0, 0),
            "operand_1",
        ),
        (
            lambda: SpinnakerBootMessage(SpinnakerBootOpCode.HELLO, 0, 2**32, 0),
            "operand_2",
        ),
        (
            lambda: SpinnakerBootMessage(SpinnakerBootOpCode.HELLO, 0, 0, 0, bytes(6)),
            "data",
        ),
        (
            lambda: SpinnakerBootMessage(
                SpinnakerBootOpCode.HELLO, 0, 0, 0, bytes(1028)
            ),
            "data",
        ),
    ],
)
def test_bad_frame_arguments_are_refused(make: Any, name: str) -> None:
    with pytest.raises(InvalidArgumentError, match=f"^{name}="):
        make()


def test_boot_port() -> None:
    assert BOOT_PORT == 54321


# -- the image -------------------------------------------------------------------


def write(tmp_path: Path, size: int) -> Path:
    path = tmp_path / f"image-{size}.boot"
    path.write_bytes(bytes(range(256)) * (size // 256) + bytes(size % 256))
    return path


@pytest.mark.parametrize(
    ("size", "rule"),
    [
        (MAX_IMAGE_BYTES + 4, "at most 32768 bytes"),
        (29866, "whole 32-bit words"),
        (508, "at least 512"),
        (0, "at least 512"),
    ],
)
def test_bad_images_are_refused_naming_the_file_and_the_rule(
    tmp_path: Path, size: int, rule: str
) -> None:
    path = write(tmp_path, size)
    with pytest.raises(BootImageError) as caught:
        BootImage.load(path)
    assert str(path) in str(caught.value)
    assert rule in str(caught.value)
    assert isinstance(caught.value, InvalidArgumentError)


def test_a_missing_image_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.boot"
    with pytest.raises(BootImageError, match="no such file") as caught:
        BootImage.load(path)
    assert str(path) in str(caught.value)


def test_without_spinnman_the_error_says_to_give_a_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "spinnman", None)  # as if not installed
    with pytest.raises(BootImageError, match="SpiNNMan.*is not installed") as caught:
        BootImage.load()
    assert "path of an SC&MP boot image" in str(caught.value)


def test_the_installed_spinnmans_image_is_found() -> None:
    path = spinnman_image_path()
    assert path.name == "scamp.boot"
    image = BootImage.load()
    assert len(image.data) == 29868 and image.n_blocks == 30
    assert image.source == str(path)


def test_an_image_of_exactly_32_blocks_boots(tmp_path: Path) -> None:
    image = BootImage.load(write(tmp_path, MAX_IMAGE_BYTES))
    frames = boot_messages(image, boot_values(0))
    assert len(frames) == 34
    assert frames[0].operand_3 == 31
    assert frames[-2].block == 31


def test_the_system_variables_replace_bytes_384_to_511(tmp_path: Path) -> None:
    image = BootImage.load(write(tmp_path, 2048))
    values = boot_values(1234)
    booted = image.with_values(values)
    assert booted[:384] == image.data[:384]
    assert booted[384:512] == values.boot_block
    assert booted[512:] == image.data[512:]


# -- pacing --------------------------------------------------------------------


def test_a_plan_is_the_frames_and_their_pacing() -> None:
    plan = BootPlan.build(BootImage.load(), boot_values(5), gap=0.05, settle=2.0)
    schedule = list(plan.schedule())
    assert [datagram for _, datagram in schedule] == list(plan.datagrams)
    assert [when for when, _ in schedule] == pytest.approx(
        [0.05 * index for index in range(32)]
    )
    assert plan.duration == pytest.approx(31 * 0.05 + 2.0)


@pytest.mark.parametrize("gap", [-0.01, float("nan"), float("inf"), "0.1", True])
def test_a_plan_refuses_a_bad_gap(gap: object) -> None:
    messages = tuple(boot_messages(BootImage.load(), boot_values(5)))
    with pytest.raises(InvalidArgumentError, match="gap"):
        BootPlan(messages, gap=gap)  # type: ignore[arg-type]
