"""A board's boot ROM: what listens on UDP 54321 of a board fresh from power-on.

Theory of operation. After power-on or a reset a SpiNNaker board's Ethernet
chip runs only its boot ROM. SC&MP, the monitor that answers SCP, is not
there until a host sends its image as boot frames (messages.boot) and says
run it; the ROM never replies. Until then it says hello every few seconds,
from port 54321 to port 54321, so that a host can find it. Its state is
never reset but by losing power (or a reset):

- LISTENING: powered, no image announced. START announces one (its number
  of blocks) and moves to LOADING; a BLOCK or CONTROL now is stray.
- LOADING: each BLOCK numbered below the count is taken once (a block
  already held is never replaced; a second START is ignored); CONTROL runs
  the image once every block is in, and does nothing before.
- BOOTED: the image ran: SC&MP is up and the ROM is done (it takes no more
  frames and says no more hellos).
- OFF: no power, or chips held in reset: it hears and says nothing.

A datagram that arrives less than ``min_gap`` seconds after the last frame
it took is lost, as a real ROM busy with one frame loses the next. Garbage
is counted, never raised.

BootROM is that machine, sans-IO: datagrams and times in, the image it ran
and hello frames out. ROMServer serves it on the board's address, port
54321, on a thread of its own, and switches its board's SC&MP: on when the
image runs (version then says chip (255, 255) for ``netinit`` seconds, as
SC&MP's does while it sets up its network), off with its memory gone when
the power goes or the chips are reset.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from enum import Enum
from typing import Protocol, TypeVar

from messages.boot import (
    BOOT_PORT,
    MAX_IMAGE_BYTES,
    SYSTEM_VARIABLES_OFFSET,
    SpinnakerBootMessage,
    SpinnakerBootOpCode,
    SystemVariableBootValues,
    swap_words,
)
from messages.boot.sysvars import BOOT_BLOCK_SIZE, SystemVariableDefinition
from messages.errors import InvalidArgumentError, MalformedDatagramError
from transport.errors import ConnectionClosed, ReceiveTimeout, TransportError
from transport.links.endpoint import Address, DatagramEndpoint, UDPEndpoint
from transport.links.faults import FaultPlan, FaultyEndpoint
from transport.links.in_process import MemoryNetwork
from transport.logs import get_logger
from transport.virtual.monitor import BoardMonitor
from transport.virtual.served import ServedEndpoint

log = get_logger(__name__)
T = TypeVar("T")

#: Seconds between a cold board's hellos (a real board's, about).
HELLO_INTERVAL = 4.1
#: Seconds SC&MP says chip (255, 255) after the image runs, while it sets up
#: its network. A real SpiNN-5's takes about a second or two (SpiNNMan
#: waits 2 s after a boot, then asks until the position is real); the
#: virtual board's is short so that tests are.
NETINIT = 0.1
#: Where a cold board says hello unless told: a listener on this machine.
HELLO_TO = "127.0.0.1"
#: The most blocks a ROM takes (its DTCM holds 32 KiB).
MAX_BLOCKS = MAX_IMAGE_BYTES // 1024
#: What a ROM says every few seconds.
HELLO = SpinnakerBootMessage(SpinnakerBootOpCode.HELLO, 0, 0, 0).bytestring
_OP = SpinnakerBootOpCode


class ROMState(Enum):
    """Where a board's boot ROM is (see the module's docstring)."""

    OFF = "off"
    LISTENING = "listening"
    LOADING = "loading"
    BOOTED = "booted"


def _seconds(name: str, value: object, *, positive: bool = False) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
        or (positive and value == 0)
    ):
        more = "more than 0" if positive else "0 or more"
        raise InvalidArgumentError(name, value, f"must be seconds, {more}")
    return float(value)


@dataclass(frozen=True)
class ROMSettings:
    """How a virtual board's boot ROM behaves.

    ``hello_to``: the host its hellos go to (port 54321), None for none;
    ``hello_interval``: seconds between them; ``min_gap``: frames closer
    than this to the last one taken are lost (0: none are); ``netinit``:
    seconds SC&MP says chip (255, 255) after the image runs; ``faults``: a
    FaultPlan for the boot frames it receives (drop, duplicate, reorder).
    """

    hello_to: str | None = HELLO_TO
    hello_interval: float = HELLO_INTERVAL
    min_gap: float = 0.0
    netinit: float = NETINIT
    faults: FaultPlan | None = None

    def __post_init__(self) -> None:
        _seconds("hello_interval", self.hello_interval, positive=True)
        _seconds("min_gap", self.min_gap)
        _seconds("netinit", self.netinit)


@dataclass(frozen=True)
class BootRecord:
    """What a board was booted with: the image as it ran (little-endian, as
    the file, system variables in place) and those variables."""

    image: bytes
    n_blocks: int
    #: The booted system-variable block, decoded; None if the image was too
    #: short to hold one.
    values: SystemVariableBootValues | None
    #: When CONTROL ran it (the server's clock).
    at: float

    @property
    def length(self) -> int:
        return len(self.image)

    @property
    def hardware_version(self) -> int | None:
        return self._int(SystemVariableDefinition.hardware_version)

    @property
    def unix_time(self) -> int | None:
        return self._int(SystemVariableDefinition.unix_timestamp)

    def _int(self, variable: SystemVariableDefinition) -> int | None:
        value = None if self.values is None else self.values[variable]
        return value if isinstance(value, int) else None

    def __repr__(self) -> str:
        return (
            f"BootRecord({self.length} bytes in {self.n_blocks} blocks, "
            f"hardware {self.hardware_version}, time {self.unix_time})"
        )


@dataclass
class ROMCounts:
    """What a ROM has heard and said, since it was made."""

    #: Every datagram that reached port 54321.
    datagrams: int = 0
    #: Boot frames it took (that changed or could change its state).
    frames: int = 0
    #: Datagrams that are no boot frame.
    garbage: int = 0
    #: Datagrams lost for coming too soon after the last frame taken.
    gap_drops: int = 0
    #: Datagrams that came while it was off or held in reset.
    off_drops: int = 0
    #: A START while loading (the first one stands).
    ignored_starts: int = 0
    #: A BLOCK it already held (the first one stands).
    repeated_blocks: int = 0
    #: A BLOCK before any START, or numbered past the count; a START of
    #: more than 32 blocks.
    stray: int = 0
    #: CONTROL before every block was in (it does nothing).
    early_controls: int = 0
    #: Hellos heard, and frames after the image ran.
    ignored: int = 0
    #: Hellos it said, and hellos the OS would not send.
    hellos: int = 0
    send_failures: int = 0
    #: Images it ran, and times it was powered on (or let out of reset).
    boots: int = 0
    power_ons: int = 0


@dataclass
class ROMStats(ROMCounts):
    """A snapshot (a copy) of a boot ROM: its state, its counts, and the
    last boot."""

    state: ROMState = ROMState.OFF
    #: The blocks the START it took announced (None: no START yet).
    blocks_expected: int | None = None
    blocks_held: int = 0
    #: What the last boot ran (kept across power cycles, for tests).
    booted: BootRecord | None = None

    @property
    def values(self) -> SystemVariableBootValues | None:
        """The system variables of the last boot."""
        return None if self.booted is None else self.booted.values


Rule = Callable[["BootROM", SpinnakerBootMessage, float], "BootRecord | None"]


class BootROM:
    """A board's boot ROM as a state machine: ``receive`` each datagram with
    the time it came; ``hello`` says when a hello is due. ``booted`` starts
    it as a ROM whose image already ran (SC&MP is up)."""

    def __init__(
        self,
        *,
        min_gap: float = 0.0,
        hello_interval: float = HELLO_INTERVAL,
        booted: bool = False,
        now: float = 0.0,
    ) -> None:
        self.min_gap = _seconds("min_gap", min_gap)
        self.hello_interval = _seconds("hello_interval", hello_interval, positive=True)
        self.counts = ROMCounts()
        self.state = ROMState.BOOTED if booted else ROMState.OFF
        self.record: BootRecord | None = None
        self._blocks: dict[int, bytes] = {}
        self._expected: int | None = None
        self._last_taken: float | None = None
        self._next_hello = now
        if not booted:
            self.power_on(now)

    # -- power -------------------------------------------------------------

    def power_on(self, now: float) -> None:
        """Powered on, or let out of reset: listening, holding nothing, and
        saying hello at once."""
        self.state = ROMState.LISTENING
        self._blocks = {}
        self._expected = None
        self._last_taken = None
        self._next_hello = now
        self.counts.power_ons += 1

    def halt(self) -> None:
        """No power, or chips held in reset: deaf and mute."""
        self.state = ROMState.OFF
        self._blocks = {}
        self._expected = None

    # -- frames ------------------------------------------------------------

    def receive(self, datagram: bytes, now: float) -> BootRecord | None:
        """Take one datagram that reached port 54321 at ``now``; what the
        image ran with, if this was the CONTROL that ran it."""
        counts = self.counts
        counts.datagrams += 1
        if self.state is ROMState.OFF:
            counts.off_drops += 1
            return None
        if self.state is ROMState.BOOTED:
            counts.ignored += 1
            return None
        if self._last_taken is not None and now - self._last_taken < self.min_gap:
            counts.gap_drops += 1
            return None
        try:
            frame = SpinnakerBootMessage.from_bytestring(datagram)
        except MalformedDatagramError:
            counts.garbage += 1
            return None
        if frame.opcode is _OP.HELLO:
            counts.ignored += 1
            return None
        self._last_taken = now
        counts.frames += 1
        return _RULES[self.state, frame.opcode](self, frame, now)

    def _start(self, frame: SpinnakerBootMessage, now: float) -> None:
        blocks = frame.operand_3 + 1
        if blocks > MAX_BLOCKS:
            self.counts.stray += 1
            return
        self._expected = blocks
        self.state = ROMState.LOADING

    def _second_start(self, frame: SpinnakerBootMessage, now: float) -> None:
        self.counts.ignored_starts += 1

    def _stray(self, frame: SpinnakerBootMessage, now: float) -> None:
        self.counts.stray += 1

    def _block(self, frame: SpinnakerBootMessage, now: float) -> None:
        assert self._expected is not None
        number = frame.block
        if number >= self._expected:
            self.counts.stray += 1
        elif number in self._blocks:
            self.counts.repeated_blocks += 1
        else:
            self._blocks[number] = frame.data or b""

    def _early_control(self, frame: SpinnakerBootMessage, now: float) -> None:
        self.counts.early_controls += 1

    def _control(self, frame: SpinnakerBootMessage, now: float) -> BootRecord | None:
        assert self._expected is not None
        if len(self._blocks) < self._expected:
            self.counts.early_controls += 1
            return None
        wire = b"".join(self._blocks[block] for block in range(self._expected))
        image = swap_words(wire)
        end = SYSTEM_VARIABLES_OFFSET + BOOT_BLOCK_SIZE
        values = (
            SystemVariableBootValues.from_bytestring(image[SYSTEM_VARIABLES_OFFSET:end])
            if len(image) >= end
            else None
        )
        self.record = BootRecord(image, self._expected, values, now)
        self.state = ROMState.BOOTED
        self.counts.boots += 1
        return self.record

    # -- hellos ------------------------------------------------------------

    @property
    def next_hello(self) -> float | None:
        """When the next hello is due (None: it says none now)."""
        if self.state in (ROMState.LISTENING, ROMState.LOADING):
            return self._next_hello
        return None

    def hello(self, now: float) -> bytes | None:
        """The hello frame to send now, if one is due."""
        due = self.next_hello
        if due is None or now < due:
            return None
        self._next_hello = max(due + self.hello_interval, now)
        self.counts.hellos += 1
        return HELLO

    # -- what it holds -----------------------------------------------------

    def stats(self) -> ROMStats:
        return ROMStats(
            **asdict(self.counts),
            state=self.state,
            blocks_expected=self._expected,
            blocks_held=len(self._blocks),
            booted=self.record,
        )


_RULES: dict[tuple[ROMState, SpinnakerBootOpCode], Rule] = {
    (ROMState.LISTENING, _OP.FLOOD_FILL_START): BootROM._start,
    (ROMState.LISTENING, _OP.FLOOD_FILL_BLOCK): BootROM._stray,
    (ROMState.LISTENING, _OP.FLOOD_FILL_CONTROL): BootROM._early_control,
    (ROMState.LOADING, _OP.FLOOD_FILL_START): BootROM._second_start,
    (ROMState.LOADING, _OP.FLOOD_FILL_BLOCK): BootROM._block,
    (ROMState.LOADING, _OP.FLOOD_FILL_CONTROL): BootROM._control,
}


# -- the ROM on a socket ---------------------------------------------------------

#: How long the server's loop waits for a datagram when nothing is due.
_IDLE_WAIT = 0.1


class Bootable(Protocol):
    """What a boot ROM switches in its board: whether SC&MP answers, its
    monitor (for the (255, 255) phase), and forgetting all it held."""

    booted: bool

    @property
    def monitor(self) -> BoardMonitor: ...

    def forget(self) -> None: ...


def first_free_loopback(bind: Callable[[str], T], start: int = 2) -> T:
    """``bind(host)`` on the first 127.0.0.x, from ``start``, where it
    works: every boot ROM listens on port 54321, so cold boards side by side
    on one machine each need an address of their own."""
    errors = []
    for last in range(start, 255):
        host = f"127.0.0.{last}"
        try:
            return bind(host)
        except (OSError, TransportError) as error:
            errors.append(f"{host}: {error}")
    raise TransportError(f"no loopback address with port {BOOT_PORT} free: {errors}")


def _bind(host: str) -> UDPEndpoint:
    try:
        return UDPEndpoint(host, BOOT_PORT)
    except TransportError as error:
        raise TransportError(
            f"{error}: a boot ROM listens on port {BOOT_PORT}, so each cold "
            f"board needs an address of its own (127.0.0.2, 127.0.0.3, ...)"
        ) from error


class ROMServer(ServedEndpoint):
    """A board's boot ROM on UDP ``host``:54321 (or port 54321 of an
    in-memory network, where it says no hellos), on a thread of its own.

    ``booted`` makes it a ROM whose image already ran: it waits, deaf,
    for the power to go (``halt``) and come back (``run_rom``), which is
    what a BMP does to it.
    """

    kind = "boot ROM"
    thread_prefix = "rom"

    def __init__(
        self,
        board: Bootable,
        host: str,
        settings: ROMSettings | None = None,
        *,
        booted: bool = False,
        network: MemoryNetwork | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings = settings or ROMSettings()
        endpoint: DatagramEndpoint = (
            network.endpoint(BOOT_PORT) if network is not None else _bind(host)
        )
        self._hello_to: Address | None = None
        if settings.hello_to is not None and network is None:
            try:
                self._hello_to = (endpoint.resolve(settings.hello_to), BOOT_PORT)
            except TransportError:
                endpoint.close()
                raise
        if settings.faults is not None and settings.faults.active:
            endpoint = FaultyEndpoint(
                endpoint, settings.faults, sides="receive", clock=clock
            )
        self._endpoint = endpoint
        self._board = board
        self._clock = clock
        self.rom = BootROM(
            min_gap=settings.min_gap,
            hello_interval=settings.hello_interval,
            booted=booted,
            now=clock(),
        )
        board.booted = booted
        self._changed = threading.Condition()
        self._netinit_due: float | None = None
        super().__init__()
        self._log = log.bind(rom=self.address_text)

    @property
    def stats(self) -> ROMStats:
        with self._changed:
            return self.rom.stats()

    def wait_until(self, condition: Callable[[ROMStats], bool], timeout: float) -> bool:
        """Whether ``condition`` of the ROM's stats held within ``timeout``
        seconds (checked at each change: a datagram, a hello, power)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition(self.rom.stats()):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                # Checked again now and then too: a condition may read more
                # than the ROM (what a fault plan dropped before it).
                self._changed.wait(min(left, _IDLE_WAIT))
            return True

    # -- power: what a BMP does to the board ---------------------------------

    def halt(self) -> None:
        """The power went, or the chips are held in reset: SC&MP and the ROM
        are silent, and everything the board held is gone."""
        with self._changed:
            self.rom.halt()
            self._board.booted = False
            self._board.forget()
            self._netinit_due = None
            self._changed.notify_all()
        self._log.info("rom.halted")

    def run_rom(self) -> None:
        """Powered on, or let out of reset: back in the ROM, unbooted, with
        nothing held."""
        with self._changed:
            self._board.booted = False
            self._board.forget()
            self._netinit_due = None
            self.rom.power_on(self._clock())
            self._changed.notify_all()
        self._log.info("rom.running")

    # -- running -------------------------------------------------------------

    def serve_forever(self) -> None:
        """Take frames and say hellos until stop() or the endpoint closes."""
        endpoint, clock = self._endpoint, self._clock
        try:
            while not self._stopping.is_set():
                self._tick(clock())
                try:
                    data, _ = endpoint.receive_from(self._wait(clock()))
                except ReceiveTimeout:
                    continue
                self._take(data, clock())
        except ConnectionClosed:
            pass

    def _wait(self, now: float) -> float:
        with self._changed:
            dues = [self.rom.next_hello if self._hello_to else None, self._netinit_due]
        wait = min((due - now for due in dues if due is not None), default=_IDLE_WAIT)
        return min(max(wait, 0.0), _IDLE_WAIT)

    def _tick(self, now: float) -> None:
        """Say a hello if one is due; end the (255, 255) phase if it is over."""
        hello = None
        with self._changed:
            if self._netinit_due is not None and now >= self._netinit_due:
                self._netinit_due = None
                self._board.monitor.position_known = True
                self._changed.notify_all()
            if self._hello_to is not None:
                hello = self.rom.hello(now)
        if hello is None or self._hello_to is None:
            return
        try:
            self._endpoint.send_to(hello, self._hello_to)
        except ConnectionClosed:
            raise
        except TransportError as error:
            with self._changed:
                self.rom.counts.send_failures += 1
            self._log.warning("rom.hello_failed", to=self._hello_to, error=str(error))
        with self._changed:
            self._changed.notify_all()

    def _take(self, data: bytes, now: float) -> None:
        with self._changed:
            record = self.rom.receive(data, now)
            if record is not None:
                netinit = self.settings.netinit
                self._board.monitor.position_known = not netinit
                self._netinit_due = now + netinit if netinit else None
                self._board.booted = True
            self._changed.notify_all()
        if record is not None:
            self._log.info("rom.booted", record=repr(record))

    def __repr__(self) -> str:
        return f"ROMServer({self.address_text}, {self.rom.state.value})"
