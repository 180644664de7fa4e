"""Sockets and peers: UDP connections, in-memory links, fault injection and
the virtual board. Imports only from messages."""

from transport.board import BoardStats, VirtualBoard
from transport.connections.abstract import (
    AbstractSCPConnection,
    Connection,
    Listenable,
)
from transport.connections.bmp import BMPConnection, BMPConnectionData
from transport.connections.boot import BootConnection
from transport.connections.ip_addresses import IPAddressesConnection
from transport.eieio import EIEIOConnection
from transport.endpoint import Address, DatagramEndpoint, UDPEndpoint
from transport.errors import ConnectionClosed, ReceiveTimeout, TransportError
from transport.faults import FaultPlan, FaultyEndpoint
from transport.memory import MemoryEndpoint, MemoryNetwork
from transport.scamp import SCAMPConnection
from transport.sdp import SDPConnection
from transport.udp import UDPConnection
from transport.virtual.bmp import VirtualBMP
from transport.virtual.rom import ROMSettings

__all__ = [
    "AbstractSCPConnection",
    "Address",
    "BMPConnection",
    "BMPConnectionData",
    "BoardStats",
    "BootConnection",
    "Connection",
    "ConnectionClosed",
    "DatagramEndpoint",
    "EIEIOConnection",
    "FaultPlan",
    "FaultyEndpoint",
    "IPAddressesConnection",
    "Listenable",
    "MemoryEndpoint",
    "MemoryNetwork",
    "ROMSettings",
    "ReceiveTimeout",
    "SCAMPConnection",
    "SDPConnection",
    "TransportError",
    "UDPConnection",
    "UDPEndpoint",
    "VirtualBMP",
    "VirtualBoard",
]
