"""What a board's monitor does with one SCP datagram, without any I/O.

``BoardMonitor.handle`` takes the bytes of a request and the sender's
address and returns the bytes of the reply (or None when the monitor would
stay silent). Wrong arguments get the board's error codes and a chip outside
the grid gets RC_ROUTE, as on a real machine; datagrams too broken to answer
are counted, never raised. The virtual board wraps this in sockets, queues
and faults.

The dispatch is a table of command -> handler. A board shape (the SpiNN-5
in transport/virtual/spinn5.py) installs its own handlers, says which chips
exist and who answers SDP to application cores' ports; requests to chip
(255, 255), "this chip", are answered by the root chip (0, 0).
"""

from __future__ import annotations

import struct
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from messages.scp.alloc import FLAG_RETRY_TAG
from messages.scp.enums import (
    AllocFree,
    CPUState,
    IPTagCommand,
    SCPCommand,
    SCPResult,
    Signal,
)
from messages.scp.iptag import (
    FLAG_IN_USE,
    FLAG_REVERSE,
    FLAG_STRIP,
    FLAG_USE_SENDER,
    FLAGS_MASK,
    FLAGS_SHIFT,
    IPTAG_ENTRY_SIZE,
    IPTAG_INFO,
    MAX_IP_TAG,
    TAG_FIXED_SIZE,
    TAG_POOL_SIZE,
    TAG_TABLE_SIZE,
    TTO_AT_BOOT,
    TTO_REPLY,
)
from messages.scp.layout import (
    ARGUMENTS,
    ARGUMENTS_OFFSET,
    COMMAND_OFFSET,
    HEAD,
    REQUEST_DATA_OFFSET,
    SDP_OFFSET,
)
from messages.scp.version import SCAMP_NAME, VersionInfo
from messages.validate import MAX_CORE, MAX_SCP_DATA
from transport.links.endpoint import Address
from transport.virtual.sdram import MemoryFull, SDRAMHeap, SparseMemory

#: A command's handler: (datagram, chip as x << 8 | y, core, sender) to the
#: reply's data; it raises Reply to answer with an error code.
Handler = Callable[[bytes, int, int, Address], bytes]
#: Where SDP for an application core's port goes: (datagram, chip, sender)
#: to a whole reply datagram, or None.
ApplicationPort = Callable[[bytes, int, Address], bytes | None]

_WORD = struct.Struct("<I")
_FLAGS = frozenset({0x07, 0x87, 0x27, 0xA7})
_REPLY_FLAGS = 0x07
_OK = SCPResult.RC_OK.value
_ALIGNMENT = {0: 1, 1: 2, 2: 4}  # read type -> required alignment
#: The board's build date, fixed so replies are reproducible.
BUILD_DATE = 1_700_000_000
_NEXT_STATE = {
    Signal.START: CPUState.RUNNING,
    Signal.CONTINUE: CPUState.RUNNING,
    Signal.PAUSE: CPUState.PAUSED,
    Signal.SYNC0: CPUState.SYNC0,
    Signal.SYNC1: CPUState.SYNC1,
    Signal.EXIT: CPUState.FINISHED,
    Signal.STOP: CPUState.IDLE,
}


@dataclass
class IPTag:
    """A tag: where traffic to the host goes, or (reverse) where traffic
    from the host's ``port`` goes on the machine."""

    host: bytes
    port: int
    strip: bool
    count: int = 0
    reverse: bool = False
    #: A reverse tag's destination: chip x << 8 | y, and port << 5 | core.
    destination: int = 0
    destination_port: int = 0


@dataclass
class MonitorStats:
    requests: int = 0
    replies: int = 0
    silent: int = 0
    malformed: int = 0
    errors: Counter[str] = field(default_factory=Counter)


def arguments(data: bytes) -> tuple[int, int, int]:
    """A request's arg1, arg2 and arg3 (handlers get whole datagrams that
    the monitor has checked are long enough)."""
    return ARGUMENTS.unpack_from(data, ARGUMENTS_OFFSET)


class Reply(Exception):
    """Raised inside a command to answer with an error code."""

    def __init__(self, result: SCPResult, payload: bytes = b"") -> None:
        super().__init__(result.name)
        self.result = result
        #: What the error reply carries, if anything (RC_SUM's checksum).
        self.payload = payload


class BoardMonitor:
    """The SCP behaviour of a grid of chips, as one pure state machine."""

    def __init__(
        self,
        width: int = 8,
        height: int = 8,
        *,
        memory_limit: int = 512 << 20,
        hardware: str = "Virtual",
        memory: SparseMemory | None = None,
    ) -> None:
        if not (1 <= width <= 256 and 1 <= height <= 256):
            raise ValueError(f"grid {width}x{height}: each side 1..256")
        self.width = width
        self.height = height
        self.hardware = hardware
        self.memory = memory if memory is not None else SparseMemory(memory_limit)
        #: The chips present (x << 8 | y), if not the whole grid.
        self.chips: frozenset[int] | None = None
        self.heaps: dict[int, SDRAMHeap] = {}
        self.ip_tags: dict[int, IPTag] = {}
        #: Datagrams the board's applications send, and where to.
        self.outbox: deque[tuple[bytes, Address]] = deque()
        #: Who answers SDP to an application core's port (RC_PORT if none).
        self.application_port: ApplicationPort | None = None
        self._tag_timeout = TTO_AT_BOOT
        self.app_cores: dict[int, dict[tuple[int, int, int], CPUState]] = {}
        self.stats = MonitorStats()
        #: False while SC&MP sets up its network after a boot: version then
        #: says chip (255, 255), as a real board's does until it knows where
        #: it is (transport/virtual/rom.py ends the phase).
        self.position_known = True
        self._versions: dict[tuple[int, int, int], bytes] = {}
        self._commands: dict[int, Handler] = {
            SCPCommand.CMD_READ.value: self._read,
            SCPCommand.CMD_WRITE.value: self._write,
            SCPCommand.CMD_VER.value: self._version,
            SCPCommand.CMD_FILL.value: self._fill,
            SCPCommand.CMD_IPTAG.value: self._iptag,
            SCPCommand.CMD_SIG.value: self._signal,
            SCPCommand.CMD_COUNT.value: self._count,
            SCPCommand.CMD_ALLOC.value: self._alloc,
        }

    # -- the entry point -------------------------------------------------

    def handle(self, data: bytes, sender: Address) -> bytes | None:
        """The reply to one datagram, or None if the monitor stays silent."""
        stats = self.stats
        stats.requests += 1
        if self.application_port is not None:
            chip = self._application_chip(data)
            if chip is not None:
                return self._to_application(data, chip, sender)
        if len(data) < HEAD.size or data[SDP_OFFSET] not in _FLAGS:
            stats.malformed += 1
            return None
        (flags, tag, dest, source, y, x, source_y, source_x, command, sequence) = (
            HEAD.unpack_from(data)
        )
        result = _OK
        payload = b""
        if x == y == 0xFF:
            x = y = 0  # "this chip": the board's Ethernet chip answers
        if not self.has_chip(x, y):
            result = SCPResult.RC_ROUTE.value
        elif dest >> 5:
            result = SCPResult.RC_PORT.value  # no application listens there
        elif dest & 0x1F > MAX_CORE:
            result = SCPResult.RC_CPU.value
        elif len(data) < REQUEST_DATA_OFFSET:
            result = SCPResult.RC_LEN.value
        else:
            run = self._commands.get(command)
            if run is None:
                result = SCPResult.RC_CMD.value
            else:
                try:
                    payload = run(data, (x << 8) | y, dest & 0x1F, sender)
                except Reply as reply:
                    result, payload = reply.result.value, reply.payload
        if result != _OK:
            stats.errors[SCPResult(result).name] += 1
        if not flags & 0x80:
            stats.silent += 1
            return None
        stats.replies += 1
        return (
            HEAD.pack(
                _REPLY_FLAGS,
                tag,
                source,
                dest,
                source_y,
                source_x,
                y,
                x,
                result,
                sequence,
            )
            + payload
        )

    def error_reply(self, data: bytes, result: SCPResult) -> bytes | None:
        """The reply a busy monitor gives instead of running the request."""
        if (
            len(data) < HEAD.size
            or data[SDP_OFFSET] not in _FLAGS
            or not data[SDP_OFFSET] & 0x80
        ):
            return None
        (_, tag, dest, source, y, x, source_y, source_x, _, sequence) = (
            HEAD.unpack_from(data)
        )
        if x == y == 0xFF:
            x = y = 0
        self.stats.errors[result.name] += 1
        return HEAD.pack(
            _REPLY_FLAGS,
            tag,
            source,
            dest,
            source_y,
            source_x,
            y,
            x,
            result.value,
            sequence,
        )

    @property
    def forward_tags(self) -> dict[int, IPTag]:
        """The tags that send traffic to hosts (not the reverse ones)."""
        return {tag: entry for tag, entry in self.ip_tags.items() if not entry.reverse}

    def has_chip(self, x: int, y: int) -> bool:
        """Whether (x, y) is a chip of this board."""
        if self.chips is not None:
            return (x << 8) | y in self.chips
        return x < self.width and y < self.height

    def handler(self, command: SCPCommand) -> Handler | None:
        """Who answers ``command`` now (for a shape that extends it)."""
        return self._commands.get(command.value)

    def install(self, commands: Mapping[SCPCommand, Handler]) -> None:
        """Answer these commands with these handlers (a board shape's)."""
        for command, handler in commands.items():
            self._commands[command.value] = handler

    def _application_chip(self, data: bytes) -> int | None:
        """The chip an SDP datagram for an application's port goes to (an
        SDP header is all it needs), or None if it is not one."""
        if len(data) < COMMAND_OFFSET:  # padding and the SDP header
            return None
        flags, _, dest, _, y, x = data[SDP_OFFSET : SDP_OFFSET + 6]
        if flags not in _FLAGS or not dest >> 5:
            return None
        if x == y == 0xFF:
            x = y = 0
        return (x << 8) | y if self.has_chip(x, y) else None

    def _to_application(self, data: bytes, chip: int, sender: Address) -> bytes | None:
        """SDP for an application core's port: its stand-in answers or not."""
        assert self.application_port is not None
        reply = self.application_port(data, chip, sender)
        if reply is None:
            self.stats.silent += 1
        else:
            self.stats.replies += 1
        return reply

    # -- memory ----------------------------------------------------------

    def _span(self, data: bytes) -> tuple[int, int]:
        address, size, kind = ARGUMENTS.unpack_from(data, ARGUMENTS_OFFSET)
        align = _ALIGNMENT.get(kind)
        if (
            align is None
            or not 1 <= size <= MAX_SCP_DATA
            or address + size > 1 << 32
            or (address | size) % align
        ):
            raise Reply(SCPResult.RC_ARG)
        return address, size

    def _read(self, data: bytes, chip: int, core: int, sender: Address) -> bytes:
        address, size = self._span(data)
        return self.memory.read(chip, address, size)

    def _write(self, data: bytes, chip: int, core: int, sender: Address) -> bytes:
        address, size = self._span(data)
        if len(data) - REQUEST_DATA_OFFSET != size:
            raise Reply(SCPResult.RC_LEN)
        try:
            self.memory.write(chip, address, memoryview(data)[REQUEST_DATA_OFFSET:])
        except MemoryFull:
            raise Reply(SCPResult.RC_BUF) from None
        return b""

    def _fill(self, data: bytes, chip: int, core: int, sender: Address) -> bytes:
        address, word, size = ARGUMENTS.unpack_from(data, ARGUMENTS_OFFSET)
        if address % 4 or size % 4 or not size or address + size > 1 << 32:
            raise Reply(SCPResult.RC_ARG)
        try:
            if word:
                self.memory.check_room(chip, address, size)
            self.memory.fill(chip, address, _WORD.pack(word), size)
        except MemoryFull:
            raise Reply(SCPResult.RC_BUF) from None
        return b""

    # -- identity ----------------------------------------------------------

    def _version(self, data: bytes, chip: int, core: int, sender: Address) -> bytes:
        key = (chip >> 8, chip & 0xFF, core)
        if not self.position_known:
            key = (0xFF, 0xFF, core)
        reply = self._versions.get(key)
        if reply is None:
            name = SCAMP_NAME if core == 0 else "SARK"
            reply = self._versions[key] = VersionInfo(
                name,
                self.hardware,
                (4, 0, 0),
                "4.0.0",
                BUILD_DATE,
                key[0],
                key[1],
                core,
                physical_cpu_id=core,
            ).to_bytes()
        return reply

    # -- IP tags -----------------------------------------------------------

    def _iptag(self, data: bytes, chip: int, core: int, sender: Address) -> bytes:
        argument_1, argument_2, argument_3 = ARGUMENTS.unpack_from(
            data, ARGUMENTS_OFFSET
        )
        command = (argument_1 >> 16) & 0xFF
        tag = argument_1 & 0xFF
        if tag >= TAG_TABLE_SIZE:
            raise Reply(SCPResult.RC_ARG)
        if command == IPTagCommand.NEW.value:
            free = [t for t in range(MAX_IP_TAG + 1) if t not in self.ip_tags]
            if not free:
                raise Reply(SCPResult.RC_ARG)
            tag = free[0]
            command = IPTagCommand.SET.value
        if command == IPTagCommand.TTO.value:
            reply = TTO_REPLY.pack(
                self._tag_timeout, IPTAG_ENTRY_SIZE, TAG_POOL_SIZE, TAG_FIXED_SIZE
            )
            if argument_2 < 16:
                self._tag_timeout = argument_2
            return reply
        if command == IPTagCommand.SET.value:
            if tag >= TAG_FIXED_SIZE:
                raise Reply(SCPResult.RC_ARG)  # the transient tags are SC&MP's
            self.ip_tags[tag] = _new_tag(argument_1, argument_2, argument_3, sender)
            return _WORD.pack(tag)
        if command == IPTagCommand.GET.value:
            count = argument_2 or 1
            if tag + count > TAG_TABLE_SIZE:
                raise Reply(SCPResult.RC_ARG)
            return b"".join(self._tag_info(t) for t in range(tag, tag + count))
        if command == IPTagCommand.CLR.value:
            self.ip_tags.pop(tag, None)
            return b""
        raise Reply(SCPResult.RC_ARG)

    def _tag_info(self, tag: int) -> bytes:
        entry = self.ip_tags.get(tag)
        if entry is None:
            return bytes(IPTAG_ENTRY_SIZE)
        flags = (
            FLAG_IN_USE
            | (FLAG_STRIP if entry.strip else 0)
            | (FLAG_REVERSE if entry.reverse else 0)
        )
        port, rx_port = (0, entry.port) if entry.reverse else (entry.port, 0)
        return IPTAG_INFO.pack(
            entry.host,
            b"\0" * 6,
            port,
            0,
            flags,
            entry.count,
            rx_port,
            entry.destination & 0xFF,
            entry.destination >> 8,
            entry.destination_port,
        ).ljust(IPTAG_ENTRY_SIZE, b"\0")

    # -- applications --------------------------------------------------------

    def load_app(
        self,
        app_id: int,
        cores: list[tuple[int, int, int]],
        state: CPUState = CPUState.READY,
    ) -> None:
        """Pretend ``app_id`` was loaded onto ``cores`` (for tests)."""
        for x, y, p in cores:
            if x >= self.width or y >= self.height or not 0 < p <= MAX_CORE:
                raise ValueError(
                    f"core {x},{y},{p} is not an application core of this board"
                )
        self.app_cores.setdefault(app_id, {}).update({core: state for core in cores})

    def _signal(self, data: bytes, chip: int, core: int, sender: Address) -> bytes:
        kind, argument_2, _ = ARGUMENTS.unpack_from(data, ARGUMENTS_OFFSET)
        number, app_id = (argument_2 >> 16) & 0xFF, argument_2 & 0xFF
        try:
            signal = Signal.from_number(number)
        except ValueError:
            raise Reply(SCPResult.RC_ARG) from None
        if kind != signal.signal_type.value:
            raise Reply(SCPResult.RC_ARG)
        state = _NEXT_STATE.get(signal)
        cores = self.app_cores.get(app_id, {})
        if state is not None:
            for key in cores:
                cores[key] = state
        return b""

    def _count(self, data: bytes, chip: int, core: int, sender: Address) -> bytes:
        app_id, state, _ = ARGUMENTS.unpack_from(data, ARGUMENTS_OFFSET)
        if state > 15:
            raise Reply(SCPResult.RC_ARG)
        wanted = CPUState(state)
        cores = self.app_cores.get(app_id & 0xFF, {})
        return _WORD.pack(sum(1 for s in cores.values() if s is wanted))

    # -- the SDRAM heap ------------------------------------------------------

    def _alloc(self, data: bytes, chip: int, core: int, sender: Address) -> bytes:
        argument_1, argument_2, argument_3 = ARGUMENTS.unpack_from(
            data, ARGUMENTS_OFFSET
        )
        operation = argument_1 & 0xFF
        app_id = (argument_1 >> 8) & 0xFF
        heap = self.heaps.setdefault(chip, SDRAMHeap())
        if operation == AllocFree.ALLOC_SDRAM.value:
            tag = argument_3 & 0xFF
            existing = heap.find_tagged(app_id, tag)
            if existing is not None:
                retry = (argument_1 >> 16) & FLAG_RETRY_TAG
                return _WORD.pack(existing.address if retry else 0)
            if argument_2 == 0:
                raise Reply(SCPResult.RC_ARG)
            return _WORD.pack(heap.allocate(argument_2, app_id, tag))
        if operation == AllocFree.FREE_SDRAM_BY_POINTER.value:
            if not heap.free(argument_2):
                raise Reply(SCPResult.RC_ARG)
            return b""
        if operation == AllocFree.FREE_SDRAM_BY_APP_ID.value:
            return _WORD.pack(heap.free_app(app_id))
        raise Reply(SCPResult.RC_ARG)


def _new_tag(
    argument_1: int, argument_2: int, argument_3: int, sender: Address
) -> IPTag:
    """The tag IPTAG SET describes (scamp-cmd.c cmd_iptag)."""
    flags = (argument_1 >> FLAGS_SHIFT) & FLAGS_MASK
    strip = bool(flags & FLAG_STRIP)
    if flags & FLAG_REVERSE:
        return IPTag(
            b"\0" * 4,
            argument_2 & 0xFFFF,
            strip,
            reverse=True,
            destination=argument_2 >> 16,
            destination_port=(argument_1 >> 8) & 0xFF,
        )
    # An address of 0 means the sender's; FLAG_USE_SENDER takes its port too.
    if argument_3:
        host = _WORD.pack(argument_3)
    elif sender[0].count(".") == 3:
        host = bytes(map(int, sender[0].split(".")))
    else:
        host = b"\x7f\0\0\1"  # an in-memory sender: loopback
    port = sender[1] if flags & FLAG_USE_SENDER else argument_2 & 0xFFFF
    return IPTag(host, port, strip)
