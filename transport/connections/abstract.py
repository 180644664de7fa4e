"""SpiNNMan's abstract connection types, as protocols.

SpiNNMan's users type their code against ``Connection``, ``Listenable``
and ``AbstractSCPConnection`` (``spinnman.connections.abstract_classes``).
Here they are structural: every connection of ours meets the ones it
should without inheriting from them (mypy checks it below), and
``isinstance`` works on any object, SpiNNMan's connections included.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from messages.scp.base import AbstractSCPRequest
from messages.scp.enums import SCPResult
from transport.links.endpoint import DatagramEndpoint

T_co = TypeVar("T_co", covariant=True)
C = TypeVar("C")


@runtime_checkable
class Connection(Protocol):
    """A connection to a board over some medium, closed when done."""

    def is_connected(self) -> bool: ...

    def close(self) -> None: ...

    def __enter__(self: C) -> C: ...

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...


@runtime_checkable
class Listenable(Protocol[T_co]):
    """A connection a ConnectionListener can read: what it calls to receive
    one message, and whether one is waiting."""

    def get_receive_method(self) -> Callable[[], T_co]: ...

    def is_ready_to_receive(self, timeout: float = 0) -> bool: ...


@runtime_checkable
class AbstractSCPConnection(Connection, Protocol):
    """A connection that sends SCP requests and receives their responses
    (what SCPRequestPipeLine drives)."""

    @property
    def chip_x(self) -> int: ...

    @property
    def chip_y(self) -> int: ...

    def is_ready_to_receive(self, timeout: float = 0) -> bool: ...

    def receive_scp_response(
        self, timeout: float | None = 1.0
    ) -> tuple[SCPResult, int, bytes, int]: ...

    def get_scp_data(self, scp_request: AbstractSCPRequest[Any]) -> bytes: ...


@runtime_checkable
class BoardConnection(Protocol):
    """What the connection actor needs of a connection: SCAMPConnection
    has it, and so has a DrivenConnection (driven.py) around anything else."""

    @property
    def endpoint(self) -> DatagramEndpoint: ...

    @property
    def remote_ip_address(self) -> str | None: ...

    @property
    def remote_port(self) -> int | None: ...

    @property
    def chip_x(self) -> int: ...

    @property
    def chip_y(self) -> int: ...

    @property
    def n_foreign(self) -> int: ...

    def close(self) -> None: ...


if TYPE_CHECKING:  # mypy proves that ours meet them
    from messages.boot import SpinnakerBootMessage
    from messages.eieio import EIEIODataMessage
    from messages.sdp import SDPMessage
    from transport.connections.bmp import BMPConnection
    from transport.connections.boot import BootConnection
    from transport.connections.eieio import EIEIOConnection
    from transport.connections.ip_addresses import IPAddressesConnection
    from transport.connections.scamp import SCAMPConnection
    from transport.connections.sdp import SDPConnection
    from transport.connections.udp import UDPConnection

    def _scp(
        scamp: SCAMPConnection, bmp: BMPConnection
    ) -> tuple[AbstractSCPConnection, AbstractSCPConnection]:
        return scamp, bmp

    def _connections(
        udp: UDPConnection, boot: BootConnection, addresses: IPAddressesConnection
    ) -> tuple[Connection, Connection, Connection]:
        return udp, boot, addresses

    def _listenable(
        udp: UDPConnection,
        sdp: SDPConnection,
        eieio: EIEIOConnection,
        boot: BootConnection,
    ) -> tuple[
        Listenable[bytes],
        Listenable[SDPMessage],
        Listenable[EIEIODataMessage],
        Listenable[SpinnakerBootMessage],
    ]:
        return udp, sdp, eieio, boot
