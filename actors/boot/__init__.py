"""Cold boards: booting them as bounded work, powering them through their
BMPs, reading their sensors.

The stages of a boot are a sans-IO state machine (stages.py) driven by a
thin layer of I/O (driver.py); a board's API (``Client.boot()``,
``connect(host, boot=...)``) and a Machine (all its boards at once) use
them. bmp.py asks a frame's BMP for power and sensors; sensors.py keeps
the BMPs whose sensors /metrics exports; recovery.py power-cycles and
boots a lost board again (opt-in).
"""

from actors.boot.bmp import (
    COUNTS,
    BMPRefused,
    BMPSilent,
    bmp_version,
    boards_text,
    frame_boards,
    power_boards,
    read_sensors,
    set_power,
)
from actors.boot.driver import (
    BoardBoot,
    BootReport,
    MachineBootError,
    boot_board,
    boot_boards,
)
from actors.boot.options import (
    DEFAULT_DEADLINE,
    BoardBMP,
    BootOptions,
    parse_bmp,
    parse_boards,
)
from actors.boot.recovery import Recovery
from actors.boot.sensors import BMPWatch, read_watched, watch_bmp
from actors.boot.stages import BootError, BootSequence, BootStage

__all__ = [
    "COUNTS",
    "DEFAULT_DEADLINE",
    "BMPRefused",
    "BMPSilent",
    "BMPWatch",
    "BoardBMP",
    "BoardBoot",
    "BootError",
    "BootOptions",
    "BootReport",
    "BootSequence",
    "BootStage",
    "MachineBootError",
    "Recovery",
    "bmp_version",
    "boards_text",
    "boot_board",
    "boot_boards",
    "frame_boards",
    "parse_bmp",
    "parse_boards",
    "power_boards",
    "read_sensors",
    "read_watched",
    "set_power",
    "watch_bmp",
]
