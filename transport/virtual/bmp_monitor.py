"""A Board Management Processor's behaviour, sans-IO: what it answers and
what it switches, datagrams and times in.

Theory of operation. A SpiNN-5 board's BMP answers SCP on its own address;
a request names the board it is for in the SDP destination CPU (the BMPs
of a frame pass commands for each other's boards over their CAN bus), and
a board that is not in the frame gets RC_ROUTE. The commands are those of
the BMP's ``bmp_cmd.c``: VER, BMP_INFO (serial, CAN status, ADC, IP),
FPGA register read and write, LED, RESET and POWER, each checked as the
BMP checks its arguments (RC_ARG) and each switching the boards of its
mask, one board every ``delay`` milliseconds times its number.

What a power or reset does to a board is the board's boot ROM's business
(transport/virtual/rom.py): off or held in reset, it is silent everywhere
and forgets what it held; powered on or let out of reset, it is back in its
ROM, unbooted. A power-on is answered only once the addressed board's
FPGAs are loaded: ``power_on_delay`` seconds (a real BMP takes seconds;
SpiNNMan waits up to BMP_POWER_ON_TIMEOUT), during which the BMP answers
nothing else. Sensors read as configured (SPINN5_SENSORS unless told); with
the power off, the board's own rails read 0 V. A temperature above
WARN_TEMPERATURE sets a warning bit, one above SHUTDOWN_TEMPERATURE a
shutdown bit and powers the board off (a real BMP waits for ten readings
in a row; this one acts on the first).

BMPMonitor is that BMP: ``handle`` gives each datagram's reply and when it
goes, ``advance`` switches the boards' ROMs when due. VirtualBMP
(transport/virtual/bmp.py) serves it on UDP.
"""

from __future__ import annotations

import heapq
import itertools
import struct
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

from messages.bmp import (
    BMP_MISSING_TEMP,
    BMP_NAME,
    BMP_TEMP_SCALE,
    CAN_STATUS_SIZE,
    N_FPGAS,
    N_LEDS,
    BMPInfo,
    BMPIPAddresses,
    BoardStat,
    IPData,
    SerialVector,
)
from messages.errors import MalformedDatagramError
from messages.scp.enums import SCPCommand, SCPResult
from messages.scp.header import SCPResponseHeader
from messages.scp.version import VersionInfo
from messages.sdp import SDPFlag, SDPHeader
from messages.validate import MAX_SCP_DATA
from transport.logs import get_logger
from transport.virtual.monitor import Reply

log = get_logger(__name__)

#: Seconds a power-on takes to answer (the FPGAs loading) unless told.
POWER_ON_DELAY = 0.05
#: Degrees Celsius above which a sensor warns, and shuts the board down.
#: (A real BMP's thresholds are in its EEPROM.)
WARN_TEMPERATURE = 70.0
SHUTDOWN_TEMPERATURE = 90.0
#: The BMP's identity: its software, and the build date it reports.
BMP_HARDWARE, BMP_VERSION = "Spin5-BMP", (2, 1, 2)
BUILD_DATE = 1_700_000_000
#: Where its Cortex boot vector is (CMD_VER reports it / 0x10000 in x).
CORTEX_VECTOR = 0x10000
_ADC_BASE = 0x10000400
_FLASH_BUFFER = 0x10000000
#: A SpiNN-5 at rest: 1.2 V rails x 3, 1.8 V, 3.3 V, 12 V supply (ADC
#: channels 0 and 5 unused), 40 and 38 degrees on its two on-board sensors,
#: no external sensors, no fans.
SPINN5_SENSORS = BoardStat(
    adc=(0xFFFF, 1966, 1966, 1966, 2949, 0xFFFF, 3604, 3277),
    t_int=(40 * 256, 38 * 256, BMP_MISSING_TEMP, BMP_MISSING_TEMP),
    t_ext=(BMP_MISSING_TEMP,) * 4,
    fan=(-1,) * 4,
)
#: ADC channels that read 0 V while the board is off (its own rails).
_RAILS = range(1, 5)
_UNUSED_ADC = 0xFFFF
#: The SCP command and sequence, and the three arguments, after SDP.
_COMMAND = struct.Struct("<2H")
_ARGS = struct.Struct("<3I")
_SDP_START, _COMMAND_START, _ARGS_START = 2, 10, 14
_DATA_START = _ARGS_START + _ARGS.size
_WORD = struct.Struct("<I")

Action = Literal["off", "on", "run", "hold", "release", "pulse"]
#: CMD_RESET's argument 1, low bits: what it does to the chips.
_RESETS: tuple[Action, ...] = ("release", "hold", "pulse")
Handler = Callable[[int, tuple[int, int, int], bytes, float], bytes]


class PowerSwitch(Protocol):
    """What a BMP switches on a board: its chips (a ROMServer)."""

    def halt(self) -> None: ...

    def run_rom(self) -> None: ...


@dataclass
class BoardSlot:
    """What a BMP knows and controls of one board of its frame."""

    chips: PowerSwitch
    #: The network settings of the board's Ethernet chip.
    spinnaker: IPData
    sensors: BoardStat = SPINN5_SENSORS
    powered: bool = True
    held: bool = False
    #: The shutdown bits that powered it off, until it is powered on.
    shutdown: int = 0
    leds: list[bool] = field(default_factory=lambda: [False] * N_LEDS)
    fpga: dict[tuple[int, int], int] = field(default_factory=dict)


@dataclass(frozen=True)
class BMPStats:
    """What a BMP has seen and done."""

    received: int
    replies: int
    malformed: int
    errors: dict[str, int]
    power_ons: int
    power_offs: int
    resets: int
    #: Boards it powered off for being too hot.
    shutdowns: int


def sensor_status(stat: BoardStat) -> tuple[int, int]:
    """The warning and shutdown bits of ``stat`` (bits 8-11: on-board
    temperatures, 12-15: external ones, as the BMP sets them)."""
    warning = shutdown = 0
    for base, readings in ((8, stat.t_int), (12, stat.t_ext)):
        for index, reading in enumerate(readings):
            if reading == BMP_MISSING_TEMP:
                continue
            celsius = reading * BMP_TEMP_SCALE
            warning |= (celsius > WARN_TEMPERATURE) << (base + index)
            shutdown |= (celsius > SHUTDOWN_TEMPERATURE) << (base + index)
    return warning, shutdown


class BMPMonitor:
    """The BMP of one frame's boards (``slots`` by board number), as a state
    machine: ``handle`` a datagram, ``advance`` to switch what is due."""

    def __init__(
        self,
        slots: Mapping[int, BoardSlot],
        *,
        ip: IPData,
        frame: int = 0,
        power_on_delay: float = POWER_ON_DELAY,
    ) -> None:
        self.slots = dict(slots)
        self.ip = ip
        self.frame = frame
        self.power_on_delay = power_on_delay
        self._switches: list[tuple[float, int, int, Action]] = []
        self._order = itertools.count()
        self._busy_until = 0.0
        self._reply_at = 0.0
        self._counts: Counter[str] = Counter()
        self._errors: Counter[str] = Counter()
        self._commands: dict[int, Handler] = {
            SCPCommand.CMD_VER.value: self._version,
            SCPCommand.CMD_BMP_INFO.value: self._info,
            SCPCommand.CMD_LINK_READ.value: self._fpga_read,
            SCPCommand.CMD_LINK_WRITE.value: self._fpga_write,
            SCPCommand.CMD_LED.value: self._led,
            SCPCommand.CMD_RESET.value: self._reset,
            SCPCommand.CMD_BMP_POWER.value: self._power,
        }

    # -- one datagram ----------------------------------------------------------

    def handle(self, data: bytes, now: float) -> tuple[float, bytes] | None:
        """The reply to one datagram and when it goes (None: no reply)."""
        self._counts["received"] += 1
        try:
            header = SDPHeader.from_bytestring(data, _SDP_START)
            command, sequence = _COMMAND.unpack_from(data, _COMMAND_START)
        except (MalformedDatagramError, struct.error):
            self._counts["malformed"] += 1
            return None
        self._reply_at = now
        result, payload = self._run(header.destination_cpu, command, data, now)
        if result is not SCPResult.RC_OK:
            self._errors[result.name] += 1
        if not header.flags.reply_expected:
            return None
        self._counts["replies"] += 1
        due = self._busy_until = max(self._reply_at, self._busy_until)
        reply = SDPHeader(
            SDPFlag.REPLY_NOT_EXPECTED,
            header.tag,
            header.source_port or 0,
            header.source_cpu or 0,
            header.source_chip_x or 0,
            header.source_chip_y or 0,
            header.destination_port,
            header.destination_cpu,
            header.destination_chip_x,
            header.destination_chip_y,
        )
        head = SCPResponseHeader(result, sequence)
        return due, bytes(2) + reply.bytestring + head.bytestring + payload

    def _run(
        self, board: int, command: int, data: bytes, now: float
    ) -> tuple[SCPResult, bytes]:
        if board not in self.slots:
            return SCPResult.RC_ROUTE, b""
        if len(data) < _DATA_START:
            return SCPResult.RC_LEN, b""
        handler = self._commands.get(command)
        if handler is None:
            return SCPResult.RC_CMD, b""
        arguments: tuple[int, int, int] = _ARGS.unpack_from(data, _ARGS_START)
        try:
            return SCPResult.RC_OK, handler(board, arguments, data[_DATA_START:], now)
        except Reply as reply:
            return reply.result, b""

    # -- what it says about itself ----------------------------------------------

    def _version(
        self, board: int, args: tuple[int, int, int], data: bytes, now: float
    ) -> bytes:
        version = ".".join(map(str, BMP_VERSION))
        return VersionInfo(
            BMP_NAME,
            BMP_HARDWARE,
            BMP_VERSION,
            version,
            BUILD_DATE,
            CORTEX_VECTOR >> 16,
            self.frame,
            board,
            physical_cpu_id=board,  # its CAN id
        ).to_bytes()

    def _info(
        self, board: int, args: tuple[int, int, int], data: bytes, now: float
    ) -> bytes:
        what = args[0]
        if what == BMPInfo.SERIAL.value:
            serial = (self.frame, board, 0, 0)
            stat_at = _ADC_BASE + board * len(SPINN5_SENSORS.to_bytes())
            return SerialVector(
                1, serial, _FLASH_BUFFER, stat_at, CORTEX_VECTOR
            ).to_bytes()
        if what == BMPInfo.CAN_STATUS.value:
            return bytes(int(n in self.slots) for n in range(CAN_STATUS_SIZE))
        if what == BMPInfo.ADC.value:
            return self.reading(board).to_bytes()
        if what == BMPInfo.IP_ADDR.value:
            return BMPIPAddresses(self.ip, self.slots[board].spinnaker).to_bytes()
        raise Reply(SCPResult.RC_ARG)

    def reading(self, board: int) -> BoardStat:
        """What ADC answers for ``board``: its sensors, its rails at 0 V
        while it is off, and its warning and shutdown bits."""
        slot = self.slots[board]
        stat = slot.sensors
        adc = stat.adc
        if not slot.powered:
            adc = tuple(
                0 if channel in _RAILS and value != _UNUSED_ADC else value
                for channel, value in enumerate(adc)
            )
        warning, _ = sensor_status(stat)
        return replace(stat, adc=adc, warning=warning, shutdown=slot.shutdown)

    def set_sensors(self, board: int, stat: BoardStat, now: float) -> None:
        """New readings for ``board``; too hot, it is powered off at once."""
        slot = self.slots[board]
        slot.sensors = stat
        self._check_heat(board, now)

    def _check_heat(self, board: int, now: float) -> None:
        slot = self.slots[board]
        _, shutdown = sensor_status(slot.sensors)
        if shutdown and slot.powered and not slot.shutdown:
            slot.shutdown = shutdown
            self._counts["shutdowns"] += 1
            self._switch(now, board, "off")
            log.warning("bmp.shutdown", board=board, bits=hex(shutdown))

    # -- FPGA registers and LEDs --------------------------------------------------

    def _fpga_span(self, args: tuple[int, int, int]) -> tuple[int, int, int]:
        address, length, fpga = args
        if length > MAX_SCP_DATA or fpga > N_FPGAS - 1:
            raise Reply(SCPResult.RC_ARG)
        return address & ~3, length, fpga

    def _fpga_read(
        self, board: int, args: tuple[int, int, int], data: bytes, now: float
    ) -> bytes:
        address, length, fpga = self._fpga_span(args)
        registers = self.slots[board].fpga
        words = b"".join(
            _WORD.pack(registers.get((fpga, (address + 4 * i) & 0xFFFF_FFFF), 0))
            for i in range(length // 4)
        )
        return words.ljust(length, b"\0")

    def _fpga_write(
        self, board: int, args: tuple[int, int, int], data: bytes, now: float
    ) -> bytes:
        address, length, fpga = self._fpga_span(args)
        if len(data) < length - length % 4:
            raise Reply(SCPResult.RC_LEN)
        slot = self.slots[board]
        if slot.powered:  # an FPGA with no power holds nothing
            for i in range(length // 4):
                where = (address + 4 * i) & 0xFFFF_FFFF
                slot.fpga[fpga, where] = _WORD.unpack_from(data, 4 * i)[0]
        return b""

    def _led(
        self, board: int, args: tuple[int, int, int], data: bytes, now: float
    ) -> bytes:
        actions, mask, _ = args
        for slot in self._masked(mask).values():
            for led in range(N_LEDS):
                action = actions >> (2 * led) & 3
                if action:  # 1 toggle, 2 off, 3 on
                    slot.leds[led] = not slot.leds[led] if action == 1 else action == 3
        return b""

    # -- power and resets -----------------------------------------------------------

    def _masked(self, mask: int) -> dict[int, BoardSlot]:
        return {n: slot for n, slot in self.slots.items() if mask >> n & 1}

    def _reset(
        self, board: int, args: tuple[int, int, int], data: bytes, now: float
    ) -> bytes:
        how, mask, _ = args
        if how & 0xFB > 2:
            raise Reply(SCPResult.RC_ARG)
        action = _RESETS[how & 3]
        step = (how >> 16) / 1000.0
        for number, slot in self._masked(mask).items():
            if how & 4:
                slot.fpga.clear()
            self._switch(now + step * number, number, action)
        self._counts["resets"] += 1
        return b""

    def _power(
        self, board: int, args: tuple[int, int, int], data: bytes, now: float
    ) -> bytes:
        how, mask, _ = args
        if how & 0xFF > 1:
            raise Reply(SCPResult.RC_ARG)
        on = bool(how & 1)
        step = (how >> 16) / 1000.0
        for number in self._masked(mask):
            at = now + step * number
            if on:
                self._switch(at, number, "on")
                self._switch(at + self.power_on_delay, number, "run")
            else:
                self._switch(at, number, "off")
            if number == board:  # it answers once its own switch is done
                self._reply_at = at + (self.power_on_delay if on else 0.0)
        return b""

    def _switch(self, at: float, board: int, action: Action) -> None:
        heapq.heappush(self._switches, (at, next(self._order), board, action))

    @property
    def next_due(self) -> float | None:
        """When the next switch is due."""
        return self._switches[0][0] if self._switches else None

    def advance(self, now: float) -> int:
        """Switch what is due by ``now``; how many switches that was."""
        done = 0
        while self._switches and self._switches[0][0] <= now:
            _, _, board, action = heapq.heappop(self._switches)
            self._apply(board, action, now)
            done += 1
        return done

    def _apply(self, board: int, action: Action, now: float) -> None:
        slot = self.slots[board]
        if action == "off" and slot.powered:
            slot.powered = slot.held = False
            slot.fpga.clear()
            slot.chips.halt()
            self._counts["power_offs"] += 1
        elif action == "on":  # power (again): the chips held while FPGAs load
            slot.powered, slot.held, slot.shutdown = True, True, 0
            slot.fpga.clear()
            slot.chips.halt()
            self._counts["power_ons"] += 1
            self._check_heat(board, now)
        elif not slot.powered:
            return
        elif action == "hold":
            slot.held = True
            slot.chips.halt()
        elif action in ("run", "pulse") or (action == "release" and slot.held):
            slot.held = False
            slot.chips.run_rom()
        log.info("bmp.switch", board=board, action=action, powered=slot.powered)

    @property
    def stats(self) -> BMPStats:
        counts = self._counts
        return BMPStats(
            received=counts["received"],
            replies=counts["replies"],
            malformed=counts["malformed"],
            errors=dict(self._errors),
            power_ons=counts["power_ons"],
            power_offs=counts["power_offs"],
            resets=counts["resets"],
            shutdowns=counts["shutdowns"],
        )
