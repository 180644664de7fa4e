"""Application cores as a seam for tests: Python stand-ins for the images a
host loads.

The virtual board cannot run ARM code. When a host starts an image on
cores (CMD_AR on a chip, or CMD_APP_COPY_RUN after the image is copied
from the chip's parent), the board runs the stand-in registered for that
image on each core: an object whose hooks see the start, the signals and
the SDP sent to the core's ports, and which can change the core's state,
write IOBUF text and send SDP to the host through an IP tag. An image no
one registered gets StandIn itself: it runs (or waits for START when
loaded to wait), follows the signals and says nothing.

Hooks run on the board's thread, inside the request that caused them; what
a stand-in sends goes out after the reply to that request.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

from messages.scp.app import (
    APP_ID_SHIFT,
    CHECKSUM_MASK,
    CHECKSUM_SHIFT,
    COPY_LINK_MASK,
    CORE_MASK,
    NN_CMD_SIG0,
    NN_COMMAND_SHIFT,
    SIG0_APP,
    SIG0_OP_SHIFT,
    WAIT_FLAG,
    image_checksum,
    signal_fields,
)
from messages.scp.enums import CPUState, SCPResult, Signal, SignalType
from messages.scp.layout import PADDING, SDP_OFFSET
from messages.sdp import SDP_HEADER_SIZE, SDPFlag, SDPHeader
from messages.spinnaker.chip import RTE_ABORT, SDRAM_BASE, SDRAM_SIZE, SDRAM_SYS
from messages.spinnaker.router import N_LINKS
from transport.links.endpoint import Address
from transport.logs import get_logger
from transport.virtual.cores import IOBufs, VCPUs
from transport.virtual.monitor import BoardMonitor, Reply, arguments
from transport.virtual.router import Routers
from transport.virtual.sdram import MemoryFull, SDRAMHeap
from transport.virtual.traffic import sdp_to_host

log = get_logger(__name__)
T = TypeVar("T")
#: The most an image can be: from sv->sdram_sys to the top of SDRAM.
_MAX_IMAGE = SDRAM_BASE + SDRAM_SIZE - SDRAM_SYS
_WORD = struct.Struct("<I")
#: What a core's state becomes on a signal, if it was in the first state.
_DEFAULT_SIGNALS: dict[Signal, tuple[tuple[CPUState, ...], CPUState]] = {
    Signal.START: ((CPUState.READY,), CPUState.RUNNING),
    Signal.SYNC0: ((CPUState.SYNC0,), CPUState.RUNNING),
    Signal.SYNC1: ((CPUState.SYNC1,), CPUState.RUNNING),
    Signal.PAUSE: ((CPUState.RUNNING,), CPUState.PAUSED),
    Signal.CONTINUE: ((CPUState.PAUSED,), CPUState.RUNNING),
    Signal.EXIT: (tuple(CPUState), CPUState.FINISHED),
}


class Core:
    """One application core, as its stand-in (or a test) sees it."""

    def __init__(self, applications: Applications, x: int, y: int, p: int) -> None:
        self._apps = applications
        self._chip = x << 8 | y
        self.x, self.y, self.p = x, y, p

    @property
    def state(self) -> CPUState:
        """The state in the core's VCPU block (what COUNT and hosts see)."""
        return self._apps.vcpus.state(self._chip, self.p)

    @state.setter
    def state(self, state: CPUState) -> None:
        self._apps.vcpus.set(self._chip, self.p, "cpu_state", state.value)

    @property
    def app_id(self) -> int:
        return int(self._apps.vcpus.get(self._chip, self.p, "app_id"))

    @property
    def iobuf(self) -> str:
        """The text the core has written to its IOBUF."""
        return self._apps.iobufs.text(self._chip, self.p)

    def print(self, text: str) -> None:
        """Write ``text`` to the core's IOBUF, as io_printf(IO_BUF, ...)."""
        self._apps.iobufs.write(self._chip, self.p, text.encode("ascii", "replace"))

    def send(self, tag: int, payload: bytes, port: int = 1) -> bool:
        """Send SDP from port ``port`` to the host IP tag ``tag`` points at;
        False (and counted in ``dropped``) if no tag is set there."""
        return self._apps.send(tag, (self.x, self.y, self.p), port, payload)

    def __repr__(self) -> str:
        return f"Core({self.x}, {self.y}, {self.p}, {self.state.name})"


class StandIn:
    """What runs on a virtual core in place of an application's binary.

    Override the hooks; each gets the Core it runs on. The defaults run
    (or wait for START), follow the signals as a spin1 application's states
    do, and answer no SDP.
    """

    #: The application's name in the core's VCPU block (16 bytes at most).
    name = "stand-in"

    def on_start(self, core: Core, wait: bool) -> None:
        """The core has started the image (loaded to wait for START, or not)."""
        core.state = CPUState.READY if wait else CPUState.RUNNING

    def on_signal(self, core: Core, signal: Signal) -> None:
        """A signal reached the core (not INIT, POWER_DOWN or STOP, which
        end the application)."""
        change = _DEFAULT_SIGNALS.get(signal)
        if change is not None and core.state in change[0]:
            core.state = change[1]

    def on_sdp(self, core: Core, port: int, data: bytes) -> bytes | None:
        """SDP from the host to ``port``: the data of the reply, or None."""
        return None

    def on_stop(self, core: Core) -> None:
        """The application is being stopped (its memory is freed next)."""


#: Makes the stand-in for one core.
StandInFactory = Callable[[], StandIn]
#: The chip over a link from a chip (x << 8 | y), or None.
Neighbour = Callable[[int, int], int | None]


class Applications:
    """The stand-ins a board runs, and the commands that start, signal and
    stop them: CMD_AR, CMD_APP_COPY_RUN, CMD_SIG, CMD_NNP."""

    def __init__(
        self,
        monitor: BoardMonitor,
        vcpus: VCPUs,
        iobufs: IOBufs,
        routers: Routers,
        system_heaps: Mapping[int, SDRAMHeap],
        neighbour: Neighbour,
        root: int,
    ) -> None:
        self.monitor = monitor
        self.vcpus, self.iobufs, self.routers = vcpus, iobufs, routers
        self._system_heaps = system_heaps
        self._neighbour = neighbour
        self._root = root
        self._images: list[tuple[bytes, StandInFactory]] = []
        #: The stand-in running on each (chip, core).
        self.running: dict[tuple[int, int], StandIn] = {}
        #: Sends to a tag that was not set.
        self.dropped = 0

    def register(self, image: bytes, stand_in: StandInFactory = StandIn) -> None:
        """Run ``stand_in()`` on each core a host starts ``image`` on."""
        if not image:
            raise ValueError("image: a stand-in needs the image's bytes to know it")
        self._images.append((bytes(image), stand_in))
        self._images.sort(key=lambda item: -len(item[0]))

    def core(self, x: int, y: int, p: int) -> Core:
        """Application core (x, y, p), to look at or drive from a test."""
        if not 0 < p < self.vcpus.cores.get(x << 8 | y, 0):
            raise ValueError(f"core {x},{y},{p} is not an application core")
        return Core(self, x, y, p)

    def send(
        self, tag: int, source: tuple[int, int, int], port: int, payload: bytes
    ) -> bool:
        entry = self.monitor.forward_tags.get(tag)
        if entry is None:
            self.dropped += 1
            return False
        datagram = sdp_to_host(tag, source, port, payload, strip=entry.strip)
        self.monitor.outbox.append(
            (datagram, (socket.inet_ntoa(entry.host), entry.port))
        )
        return True

    # -- starting ----------------------------------------------------------------

    def run_command(self, data: bytes, chip: int, core: int, sender: Address) -> bytes:
        """CMD_AR: start the image at sv->sdram_sys on the cores in arg1."""
        mask = arguments(data)[0]
        if mask & 1:
            raise Reply(SCPResult.RC_ARG)  # the monitor cannot be reset
        self.start(chip, mask)
        return b""

    def copy_run_command(
        self, data: bytes, chip: int, core: int, sender: Address
    ) -> bytes:
        """CMD_APP_COPY_RUN: copy the image from the chip over a link, check
        its sum, then start it as CMD_AR does."""
        argument_1, length, mask = arguments(data)
        link = argument_1 & COPY_LINK_MASK
        if mask & 1 or link >= N_LINKS or length % 4 or length > _MAX_IMAGE:
            raise Reply(SCPResult.RC_ARG)
        source = self._neighbour(chip, link)
        if source is None:
            raise Reply(SCPResult.RC_TIMEOUT)  # nothing answers on that link
        image = self.monitor.memory.read(source, SDRAM_SYS, length) if length else b""
        try:
            self.monitor.memory.write(chip, SDRAM_SYS, image)
        except MemoryFull:
            raise Reply(SCPResult.RC_BUF) from None
        checksum = (argument_1 >> CHECKSUM_SHIFT) & CHECKSUM_MASK
        if checksum and image_checksum(image) != checksum:
            raise Reply(SCPResult.RC_SUM, _WORD.pack(image_checksum(image)))
        self.start(chip, mask)
        return b""

    def load(
        self,
        stand_in: StandInFactory,
        cores: Iterable[tuple[int, int, int]],
        app_id: int,
        *,
        wait: bool = False,
    ) -> list[Core]:
        """Start ``stand_in()`` on ``cores`` (x, y, p) as ``app_id``, as if a
        host had loaded its image there (for tests that load nothing)."""
        if not 0 <= app_id <= 0xFF:
            raise ValueError(f"app_id {app_id}: must be in 0..255")
        started = [self.core(x, y, p) for x, y, p in cores]
        masks: dict[int, int] = {}
        for core in started:
            chip = core.x << 8 | core.y
            masks[chip] = masks.get(chip, 0) | 1 << core.p
        for chip, mask in masks.items():
            flags = app_id << APP_ID_SHIFT | (WAIT_FLAG if wait else 0)
            self.start(chip, mask | flags, stand_in)
        return started

    def start(
        self, chip: int, mask: int, factory: StandInFactory | None = None
    ) -> None:
        """Start the image at sv->sdram_sys (or ``factory``'s stand-in) on
        the cores of ``mask``."""
        app_id, wait = mask >> APP_ID_SHIFT, bool(mask & WAIT_FLAG)
        if factory is None:
            factory = self._stand_in_for(chip)
        for core in range(1, self.vcpus.cores.get(chip, 0)):
            if mask & CORE_MASK & (1 << core):
                stand_in = factory()
                self.running[chip, core] = stand_in
                self.vcpus.reset(
                    chip, core, CPUState.INITIALISING, app_id, stand_in.name.encode()
                )
                self._hook(chip, core, stand_in.on_start, wait)

    def _stand_in_for(self, chip: int) -> StandInFactory:
        for image, factory in self._images:
            if self.monitor.memory.read(chip, SDRAM_SYS, len(image)) == image:
                return factory
        return StandIn

    def _core(self, chip: int, core: int) -> Core:
        return Core(self, chip >> 8, chip & 0xFF, core)

    def _hook(
        self, chip: int, core: int, hook: Callable[..., T], *args: object
    ) -> T | None:
        """Run a stand-in's hook on its core. One that raises stops the core
        as an application's abort does (RUN_TIME_EXCEPTION), never the board."""
        try:
            return hook(self._core(chip, core), *args)
        except Exception:
            log.exception("stand_in.failed", chip=(chip >> 8, chip & 0xFF), core=core)
            self.running.pop((chip, core), None)
            self.vcpus.set(chip, core, "rt_code", RTE_ABORT)
            self.vcpus.set(chip, core, "cpu_state", CPUState.RUN_TIME_EXCEPTION.value)
            return None

    # -- signals -----------------------------------------------------------------

    def signal_command(
        self, data: bytes, chip: int, core: int, sender: Address
    ) -> bytes:
        """CMD_SIG: a multicast signal (from the root chip only) or a
        nearest-neighbour one reaches every chip; P2P ones are no more."""
        kind, signal_data, _ = arguments(data)
        if kind == SignalType.MULTICAST.value and chip != self._root:
            raise Reply(SCPResult.RC_ARG)
        if kind not in (SignalType.MULTICAST.value, SignalType.NEAREST_NEIGHBOUR.value):
            raise Reply(SCPResult.RC_ARG)
        self.signal(signal_data)
        return b""

    def nnp_command(self, data: bytes, chip: int, core: int, sender: Address) -> bytes:
        """CMD_NNP: a nearest-neighbour packet to every chip. The board
        carries application signals (SIG0, op APP: SpiNNMan's AppStop)."""
        key, nn_data, _ = arguments(data)
        if (key >> NN_COMMAND_SHIFT) & 0xF != NN_CMD_SIG0 or (
            nn_data >> SIG0_OP_SHIFT != SIG0_APP
        ):
            raise Reply(SCPResult.RC_ARG)  # not modelled
        self.signal(nn_data & 0x0FFF_FFFF)
        return b""

    def signal(self, data: int) -> None:
        """signal_app on every chip: the cores whose app id matches."""
        number, app_mask, app_id = signal_fields(data)
        cores = [
            (chip, core)
            for chip, core in self.vcpus.application_cores()
            if int(self.vcpus.get(chip, core, "app_id")) & app_mask == app_id
        ]
        if number == Signal.STOP.value:
            self._stop(cores, app_mask, app_id)
        elif number in (Signal.INITIALISE.value, Signal.POWER_DOWN.value):
            state = (
                CPUState.IDLE
                if number == Signal.INITIALISE.value
                else CPUState.POWERED_DOWN
            )
            for chip, core in cores:
                self.running.pop((chip, core), None)
                self.vcpus.reset(chip, core, state)
        else:
            try:
                signal = Signal.from_number(number)
            except ValueError:
                return  # SARK ignores signals it has no number for
            for chip, core in cores:
                stand_in = self.running.get((chip, core))
                if stand_in is not None:
                    self._hook(chip, core, stand_in.on_signal, signal)

    def _stop(self, cores: list[tuple[int, int]], app_mask: int, app_id: int) -> None:
        """proc_stop_app: the cores go back to idle and every chip frees
        the memory and routing entries of the app ids stopped."""
        for chip, core in cores:
            stand_in = self.running.pop((chip, core), None)
            if stand_in is not None:
                self._hook(chip, core, stand_in.on_stop)
            self.vcpus.reset(chip, core, CPUState.IDLE)
        stopped = [i for i in range(256) if i & app_mask == app_id]
        for chip in self.vcpus.cores:
            for stopped_id in stopped:
                self.monitor.heaps[chip].free_app(stopped_id)
                self._system_heaps[chip].free_app(stopped_id)
                self.routers.free_app(chip, stopped_id, clear=True)

    # -- SDP to application ports ------------------------------------------------

    def deliver(self, data: bytes, chip: int, sender: Address) -> bytes | None:
        """SDP to an application core's port: its stand-in's answer, or
        RC_PORT (if a reply was wanted) when nothing runs there."""
        port, core = data[4] >> 5, data[4] & 0x1F
        stand_in = self.running.get((chip, core))
        if stand_in is None:
            return self.monitor.error_reply(data, SCPResult.RC_PORT)
        request = SDPHeader.from_bytestring(data, SDP_OFFSET)
        payload = bytes(data[SDP_OFFSET + SDP_HEADER_SIZE :])
        answer = self._hook(chip, core, stand_in.on_sdp, port, payload)
        if answer is None:
            return None
        reply = SDPHeader(
            SDPFlag.REPLY_NOT_EXPECTED,
            request.tag,
            request.source_port or 0,
            request.source_cpu or 0,
            request.source_chip_x or 0,
            request.source_chip_y or 0,
            port,
            core,
            chip >> 8,
            chip & 0xFF,
        )
        return PADDING + reply.bytestring + answer
