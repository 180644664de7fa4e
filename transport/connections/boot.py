"""BootConnection: boot frames to a board's boot ROM, paced.

SpiNNMan's BootConnection sleeps 0.1 s after every frame it sends. This one
sends a frame no sooner than ``gap`` seconds after the one before (so the
first goes at once and nothing waits after the last), ``gap`` being a
parameter (messages.boot.DEFAULT_FRAME_GAP unless told). ``boot`` sends a
whole boot: the image is checked before any frame goes out.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Mapping

from messages.boot import (
    BOOT_PORT,
    DEFAULT_FRAME_GAP,
    SPINN5_HARDWARE_VERSION,
    SPINN5_LED_0,
    BootImage,
    BootPlan,
    SpinnakerBootMessage,
    SystemVariableBootValues,
    SystemVariableDefinition,
    boot_values,
)
from messages.errors import InvalidArgumentError
from transport.capture.writer import PacketCapture
from transport.connections.udp import UDPConnection
from transport.links.endpoint import DatagramEndpoint
from transport.logs import get_logger

log = get_logger(__name__)

ImageSource = BootImage | str | os.PathLike[str] | None


def check_gap(gap: object) -> float:
    if (
        isinstance(gap, bool)
        or not isinstance(gap, (int, float))
        or not math.isfinite(gap)
        or gap < 0
    ):
        raise InvalidArgumentError("gap", gap, "must be seconds, 0 or more")
    return float(gap)


class BootConnection(UDPConnection):
    """Sends boot frames to ``remote_host:remote_port`` (54321), receives
    them (a board's hellos) as SpinnakerBootMessages.

    Without a remote host it only listens. ``clock`` and ``sleep`` keep
    the pacing's time (tests give their own).
    """

    def __init__(
        self,
        remote_host: str | None = None,
        remote_port: int = BOOT_PORT,
        *,
        local_host: str | None = None,
        local_port: int | None = None,
        gap: float = DEFAULT_FRAME_GAP,
        endpoint: DatagramEndpoint | None = None,
        capture: PacketCapture | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._gap = check_gap(gap)
        super().__init__(
            local_host,
            local_port,
            remote_host,
            remote_port,
            endpoint=endpoint,
            capture=capture,
        )
        self._clock = clock
        self._sleep = sleep
        self._last_send: float | None = None
        #: Frames sent so far.
        self.n_sent = 0

    @property
    def gap(self) -> float:
        """Seconds left between one frame and the next."""
        return self._gap

    def send_boot_message(
        self, boot_message: SpinnakerBootMessage, *, gap: float | None = None
    ) -> None:
        """Send one frame, no sooner than ``gap`` (this connection's unless
        given) after the one before."""
        wait = self._gap if gap is None else check_gap(gap)
        if self._last_send is not None:
            left = self._last_send + wait - self._clock()
            if left > 0:
                self._sleep(left)
        self.send(boot_message.bytestring)
        self._last_send = self._clock()
        self.n_sent += 1

    def send_boot_messages(
        self, boot_messages: Iterable[SpinnakerBootMessage], *, gap: float | None = None
    ) -> None:
        for message in boot_messages:
            self.send_boot_message(message, gap=gap)

    def send_boot_plan(self, plan: BootPlan) -> None:
        """Send a plan's frames at the plan's pace."""
        self.send_boot_messages(plan.messages, gap=plan.gap)

    def boot(
        self,
        image: ImageSource = None,
        *,
        values: SystemVariableBootValues | None = None,
        hardware_version: int = SPINN5_HARDWARE_VERSION,
        led_0: int = SPINN5_LED_0,
        extra_boot_values: Mapping[SystemVariableDefinition, int | bytes] | None = None,
    ) -> BootPlan:
        """Send a whole boot: ``image`` (a path, a BootImage, or None for the
        one an installed SpiNNMan ships) with ``values`` (SpiNNMan's for a
        SpiNN-5 and the time now, unless given).

        A bad or missing image raises BootImageError before anything is
        sent. Returns the plan sent: SC&MP is worth asking once its
        ``settle`` seconds have passed.
        """
        loaded = image if isinstance(image, BootImage) else BootImage.load(image)
        if values is None:
            values = boot_values(
                int(time.time()),
                hardware_version=hardware_version,
                led_0=led_0,
                extra_boot_values=extra_boot_values,
            )
        plan = BootPlan.build(loaded, values, gap=self._gap)
        log.info(
            "boot.send",
            board=f"{self.remote_ip_address}:{self.remote_port}",
            image=loaded.source,
            frames=len(plan.messages),
            gap=plan.gap,
        )
        self.send_boot_plan(plan)
        return plan

    def receive_boot_message(
        self, timeout: float | None = None
    ) -> SpinnakerBootMessage:
        """The next frame; MalformedDatagramError if it is not one (the
        connection stays usable), ReceiveTimeout, ConnectionClosed."""
        return SpinnakerBootMessage.from_bytestring(self.receive(timeout))

    def get_receive_method(self) -> Callable[[], SpinnakerBootMessage]:  # type: ignore[override]
        return self.receive_boot_message
