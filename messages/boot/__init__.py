"""Booting a board: boot frames, the boot image and its system variables.

Frames and values are SpiNNMan's (the same bytes for the same image, values
and time); the time is always an argument, since this layer reads no clock.
"""

from messages.boot.frames import (
    BOOT_HEADER,
    BOOT_MESSAGE_VERSION,
    BOOT_PORT,
    MAX_DATA_BYTES,
    MAX_DATA_WORDS,
    SpinnakerBootMessage,
    SpinnakerBootOpCode,
    swap_words,
)
from messages.boot.image import (
    BOOT_SETTLE,
    DEFAULT_FRAME_GAP,
    MAX_IMAGE_BYTES,
    SYSTEM_VARIABLES_OFFSET,
    BootImage,
    BootImageError,
    BootPlan,
    boot_messages,
    spinnman_image_path,
)
from messages.boot.sysvars import (
    BOOT_BLOCK_SIZE,
    SPINN5_HARDWARE_VERSION,
    SPINN5_LED_0,
    SYSTEM_VARIABLES_SIZE,
    SystemVariableBootValues,
    SystemVariableDefinition,
    boot_values,
)

__all__ = [
    "BOOT_BLOCK_SIZE",
    "BOOT_HEADER",
    "BOOT_MESSAGE_VERSION",
    "BOOT_PORT",
    "BOOT_SETTLE",
    "DEFAULT_FRAME_GAP",
    "MAX_DATA_BYTES",
    "MAX_DATA_WORDS",
    "MAX_IMAGE_BYTES",
    "SPINN5_HARDWARE_VERSION",
    "SPINN5_LED_0",
    "SYSTEM_VARIABLES_OFFSET",
    "SYSTEM_VARIABLES_SIZE",
    "BootImage",
    "BootImageError",
    "BootPlan",
    "SpinnakerBootMessage",
    "SpinnakerBootOpCode",
    "SystemVariableBootValues",
    "SystemVariableDefinition",
    "boot_messages",
    "boot_values",
    "spinnman_image_path",
    "swap_words",
]
