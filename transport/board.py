"""The virtual board: a BoardMonitor served over UDP or an in-memory link.

The I/O shell around the monitor models what a host sees of a real board:
replies take a service time, at most 8 reply-expected requests can be held
at once (one per transient IP tag; a ninth is dropped unanswered), the
request queue is bounded, and a seeded fault plan can drop, duplicate,
reorder, delay, corrupt or answer "busy". Nothing a client sends stops it.
"""

from __future__ import annotations

import functools
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from messages.scp.enums import SCPResult
from transport.capture import CaptureTarget, attach, open_capture
from transport.endpoint import Address, DatagramEndpoint, UDPEndpoint
from transport.errors import ConnectionClosed, ReceiveTimeout, TransportError
from transport.faults import FaultPlan, FaultyEndpoint, Sides
from transport.logs import get_logger
from transport.memory import MemoryNetwork
from transport.monitor import BoardMonitor
from transport.traffic import TagTraffic
from transport.virtual.rom import ROMServer, ROMSettings, ROMStats

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


#: The boards serving now in this process (weakly held), for metrics.
_SERVING: weakref.WeakSet[VirtualBoard] = weakref.WeakSet()


def serving_boards() -> list[VirtualBoard]:
    """The virtual boards of this process that are serving now."""
    return list(_SERVING)


class VirtualBoard:
    """A SpiNNaker board's monitor that runs anywhere.

    Serve UDP on ``host:port`` (port 0 picks a free one), or pass ``network``
    to serve an in-memory link. ``faults`` apply to what the board
    receives, sends or both (``fault_sides``). ``start()`` runs it on a thread;
    ``serve_forever()`` runs it on the caller's. ``capture`` (a pcap file,
    a template with {host} and {port}, a directory or a PacketCapture)
    records every datagram on the board's wire (transport/capture.py).

    ``booted=False`` starts it cold: silent on its port until its boot ROM,
    on UDP 54321 of its host, has been sent an image (``rom`` says how the
    ROM behaves; transport/virtual/rom.py). A board with ``rom`` given but
    booted has a ROM for when a VirtualBMP power-cycles it.
    """

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
        booted: bool = True,
        rom: ROMSettings | None = None,
    ) -> None:
        if service_time < 0:
            raise ValueError(f"service_time={service_time}: must be >= 0")
        if queue_limit < 1:
            raise ValueError(f"queue_limit={queue_limit}: must be >= 1")
        self._new_monitor = functools.partial(
            BoardMonitor, width, height, memory_limit=memory_limit
        )
        self.monitor = self._new_monitor()
        #: Whether SC&MP runs: if not, the board answers nothing.
        self.booted = True
        if endpoint is None:
            endpoint = (
                network.endpoint(port)
                if network is not None
                else UDPEndpoint(host, port)
            )
        try:
            self.capture, self._owns_capture = open_capture(capture, *endpoint.address)
        except BaseException:
            endpoint.close()
            raise
        if self.capture is not None:
            # Inside the fault injector: the capture shows what went on
            # the wire, not what the board meant to send.
            endpoint = attach(endpoint, self.capture)
        self.faults = faults if faults is not None else FaultPlan.none()
        if self.faults.active:
            endpoint = FaultyEndpoint(
                endpoint, self.faults, sides=fault_sides, clock=clock
            )
        self._endpoint = endpoint
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
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._log = log.bind(board=self.address_text)

    # -- identity and stats ------------------------------------------------

    @property
    def address(self) -> Address:
        return self._endpoint.address

    @property
    def address_text(self) -> str:
        host, port = self._endpoint.address
        return f"{host}:{port}"

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

    def forget(self) -> None:
        """Lose everything the monitor held (memory, tags, heaps), as a
        power cycle or a reset does."""
        self.monitor = self._new_monitor()

    # -- running -------------------------------------------------------------

    def start(self) -> VirtualBoard:
        """Serve on a daemon thread until stop()."""
        if self._thread is not None:
            raise RuntimeError("board already started")
        self._thread = threading.Thread(
            target=self.serve_forever, name=f"board-{self.address_text}", daemon=True
        )
        self._thread.start()
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
                if self.traffic is not None and self.monitor.ip_tags:
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
        except ConnectionClosed:
            pass
        finally:
            _SERVING.discard(self)
            self._log.info("board.stopped", **self._summary())

    def stop(self) -> None:
        """Stop serving, close the endpoint and join the thread."""
        self._stopping.set()
        if self.rom is not None:
            self.rom.stop()
        self._endpoint.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        if self.capture is not None and self._owns_capture:
            self.capture.close()

    close = stop

    def __enter__(self) -> VirtualBoard:
        if self._thread is None:
            self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

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
        if self.faults.busy and self.faults.answer_busy():
            self._busy += 1
            reply = self.monitor.error_reply(
                data, _BUSY_CODES[self._busy % len(_BUSY_CODES)]
            )
        else:
            reply = self.monitor.handle(data, sender)
        if reply is not None:
            try:
                self._endpoint.send_to(reply, sender)
            except ConnectionClosed:
                raise
            except TransportError as error:
                self._send_failures += 1
                self._log.warning("board.send_failed", peer=sender, error=str(error))

    def _send_traffic(self, now: float) -> None:
        assert self.traffic is not None
        memory = self._endpoint.address[0] == "memory"
        for datagram, (host, port) in self.traffic.due(self.monitor.ip_tags, now):
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
