"""The boot image and the frames that carry it, paced as data.

A boot image (SC&MP's ``scamp.boot``) is at most 32 KiB, whole words,
sent in blocks of 1024 bytes: a START frame saying how many, one BLOCK
frame each, then CONTROL to run it. Bytes 384-511 of the image are replaced
by the 128-byte system-variable block before it is sent. The image is never
part of this project: it comes from an installed SpiNNMan (which ships one)
or from a path the user gives, and a bad one is refused, naming the file and
the rule, before anything is sent.

``BootPlan`` is the boot as a sans-IO sender: the datagrams in order, the
gap to leave between them and how long SC&MP takes to come up after the
last; whoever sends them keeps the time.
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from messages.boot.frames import (
    MAX_DATA_BYTES,
    SpinnakerBootMessage,
    SpinnakerBootOpCode,
    swap_words,
)
from messages.boot.sysvars import BOOT_BLOCK_SIZE, SystemVariableBootValues
from messages.errors import InvalidArgumentError

#: A boot ROM holds at most 32 blocks (its DTCM).
MAX_IMAGE_BYTES = 32 * 1024
#: Where the system-variable block goes in the image.
SYSTEM_VARIABLES_OFFSET = 384
MIN_IMAGE_BYTES = SYSTEM_VARIABLES_OFFSET + BOOT_BLOCK_SIZE
#: Operand 1 of a BLOCK frame: words in a full block, less one, above the
#: block number (the same for a short last block, as every sender has it).
_BLOCK_OPERAND = (MAX_DATA_BYTES // 4 - 1) << 8
#: Where an installed SpiNNMan keeps its SC&MP image.
SPINNMAN_IMAGE = ("messages", "spinnaker_boot", "boot_data", "scamp.boot")

#: Seconds between boot frames, unless told. spinnaker_tools' own ``boot``
#: (ybug, by the boot ROM's author) sends one every 0.01 s; rig leaves
#: 0.05 s and SpiNNMan 0.1 s. A frame lost to a busy ROM shows only as a
#: board that never comes up, and sending the blocks and CONTROL again
#: fills the gap (the ROM keeps what it has), so the tightest gap known to
#: work on real boards is the default; raise it for a congested network.
DEFAULT_FRAME_GAP = 0.01
#: Seconds SC&MP takes to come up after CONTROL before it is worth asking
#: (SpiNNMan and ybug wait 2 s).
BOOT_SETTLE = 2.0


class BootImageError(InvalidArgumentError):
    """A boot image that cannot be sent: missing, too big, not whole words."""


@dataclass(frozen=True)
class BootImage:
    """An SC&MP image, checked: whole words, 512 bytes to 32 KiB."""

    data: bytes
    #: Where it came from (a path, or what made it), for error messages.
    source: str = "<bytes>"

    def __post_init__(self) -> None:
        size = len(self.data)
        if size > MAX_IMAGE_BYTES:
            self._refuse(
                f"is {size} bytes; a boot image is at most {MAX_IMAGE_BYTES} "
                f"bytes (32 blocks of {MAX_DATA_BYTES})"
            )
        if size % 4:
            self._refuse(f"is {size} bytes; a boot image is whole 32-bit words")
        if size < MIN_IMAGE_BYTES:
            self._refuse(
                f"is {size} bytes; a boot image holds the system variables at "
                f"bytes {SYSTEM_VARIABLES_OFFSET}-{MIN_IMAGE_BYTES - 1}, so it "
                f"is at least {MIN_IMAGE_BYTES}"
            )

    def _refuse(self, reason: str) -> None:
        raise BootImageError("image", self.source, reason)

    @staticmethod
    def from_file(path: str | os.PathLike[str]) -> BootImage:
        """The image in ``path``; BootImageError if it is missing or bad."""
        source = os.fspath(path)
        try:
            data = Path(source).read_bytes()
        except FileNotFoundError:
            raise BootImageError("image", source, "no such file") from None
        except OSError as error:
            raise BootImageError(
                "image", source, f"cannot be read: {error.strerror or error}"
            ) from None
        return BootImage(data, source)

    @staticmethod
    def load(path: str | os.PathLike[str] | None = None) -> BootImage:
        """The image in ``path``, or the one an installed SpiNNMan ships."""
        return BootImage.from_file(spinnman_image_path() if path is None else path)

    @property
    def n_blocks(self) -> int:
        return math.ceil(len(self.data) / MAX_DATA_BYTES)

    def with_values(self, values: SystemVariableBootValues) -> bytes:
        """The image as booted: the system-variable block in place."""
        end = SYSTEM_VARIABLES_OFFSET + BOOT_BLOCK_SIZE
        return self.data[:SYSTEM_VARIABLES_OFFSET] + values.boot_block + self.data[end:]

    def __repr__(self) -> str:
        return f"BootImage({self.source!r}, {len(self.data)} bytes)"


def spinnman_image_path() -> Path:
    """Where an installed SpiNNMan keeps ``scamp.boot`` (nothing imported).

    BootImageError, saying what to do, when SpiNNMan is not installed.
    """
    spec = importlib.util.find_spec("spinnman")
    if spec is None or not spec.submodule_search_locations:
        raise BootImageError(
            "image",
            None,
            "no image given and SpiNNMan, which ships one, is not installed: "
            "pass the path of an SC&MP boot image (scamp.boot), or install "
            "SpiNNMan (pip install 'spinnactors[boot]')",
        )
    return Path(next(iter(spec.submodule_search_locations))).joinpath(*SPINNMAN_IMAGE)


def boot_messages(
    image: BootImage, values: SystemVariableBootValues
) -> list[SpinnakerBootMessage]:
    """START, a BLOCK per 1024 bytes, CONTROL: SpiNNMan's frames, in order."""
    wire = swap_words(image.with_values(values))
    blocks = image.n_blocks
    messages = [
        SpinnakerBootMessage(SpinnakerBootOpCode.FLOOD_FILL_START, 0, 0, blocks - 1)
    ]
    for block in range(blocks):
        start = block * MAX_DATA_BYTES
        messages.append(
            SpinnakerBootMessage(
                SpinnakerBootOpCode.FLOOD_FILL_BLOCK,
                _BLOCK_OPERAND | (block & 0xFF),
                0,
                0,
                wire[start : start + MAX_DATA_BYTES],
            )
        )
    messages.append(
        SpinnakerBootMessage(SpinnakerBootOpCode.FLOOD_FILL_CONTROL, 1, 0, 0)
    )
    return messages


@dataclass(frozen=True)
class BootPlan:
    """A boot, ready to send: frames in order and the pacing, as data."""

    messages: tuple[SpinnakerBootMessage, ...]
    #: Seconds to leave between one frame and the next.
    gap: float = DEFAULT_FRAME_GAP
    #: Seconds after the last frame before SC&MP is worth asking.
    settle: float = BOOT_SETTLE

    def __post_init__(self) -> None:
        for name in ("gap", "settle"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or value < 0
            ):
                raise InvalidArgumentError(name, value, "must be seconds, 0 or more")
        if not self.messages:
            raise InvalidArgumentError("messages", (), "a boot sends some frames")

    @staticmethod
    def build(
        image: BootImage,
        values: SystemVariableBootValues,
        *,
        gap: float = DEFAULT_FRAME_GAP,
        settle: float = BOOT_SETTLE,
    ) -> BootPlan:
        return BootPlan(tuple(boot_messages(image, values)), gap, settle)

    @property
    def datagrams(self) -> tuple[bytes, ...]:
        return tuple(message.bytestring for message in self.messages)

    def schedule(self) -> Iterator[tuple[float, bytes]]:
        """(seconds from the first send, datagram), for every frame."""
        for index, message in enumerate(self.messages):
            yield index * self.gap, message.bytestring

    @property
    def duration(self) -> float:
        """Seconds from the first frame until SC&MP is worth asking."""
        return (len(self.messages) - 1) * self.gap + self.settle
