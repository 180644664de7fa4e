"""SCAMPConnection: SCP requests to and responses from a board's monitor."""

from __future__ import annotations

import struct
from typing import Any

from messages.errors import MalformedDatagramError
from messages.scp.base import AbstractSCPRequest
from messages.scp.enums import SCPResult
from messages.scp.header import result_code
from transport.capture import PacketCapture
from transport.endpoint import DatagramEndpoint
from transport.sdp import SDP_PADDING, SDPConnection

#: The UDP port of a board's SCAMP monitor.
SCP_SCAMP_PORT = 17893
#: Padding, SDP header, result code and sequence number.
MIN_RESPONSE_LENGTH = 14
_RESULT_AND_SEQUENCE = struct.Struct("<2H")


def parse_response_header(data: bytes) -> tuple[SCPResult, int]:
    """Result code and sequence number of an SCP response datagram."""
    if len(data) < MIN_RESPONSE_LENGTH:
        raise MalformedDatagramError(
            f"SCP response of {len(data)} bytes; at least {MIN_RESPONSE_LENGTH} needed"
        )
    code, sequence = _RESULT_AND_SEQUENCE.unpack_from(data, 10)
    return result_code(code), sequence


class SCAMPConnection(SDPConnection):
    """SpiNNMan's SCAMPConnection: remote port 17893 unless told otherwise."""

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
        capture: PacketCapture | None = None,
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
        scp_request.sdp_header.update_for_send(
            self._chip_x if x is None else x, self._chip_y if y is None else y
        )
        return SDP_PADDING + scp_request.bytestring

    def receive_scp_response(
        self, timeout: float | None = 1.0
    ) -> tuple[SCPResult, int, bytes, int]:
        """(result, sequence, datagram, offset of the SDP header).

        Raises MalformedDatagramError for a datagram that is not a response.
        """
        data = self.receive(timeout)
        result, sequence = parse_response_header(data)
        return result, sequence, data, 2

    def receive_scp_response_with_address(
        self, timeout: float | None = 1.0
    ) -> tuple[SCPResult, int, bytes, int, str, int]:
        data, (host, port) = self.receive_with_address(timeout)
        result, sequence = parse_response_header(data)
        return result, sequence, data, 2, host, port
