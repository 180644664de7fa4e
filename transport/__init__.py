"""Sockets and peers, in subpackages by concern, each layer importing only
from those below it (tests/test_layering.py checks it) and from messages:

- ``links/``: the datagram endpoint every link offers (DatagramEndpoint,
  Address), UDP sockets, the in-process network for unit tests, faults;
- ``capture/``: the pcap format, the capture and its file, the taps that
  feed it, replay, and the Wireshark dissector;
- ``connections/``: SpiNNMan's connections (UDP, SDP, SCAMP, EIEIO, boot,
  BMP, IP addresses), their protocols, and any object driven through its
  own methods (driven.py), plus a blocking stop-and-wait ``call``;
- ``virtual/``: the virtual board (monitor, SDRAM, IP-tag traffic, the
  SpiNN-5 shape, application stand-ins) and its process.

``errors`` and ``logs`` sit below them all. The public names are here.
"""

from transport.connections.abstract import (
    AbstractSCPConnection,
    Connection,
    Listenable,
)
from transport.connections.bmp import BMPConnection, BMPConnectionData
from transport.connections.boot import BootConnection
from transport.connections.eieio import EIEIOConnection
from transport.connections.ip_addresses import IPAddressesConnection
from transport.connections.scamp import SCAMPConnection
from transport.connections.sdp import SDPConnection
from transport.connections.udp import UDPConnection
from transport.errors import ConnectionClosed, ReceiveTimeout, TransportError
from transport.links.endpoint import Address, DatagramEndpoint, UDPEndpoint
from transport.links.faults import FaultPlan, FaultyEndpoint
from transport.links.in_process import MemoryEndpoint, MemoryNetwork
from transport.virtual.bmp import VirtualBMP
from transport.virtual.board import BoardStats, VirtualBoard
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
