"""EIEIOConnection: EIEIO data messages over a UDPConnection.

EIEIO travels bare in UDP (no SDP padding or header): live event streams
to and from a board's tagged cores, and between hosts.
"""

from __future__ import annotations

from collections.abc import Callable

from messages.eieio import EIEIODataMessage
from transport.connections.udp import UDPConnection


class EIEIOConnection(UDPConnection):
    """Sends and receives EIEIO data messages; a Listenable for them.

    EIEIO command messages are not supported: receiving one raises
    MalformedDatagramError, as any other datagram that is not EIEIO data.
    """

    def receive_eieio_message(self, timeout: float | None = None) -> EIEIODataMessage:
        """The next message from the remote peer.

        MalformedDatagramError if the datagram is not EIEIO data (the
        connection stays usable); ReceiveTimeout, ConnectionClosed as for
        ``receive``.
        """
        return EIEIODataMessage.from_bytestring(self.receive(timeout), 0)

    def send_eieio_message(self, eieio_message: EIEIODataMessage) -> None:
        self.send(eieio_message.bytestring)

    def send_eieio_message_to(
        self, eieio_message: EIEIODataMessage, ip_address: str, port: int
    ) -> None:
        self.send_to(eieio_message.bytestring, (ip_address, port))

    def get_receive_method(self) -> Callable[[], EIEIODataMessage]:  # type: ignore[override]
        return self.receive_eieio_message
