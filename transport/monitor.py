"""What a board's monitor does with one SCP datagram, without any I/O.

``BoardMonitor.handle`` takes the bytes of a request and the sender's
address and returns the bytes of the reply (or None when the monitor would
stay silent). Wrong arguments get the board's error codes and a chip outside
the grid gets RC_ROUTE, as on a real machine; datagrams too broken to answer
are counted, never raised. The virtual board wraps this in sockets, queues
and faults.
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Callable
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
from messages.scp.iptag import FLAG_IN_USE, FLAG_STRIP, IPTAG_INFO, MAX_IP_TAG
from messages.scp.version import VersionInfo
from messages.validate import MAX_CORE, MAX_SCP_DATA
from transport.sdram import MemoryFull, SDRAMHeap, SparseMemory

Address = tuple[str, int]

# padding, 8 SDP bytes, command, sequence: the least a reply can answer.
_HEAD = struct.Struct("<2x8BHH")
_ARGS = struct.Struct("<3I")
_REPLY = struct.Struct("<2x8BHH")
_WORD = struct.Struct("<I")
_HEAD_SIZE = _HEAD.size  # 14
_ARGS_END = _HEAD_SIZE + _ARGS.size  # 26
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
    host: bytes
    port: int
    strip: bool
    count: int = 0


@dataclass
class MonitorStats:
    requests: int = 0
    replies: int = 0
    silent: int = 0
    malformed: int = 0
    errors: Counter[str] = field(default_factory=Counter)


class Reply(Exception):
    """Raised inside a command to answer with an error code."""

    def __init__(self, result: SCPResult) -> None:
        super().__init__(result.name)
        self.result = result


class BoardMonitor:
    """The SCP behaviour of a grid of chips, as one pure state machine."""

    def __init__(
        self,
        width: int = 8,
        height: int = 8,
        *,
        memory_limit: int = 512 << 20,
        hardware: str = "Virtual",
    ) -> None:
        if not (1 <= width <= 256 and 1 <= height <= 256):
            raise ValueError(f"grid {width}x{height}: each side 1..256")
        self.width = width
        self.height = height
        self.hardware = hardware
        self.memory = SparseMemory(memory_limit)
        self.heaps: dict[int, SDRAMHeap] = {}
        self.ip_tags: dict[int, IPTag] = {}
        self.app_cores: dict[int, dict[tuple[int, int, int], CPUState]] = {}
        self.stats = MonitorStats()
        #: False while SC&MP sets up its network after a boot: version then
        #: says chip (255, 255), as a real board's does until it knows where
        #: it is (transport/virtual/rom.py ends the phase).
        self.position_known = True
        self._versions: dict[tuple[int, int, int], bytes] = {}
        self._commands: dict[int, Callable[[bytes, int, int, Address], bytes]]
        self._commands = {
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
        if len(data) < _HEAD_SIZE or data[2] not in _FLAGS:
            stats.malformed += 1
            return None
        (flags, tag, dest, source, y, x, source_y, source_x, command, sequence) = (
            _HEAD.unpack_from(data)
        )
        result = _OK
        payload = b""
        if x == y == 0xFF:
            x = y = 0  # "this chip": the board's Ethernet chip
        if dest >> 5:
            result = SCPResult.RC_PORT.value  # no application listens there
        elif x >= self.width or y >= self.height:
            result = SCPResult.RC_ROUTE.value
        elif dest & 0x1F > MAX_CORE:
            result = SCPResult.RC_CPU.value
        elif len(data) < _ARGS_END:
            result = SCPResult.RC_LEN.value
        else:
            run = self._commands.get(command)
            if run is None:
                result = SCPResult.RC_CMD.value
            else:
                try:
                    payload = run(data, (x << 8) | y, dest & 0x1F, sender)
                except Reply as reply:
                    result = reply.result.value
        if result != _OK:
            stats.errors[SCPResult(result).name] += 1
        if not flags & 0x80:
            stats.silent += 1
            return None
        stats.replies += 1
        return (
            _REPLY.pack(
                _REPLY_FLAGS,
                tag,
                source,
                dest,
                source_y,
                source_x,
                data[6],
                data[7],
                result,
                sequence,
            )
            + payload
        )

    def error_reply(self, data: bytes, result: SCPResult) -> bytes | None:
        """The reply a busy monitor gives instead of running the request."""
        if len(data) < _HEAD_SIZE or data[2] not in _FLAGS or not data[2] & 0x80:
            return None
        (_, tag, dest, source, y, x, source_y, source_x, _, sequence) = (
            _HEAD.unpack_from(data)
        )
        self.stats.errors[result.name] += 1
        return _REPLY.pack(
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

    # -- memory ----------------------------------------------------------

    def _span(self, data: bytes) -> tuple[int, int]:
        address, size, kind = _ARGS.unpack_from(data, _HEAD_SIZE)
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
        if len(data) - _ARGS_END != size:
            raise Reply(SCPResult.RC_LEN)
        try:
            self.memory.write(chip, address, memoryview(data)[_ARGS_END:])
        except MemoryFull:
            raise Reply(SCPResult.RC_BUF) from None
        return b""

    def _fill(self, data: bytes, chip: int, core: int, sender: Address) -> bytes:
        address, word, size = _ARGS.unpack_from(data, _HEAD_SIZE)
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
            name = "SC&MP" if core == 0 else "SARK"
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
        argument_1, argument_2, argument_3 = _ARGS.unpack_from(data, _HEAD_SIZE)
        command = (argument_1 >> 16) & 0xFFF
        tag = argument_1 & 0xFF
        if command == IPTagCommand.NEW.value:
            free = [t for t in range(MAX_IP_TAG + 1) if t not in self.ip_tags]
            if not free:
                raise Reply(SCPResult.RC_ARG)
            tag = free[0]
            command = IPTagCommand.SET.value
        if command == IPTagCommand.TTO.value:
            return b""
        if tag > MAX_IP_TAG:
            raise Reply(SCPResult.RC_ARG)
        if command == IPTagCommand.SET.value:
            if argument_1 >> 30 & 1:
                host = (
                    bytes(map(int, sender[0].split(".")))
                    if (sender[0].count(".") == 3)
                    else b"\x7f\0\0\1"
                )
                port = sender[1]
            else:
                host, port = _WORD.pack(argument_3), argument_2 & 0xFFFF
            self.ip_tags[tag] = IPTag(host, port, bool(argument_1 >> 28 & 1))
            return _WORD.pack(tag)
        if command == IPTagCommand.GET.value:
            count = argument_2 or 1
            if tag + count > MAX_IP_TAG + 1:
                raise Reply(SCPResult.RC_ARG)
            return b"".join(self._tag_info(t) for t in range(tag, tag + count))
        if command == IPTagCommand.CLR.value:
            self.ip_tags.pop(tag, None)
            return b""
        raise Reply(SCPResult.RC_ARG)

    def _tag_info(self, tag: int) -> bytes:
        entry = self.ip_tags.get(tag)
        if entry is None:
            return IPTAG_INFO.pack(b"\0" * 4, b"\0" * 6, 0, 0, 0, 0, 0, 0, 0, 0)
        flags = FLAG_IN_USE | (FLAG_STRIP if entry.strip else 0)
        return IPTAG_INFO.pack(
            entry.host, b"\0" * 6, entry.port, 0, flags, entry.count, 0, 0, 0, 0
        )

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
        kind, argument_2, _ = _ARGS.unpack_from(data, _HEAD_SIZE)
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
        app_id, state, _ = _ARGS.unpack_from(data, _HEAD_SIZE)
        if state > 15:
            raise Reply(SCPResult.RC_ARG)
        wanted = CPUState(state)
        cores = self.app_cores.get(app_id & 0xFF, {})
        return _WORD.pack(sum(1 for s in cores.values() if s is wanted))

    # -- the SDRAM heap ------------------------------------------------------

    def _alloc(self, data: bytes, chip: int, core: int, sender: Address) -> bytes:
        argument_1, argument_2, argument_3 = _ARGS.unpack_from(data, _HEAD_SIZE)
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
