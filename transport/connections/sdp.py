"""SDPConnection: SDP messages over a UDPConnection."""

from __future__ import annotations

from collections.abc import Callable

from messages.scp.layout import PADDING, SDP_OFFSET
from messages.sdp import SDPMessage
from transport.capture.writer import Captures
from transport.connections.udp import UDPConnection
from transport.links.endpoint import DatagramEndpoint


class SDPConnection(UDPConnection):
    """Sends and receives SDP messages to and from one chip's board.

    A reply-expected message is stamped as coming from (chip_x, chip_y) so
    that the reply is routed back through that chip's Ethernet.
    """

    def __init__(
        self,
        chip_x: int = 255,
        chip_y: int = 255,
        local_host: str | None = None,
        local_port: int | None = None,
        remote_host: str | None = None,
        remote_port: int | None = None,
        *,
        endpoint: DatagramEndpoint | None = None,
        connected: bool = False,
        capture: Captures | None = None,
    ) -> None:
        super().__init__(
            local_host,
            local_port,
            remote_host,
            remote_port,
            endpoint=endpoint,
            connected=connected,
            capture=capture,
        )
        self._chip_x = chip_x
        self._chip_y = chip_y

    @property
    def chip_x(self) -> int:
        return self._chip_x

    @property
    def chip_y(self) -> int:
        return self._chip_y

    def receive_sdp_message(self, timeout: float | None = None) -> SDPMessage:
        """The next SDP message; MalformedDatagramError if it is not one."""
        return SDPMessage.from_bytestring(self.receive(timeout), SDP_OFFSET)

    def send_sdp_message(self, sdp_message: SDPMessage) -> None:
        header = sdp_message.sdp_header
        if header.flags.reply_expected:
            header.update_for_send(self._chip_x, self._chip_y)
        else:
            header.update_for_send(0, 0)
        self.send(PADDING + sdp_message.bytestring)

    def get_receive_method(self) -> Callable[[], SDPMessage]:  # type: ignore[override]
        return self.receive_sdp_message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(chip_x={self._chip_x}, "
            f"chip_y={self._chip_y}, local_host={self.local_ip_address}, "
            f"local_port={self.local_port}, "
            f"remote_host={self.remote_ip_address}, "
            f"remote_port={self.remote_port})"
        )
