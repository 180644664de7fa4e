"""SCAMPConnection: SCP requests to and responses from a board's monitor."""

from __future__ import annotations

from typing import Any

from messages.scp.base import AbstractSCPRequest
from messages.scp.enums import SCPResult
from messages.scp.layout import (
    SCP_SCAMP_PORT,
    SDP_OFFSET,
    reply_header,
    request_datagram,
)
from transport.capture.writer import Captures
from transport.connections.sdp import SDPConnection
from transport.links.endpoint import DatagramEndpoint

__all__ = ["SCP_SCAMP_PORT", "SCAMPConnection"]


class SCAMPConnection(SDPConnection):
    """SpiNNMan's SCAMPConnection: remote port SCP_SCAMP_PORT unless told
    otherwise."""

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
        if remote_port is None:
            remote_port = SCP_SCAMP_PORT
        super().__init__(
            chip_x,
            chip_y,
            local_host,
            local_port,
            remote_host,
            remote_port,
            endpoint=endpoint,
            connected=connected,
            capture=capture,
        )

    def update_chip_coordinates(self, x: int, y: int) -> None:
        self._chip_x = x
        self._chip_y = y

    def get_scp_data(
        self,
        scp_request: AbstractSCPRequest[Any],
        x: int | None = None,
        y: int | None = None,
    ) -> bytes:
        """The datagram for ``scp_request``, stamped for this connection."""
        return request_datagram(
            scp_request,
            self._chip_x if x is None else x,
            self._chip_y if y is None else y,
        )

    def receive_scp_response(
        self, timeout: float | None = 1.0
    ) -> tuple[SCPResult, int, bytes, int]:
        """(result, sequence, datagram, offset of the SDP header).

        Raises MalformedDatagramError for a datagram that is not a response.
        """
        data = self.receive(timeout)
        result, sequence = reply_header(data)
        return result, sequence, data, SDP_OFFSET

    def receive_scp_response_with_address(
        self, timeout: float | None = 1.0
    ) -> tuple[SCPResult, int, bytes, int, str, int]:
        data, (host, port) = self.receive_with_address(timeout)
        result, sequence = reply_header(data)
        return result, sequence, data, SDP_OFFSET, host, port
