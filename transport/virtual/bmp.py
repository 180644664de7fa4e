"""VirtualBMP: the BMP of a frame of virtual boards, served on UDP.

The BMP itself (what it answers, what it switches, when) is BMPMonitor in
transport/virtual/bmp_monitor.py; this is the thin socket loop around it:
replies wait in a heap until due, and the boards' power is switched on the
loop's clock.
"""

from __future__ import annotations

import heapq
import ipaddress
import itertools
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from messages.bmp import BMP_TEMP_SCALE, ADCInfo, BoardStat, IPData, check_boards
from messages.errors import InvalidArgumentError
from transport.errors import ConnectionClosed, ReceiveTimeout, TransportError
from transport.links.endpoint import Address, UDPEndpoint
from transport.logs import get_logger
from transport.virtual.bmp_monitor import (
    POWER_ON_DELAY,
    SPINN5_SENSORS,
    BMPMonitor,
    BMPStats,
    BoardSlot,
)
from transport.virtual.board import VirtualBoard
from transport.virtual.served import ServedEndpoint

log = get_logger(__name__)

#: How long the loop waits for a datagram when nothing is due.
_IDLE_WAIT = 0.5


def _ip_data(address: Address) -> IPData:
    """Network settings for a virtual host (a loopback one: mask 255.0.0.0)."""
    host, port = address
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        host = "0.0.0.0"  # an in-memory link's
    return IPData(host, "0.0.0.0", "255.0.0.0", udp_port=port)


class VirtualBMP(ServedEndpoint):
    """The BMP of a frame of virtual boards, on UDP ``host:port`` (port 0:
    a free one).

    ``boards``: VirtualBoards numbered 0, 1, ... in order, or by number
    (0..23); each needs its boot ROM (``booted=False``, or ``rom=``), which
    is what a power cycle puts it back in. ``sensors`` are readings by
    board number (SPINN5_SENSORS for the others). The boards keep their own
    lifetimes: start and stop them yourself.
    """

    kind = "BMP"
    thread_prefix = "bmp"

    def __init__(
        self,
        boards: Sequence[VirtualBoard] | Mapping[int, VirtualBoard],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        power_on_delay: float = POWER_ON_DELAY,
        sensors: Mapping[int, BoardStat] | None = None,
        frame: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        numbered = (
            dict(boards) if isinstance(boards, Mapping) else dict(enumerate(boards))
        )
        check_boards(numbered)
        if not 0 <= power_on_delay <= 60:
            raise InvalidArgumentError(
                "power_on_delay", power_on_delay, "must be 0..60 seconds"
            )
        slots = {}
        for number, board in numbered.items():
            if board.rom is None:
                raise InvalidArgumentError(
                    "boards",
                    board.address_text,
                    f"board {number} has no boot ROM to power-cycle into: make "
                    f"it with booted=False or rom=ROMSettings()",
                )
            slots[number] = BoardSlot(
                board.rom,
                _ip_data(board.address),
                (sensors or {}).get(number, SPINN5_SENSORS),
            )
        self._endpoint = UDPEndpoint(host, port)
        self.boards = numbered
        self.monitor = BMPMonitor(
            slots,
            ip=_ip_data(self._endpoint.address),
            frame=frame,
            power_on_delay=power_on_delay,
        )
        self._clock = clock
        self._lock = threading.Lock()
        self._replies: list[tuple[float, int, bytes, Address]] = []
        self._order = itertools.count()
        self._send_failures = 0
        super().__init__()
        self._log = log.bind(bmp=self.address_text)

    # -- identity, state and the sensors ----------------------------------------------

    @property
    def stats(self) -> BMPStats:
        with self._lock:
            return self.monitor.stats

    def powered(self, board: int) -> bool:
        with self._lock:
            return self.monitor.slots[board].powered

    def leds(self, board: int) -> tuple[bool, ...]:
        with self._lock:
            return tuple(self.monitor.slots[board].leds)

    def fpga_register(self, board: int, fpga: int, address: int) -> int:
        with self._lock:
            return self.monitor.slots[board].fpga.get((fpga, address & ~3), 0)

    def sensors(self, board: int) -> ADCInfo:
        """What ReadADC answers for ``board`` now."""
        with self._lock:
            return ADCInfo(self.monitor.reading(board))

    def set_sensors(self, board: int, stat: BoardStat) -> None:
        """New readings for ``board`` (too hot: powered off at once)."""
        with self._lock:
            now = self._clock()
            self.monitor.set_sensors(board, stat, now)
            self.monitor.advance(now)

    def set_temperature(self, board: int, celsius: float, sensor: int = 0) -> None:
        """One on-board sensor's reading (over SHUTDOWN_TEMPERATURE: the
        over-temperature fault, and the board powered off)."""
        with self._lock:
            stat = self.monitor.slots[board].sensors
        readings = list(stat.t_int)
        readings[sensor] = round(celsius / BMP_TEMP_SCALE)
        self.set_sensors(board, replace(stat, t_int=tuple(readings)))

    # -- running ---------------------------------------------------------------------

    def serve_forever(self) -> None:
        """Answer and switch until stop() or the endpoint closes."""
        self._log.info("bmp.serve", boards=sorted(self.boards))
        endpoint, clock = self._endpoint, self._clock
        try:
            while not self._stopping.is_set():
                self._send_due(clock())
                try:
                    data, sender = endpoint.receive_from(self._wait(clock()))
                except ReceiveTimeout:
                    continue
                with self._lock:
                    now = clock()
                    self.monitor.advance(now)
                    answer = self.monitor.handle(data, now)
                    self.monitor.advance(now)
                    if answer is not None:
                        due, reply = answer
                        item = (due, next(self._order), reply, sender)
                        heapq.heappush(self._replies, item)
        except ConnectionClosed:
            pass
        finally:
            self._log.info("bmp.stopped", received=self.monitor.stats.received)

    def _wait(self, now: float) -> float:
        with self._lock:
            dues = [self.monitor.next_due]
            if self._replies:
                dues.append(self._replies[0][0])
        wait = min((due - now for due in dues if due is not None), default=_IDLE_WAIT)
        return min(max(wait, 0.0), _IDLE_WAIT)

    def _send_due(self, now: float) -> None:
        ready = []
        with self._lock:
            self.monitor.advance(now)
            while self._replies and self._replies[0][0] <= now:
                _, _, reply, sender = heapq.heappop(self._replies)
                ready.append((reply, sender))
        for reply, sender in ready:
            try:
                self._endpoint.send_to(reply, sender)
            except ConnectionClosed:
                raise
            except TransportError as error:
                self._send_failures += 1
                self._log.warning("bmp.send_failed", peer=sender, error=str(error))

    def __repr__(self) -> str:
        return f"VirtualBMP({self.address_text}, boards={sorted(self.boards)})"
