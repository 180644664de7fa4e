"""The virtual board: a BoardMonitor served over UDP or an in-memory link.

The I/O shell around the monitor models what a host sees of a real board:
replies take a service time, at most 8 reply-expected requests can be held
at once (one per transient IP tag; a ninth is dropped unanswered), the
request queue is bounded, and a seeded fault plan can drop, duplicate,
reorder, delay, corrupt or answer "busy". Nothing a client sends stops it.
"""

from __future__ import annotations

import functools
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from messages.scp.enums import SCPResult
from transport.capture.tap import TappedUDPEndpoint, attach
from transport.capture.writer import CaptureTarget, open_capture
from transport.errors import ConnectionClosed, ReceiveTimeout, TransportError
from transport.links.endpoint import Address, DatagramEndpoint, UDPEndpoint
from transport.links.faults import FaultPlan, FaultyEndpoint, Sides
from transport.links.in_process import MemoryNetwork
from transport.logs import get_logger
from transport.virtual.monitor import BoardMonitor
from transport.virtual.rom import ROMServer, ROMSettings, ROMStats
from transport.virtual.served import ServedEndpoint
from transport.virtual.traffic import TagTraffic

if TYPE_CHECKING:
    from transport.virtual.spinn5 import Layout, SpiNN5

log = get_logger(__name__)

#: Transient IP tags on a monitor: the most replies it can owe at once.
TRANSIENT_TAGS = 8
#: Service time per request that matches a real board's few MB/s.
REALISTIC_SERVICE_TIME = 70e-6
#: Waits shorter than this go through select(), not a receive timeout.
_COARSE_WAIT = 0.005
_BUSY_CODES = (SCPResult.RC_P2P_BUSY, SCPResult.RC_TIMEOUT)
#: How long the loop sleeps in receive when it owes nothing.
_IDLE_WAIT = 0.5


@dataclass(frozen=True)
class BoardStats:
    """A snapshot of what the board has seen and done."""

    received: int
    replies: int
    malformed: int
    errors: dict[str, int]
    tag_drops: int
    queue_drops: int
    busy: int
    send_failures: int
    #: Datagrams its fault plan dropped (requests or replies).
    fault_drops: int = 0
    #: Datagrams ignored while SC&MP was not running (in the boot ROM,
    #: powered off or held in reset).
    silent_drops: int = 0
    #: Its boot ROM's, if it has one.
    rom: ROMStats | None = None


#: The boards whose serving loop runs in this process (weakly held).
_SERVING: weakref.WeakSet[VirtualBoard] = weakref.WeakSet()


def serving_boards() -> list[VirtualBoard]:
    """The virtual boards of this process that are serving now, i.e. that
    answer SCP: their loop runs, they are not being stopped, and SC&MP
    runs (not one in its boot ROM, powered off or held in reset by its
    BMP, whose loop runs on only to drop what comes)."""
    return [board for board in list(_SERVING) if board.serving]


class VirtualBoard(ServedEndpoint):
    """A SpiNNaker board's monitor that runs anywhere.

    Serve UDP on ``host:port`` (port 0 picks a free one), or pass ``network``
    to serve an in-memory link. ``faults`` apply to what the board
    receives, sends or both (``fault_sides``). ``start()`` runs it on a thread;
    ``serve_forever()`` runs it on the caller's. ``capture`` (a pcap file,
    a template with {host} and {port}, a directory or a PacketCapture)
    records every datagram on the board's wire (transport/capture/writer.py).
    ``VirtualBoard.spinn5(...)`` serves a booted 48-chip SpiNN-5 board that
    SpiNNMan's Transceiver comes up against (``monitor`` is how it passes
    its own monitor in).

    ``booted=False`` starts it cold: silent on its port until its boot ROM,
    on UDP 54321 of its host, has been sent an image (``rom`` says how the
    ROM behaves; transport/virtual/rom.py). A board with ``rom`` given but
    booted has a ROM for when a VirtualBMP power-cycles it.
    """

    kind = "board"
    thread_prefix = "board"

    def __init__(
        self,
        width: int = 8,
        height: int = 8,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        network: MemoryNetwork | None = None,
        endpoint: DatagramEndpoint | None = None,
        service_time: float = 0.0,
        queue_limit: int = 64,
        faults: FaultPlan | None = None,
        fault_sides: Sides = "both",
        memory_limit: int = 512 << 20,
        traffic: TagTraffic | None = None,
        clock: Callable[[], float] = time.monotonic,
        capture: CaptureTarget | None = None,
        monitor: BoardMonitor | None = None,
        booted: bool = True,
        rom: ROMSettings | None = None,
    ) -> None:
        if service_time < 0:
            raise ValueError(f"service_time={service_time}: must be >= 0")
        if queue_limit < 1:
            raise ValueError(f"queue_limit={queue_limit}: must be >= 1")
        self._new_monitor: Callable[[], BoardMonitor] = functools.partial(
            BoardMonitor, width, height, memory_limit=memory_limit
        )
        self.monitor = monitor if monitor is not None else self._new_monitor()
        #: The chips of a SpiNN-5 board (VirtualBoard.spinn5), else None.
        self.chips: SpiNN5 | None = None
        #: Whether SC&MP runs: if not, the board answers nothing.
        self.booted = True
        if endpoint is None:
            endpoint = (
                network.endpoint(port)
                if network is not None
                else (UDPEndpoint if capture is None else TappedUDPEndpoint)(host, port)
            )
        self.faults = faults if faults is not None else FaultPlan.none()
        self._endpoint = self._wire(endpoint, capture, fault_sides, clock)
        self.rom: ROMServer | None = None
        if not booted or rom is not None:
            try:
                self.rom = ROMServer(
                    self,
                    endpoint.address[0],
                    rom,
                    booted=booted,
                    network=network,
                    clock=clock,
                )
            except BaseException:
                endpoint.close()
                if self.capture is not None and self._owns_capture:
                    self.capture.close()
                raise
        self._silent_drops = 0
        self._service_time = service_time
        #: Live output to IP-tagged hosts, if any.
        self.traffic = traffic
        self._queue_limit = queue_limit
        self._clock = clock
        self._queue: deque[tuple[float, bytes, Address]] = deque()
        self._last_due = 0.0
        self._tag_drops = 0
        self._queue_drops = 0
        self._busy = 0
        self._send_failures = 0
        super().__init__()
        self._log = log.bind(board=self.address_text)

    def _wire(
        self,
        endpoint: DatagramEndpoint,
        capture: CaptureTarget | None,
        sides: Sides,
        clock: Callable[[], float],
    ) -> DatagramEndpoint:
        """The endpoint as the board's wire: recorded, then made faulty."""
        try:
            self.capture, self._owns_capture = open_capture(capture, *endpoint.address)
        except BaseException:
            endpoint.close()
            raise
        if self.capture is not None:
            # Inside the fault injector: the capture shows what went on
            # the wire, not what the board meant to send.
            endpoint = attach(endpoint, self.capture)
        if self.faults.active:
            endpoint = FaultyEndpoint(endpoint, self.faults, sides=sides, clock=clock)
        return endpoint

    @classmethod
    def spinn5(
        cls,
        *,
        host: str = "127.0.0.1",
        ip_address: str | None = None,
        layout: Layout | None = None,
        memory_limit: int = 512 << 20,
        **options: Any,
    ) -> VirtualBoard:
        """A booted SpiNN-5 board (48 chips; or ``layout``) that SpiNNMan's
        Transceiver can come up against; ``board.chips`` is its model
        (cores, stand-in applications, routers). Its Ethernet chip says its
        IP is ``ip_address`` (default: ``host``, or 127.0.0.1 for an
        in-memory or wildcard board). Other options are VirtualBoard's."""
        from transport.virtual.spinn5 import spinn5_monitor  # the shape's own

        if ip_address is None:
            ip_address = host if _is_ipv4(host) and host != "0.0.0.0" else "127.0.0.1"
        monitor, chips = spinn5_monitor(
            layout=layout, ip_address=ip_address, memory_limit=memory_limit
        )
        board = cls(host=host, monitor=monitor, **options)
        board.chips = chips

        def fresh_monitor() -> BoardMonitor:  # a power cycle's: all forgotten
            monitor, board.chips = spinn5_monitor(
                layout=layout, ip_address=ip_address, memory_limit=memory_limit
            )
            return monitor

        board._new_monitor = fresh_monitor
        return board

    # -- identity and stats ------------------------------------------------

    @property
    def stats(self) -> BoardStats:
        monitor = self.monitor.stats
        return BoardStats(
            received=monitor.requests + self._tag_drops + self._queue_drops,
            replies=monitor.replies,
            malformed=monitor.malformed,
            errors=dict(monitor.errors),
            tag_drops=self._tag_drops,
            queue_drops=self._queue_drops,
            busy=self._busy,
            send_failures=self._send_failures,
            fault_drops=self.faults.counts.dropped,
            silent_drops=self._silent_drops,
            rom=None if self.rom is None else self.rom.stats,
        )

    @property
    def serving(self) -> bool:
        """Whether it answers SCP now (see serving_boards)."""
        return self.booted and not self._stopping.is_set() and self in _SERVING

    def forget(self) -> None:
        """Lose everything the monitor held (memory, tags, heaps), as a
        power cycle or a reset does."""
        self.monitor = self._new_monitor()

    # -- running -------------------------------------------------------------

    def start(self) -> VirtualBoard:
        """Serve on a daemon thread until stop(); its boot ROM too.

        Listed in serving_boards() by the time this returns, however late
        its thread is scheduled (its socket is bound already: what comes
        meanwhile waits there), so a scrape right after start() sees it."""
        fresh = self._thread is None
        if fresh:
            _SERVING.add(self)
        try:
            super().start()
        except BaseException:
            if fresh:
                _SERVING.discard(self)
            raise
        if self.rom is not None:
            self.rom.start()
        return self

    def serve_forever(self) -> None:
        """Answer datagrams until stop() or the endpoint closes."""
        _SERVING.add(self)
        self._log.info("board.serve")
        endpoint, clock, queue = self._endpoint, self._clock, self._queue
        try:
            while not self._stopping.is_set():
                wait = _IDLE_WAIT
                if queue:
                    wait = max(0.0, queue[0][0] - clock())
                if self.traffic is not None and self.monitor.forward_tags:
                    self._send_traffic(clock())
                    wait = min(wait, max(0.0, self.traffic.next_due(clock()) - clock()))
                try:
                    if 0.0 < wait < _COARSE_WAIT:
                        # A socket's receive timeout counts in the kernel's
                        # ticks (1-4 ms): a paced board's next answer is due
                        # sooner, so wait for it at select's resolution.
                        if not endpoint.wait_readable(wait):
                            raise ReceiveTimeout("nothing yet")
                        wait = 0.0
                    data, sender = endpoint.receive_from(wait)
                except ReceiveTimeout:
                    pass
                else:
                    self._accept(data, sender)
                if queue:
                    self._serve_due(clock())
                if self.monitor.outbox:
                    self._send_outbox()
        except ConnectionClosed:
            pass
        finally:
            _SERVING.discard(self)
            self._log.info("board.stopped", **self._summary())

    def stop(self) -> None:
        """Stop serving (the boot ROM first), close the endpoint, join the
        thread; then close the capture it opened."""
        if self.rom is not None:
            self.rom.stop()
        super().stop()
        if self.capture is not None and self._owns_capture:
            self.capture.close()

    # -- one datagram ----------------------------------------------------------

    def _accept(self, data: bytes, sender: Address) -> None:
        if not self.booted:
            self._silent_drops += 1
            return
        if not self._service_time:
            self._answer(data, sender)
            return
        queue = self._queue
        if len(data) > 2 and data[2] & 0x80 and self._owed() >= TRANSIENT_TAGS:
            self._tag_drops += 1
            return
        if len(queue) >= self._queue_limit:
            self._queue_drops += 1
            return
        now = self._clock()
        self._last_due = max(now, self._last_due) + self._service_time
        queue.append((self._last_due, data, sender))

    def _owed(self) -> int:
        return sum(1 for _, data, _ in self._queue if len(data) > 2 and data[2] & 0x80)

    def _serve_due(self, now: float) -> None:
        queue = self._queue
        while queue and queue[0][0] <= now:
            _, data, sender = queue.popleft()
            self._answer(data, sender)

    def _answer(self, data: bytes, sender: Address) -> None:
        if not self.booted:  # it was, when the request came
            self._silent_drops += 1
            return
        # Only SCP (port 0) has busy codes: SDP to an application has none.
        scp = len(data) > 4 and not data[4] >> 5
        if self.faults.busy and scp and self.faults.answer_busy():
            self._busy += 1
            reply = self.monitor.error_reply(
                data, _BUSY_CODES[self._busy % len(_BUSY_CODES)]
            )
        else:
            reply = self.monitor.handle(data, sender)
        if reply is not None:
            self._send(reply, sender)
        if self.monitor.outbox:
            self._send_outbox()

    def _send(self, datagram: bytes, peer: Address) -> None:
        try:
            self._endpoint.send_to(datagram, peer)
        except ConnectionClosed:
            raise
        except TransportError as error:
            self._send_failures += 1
            self._log.warning("board.send_failed", peer=peer, error=str(error))

    def _send_outbox(self) -> None:
        """What the board's applications sent, to the hosts their tags name."""
        outbox = self.monitor.outbox
        memory = self._endpoint.address[0] == "memory"
        while outbox:
            datagram, (host, port) = outbox.popleft()
            self._send(datagram, ("memory", port) if memory else (host, port))

    def _send_traffic(self, now: float) -> None:
        assert self.traffic is not None
        memory = self._endpoint.address[0] == "memory"
        for datagram, (host, port) in self.traffic.due(self.monitor.forward_tags, now):
            try:
                self._endpoint.send_to(
                    datagram, ("memory", port) if memory else (host, port)
                )
            except ConnectionClosed:
                raise
            except TransportError:
                self._send_failures += 1

    def _summary(self) -> dict[str, object]:
        stats = self.stats
        return {
            "received": stats.received,
            "replies": stats.replies,
            "malformed": stats.malformed,
            "tag_drops": stats.tag_drops,
        }


def _is_ipv4(host: str) -> bool:
    parts = host.split(".")
    return len(parts) == 4 and all(part.isdigit() and int(part) < 256 for part in parts)
