"""BMPConnection: SCP to a frame's Board Management Processor.

A BMP answers SCP on the SCP port of its own address, for the boards of its
frame (each request names its board in the SDP destination CPU, chip
(0, 0)). This is a SCAMPConnection that stamps requests as from chip
(0, 0), as SpiNNMan's BMPConnection does, and knows its boards; so the
pipeline, the client's blocking ``call`` and the capture work over it as
over any board connection.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from messages.bmp import check_boards
from messages.errors import InvalidArgumentError
from transport.capture.writer import Captures
from transport.connections.scamp import SCP_SCAMP_PORT, SCAMPConnection
from transport.links.endpoint import DatagramEndpoint


class BMPConnectionDataLike(Protocol):
    """SpiNNMan's BMPConnectionData, or ours."""

    @property
    def ip_address(self) -> str: ...

    @property
    def boards(self) -> Sequence[int]: ...

    @property
    def port_num(self) -> int | None: ...


@dataclass(frozen=True)
class BMPConnectionData:
    """Where a BMP is and which of its frame's boards to address
    (SpiNNMan's arguments: ``BMPConnectionData(ip_address, boards,
    port_num)``)."""

    ip_address: str
    boards: Sequence[int]
    port_num: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "boards", check_boards(self.boards))


class BMPConnection(SCAMPConnection):
    """SCP to a BMP: ``BMPConnection(connection_data)`` as in SpiNNMan, or
    ``BMPConnection(remote_host=..., boards=..., remote_port=...)``."""

    def __init__(
        self,
        connection_data: BMPConnectionDataLike | None = None,
        *,
        remote_host: str | None = None,
        boards: int | Iterable[int] = (0,),
        remote_port: int | None = None,
        local_host: str | None = None,
        local_port: int | None = None,
        endpoint: DatagramEndpoint | None = None,
        connected: bool = False,
        capture: Captures | None = None,
    ) -> None:
        if (connection_data is None) == (remote_host is None):
            raise InvalidArgumentError(
                "connection_data",
                connection_data,
                "give a BMPConnectionData or a remote_host, one of the two",
            )
        if connection_data is not None:
            remote_host = connection_data.ip_address
            boards = connection_data.boards
            remote_port = connection_data.port_num
        self._boards = check_boards(boards)
        super().__init__(
            0,
            0,
            local_host,
            local_port,
            remote_host,
            SCP_SCAMP_PORT if remote_port is None else remote_port,
            endpoint=endpoint,
            connected=connected,
            capture=capture,
        )

    @property
    def boards(self) -> tuple[int, ...]:
        """The boards of the frame this connection addresses."""
        return self._boards

    def update_chip_coordinates(self, x: int, y: int) -> None:
        """A BMP is always chip (0, 0)."""
        raise InvalidArgumentError(
            "chip", (x, y), "a BMP connection always stamps chip (0, 0)"
        )

    def __repr__(self) -> str:
        return (
            f"BMPConnection(boards={list(self._boards)}, "
            f"local_host={self.local_ip_address}, local_port={self.local_port}, "
            f"remote_host={self.remote_ip_address}, "
            f"remote_port={self.remote_port})"
        )
