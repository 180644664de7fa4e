"""What a BMP says about itself: version, serial number, the frame's BMPs
and the network settings of its board.

A BMP answers CMD_VER like a monitor (``BC&MP/Spin5-BMP`` then ``2.1.2``;
its x, y and p fields carry its frame, CAN and board numbers), and
CMD_BMP_INFO with the block its argument 1 names (``bmp_cmd.c``). SpiNNMan
reads only the version and the ADC block; the others are read here as the
BMP lays them out and as JavaSpiNNaker reads them.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from messages.bmp.base import BMPRequest, BMPResponse, payload
from messages.bmp.enums import MAX_BOARD, BMPInfo
from messages.scp.enums import SCPCommand
from messages.scp.header import SCPRequestHeader
from messages.scp.version import VersionInfo

#: hw_ver, the LPC1768's serial number, flash buffer, board_stat and Cortex
#: boot vector addresses.
SERIAL_VECTOR = struct.Struct("<I16sIII")
#: One byte per board of the frame.
CAN_STATUS_SIZE = MAX_BOARD + 1
#: ip_data_t: flags, MAC, IP address, gateway, net mask, UDP port, padding.
IP_DATA = struct.Struct("<H6s4s4s4sH10x")


class BMPGetVersionResponse(BMPResponse[VersionInfo]):
    __slots__ = ()

    def _parse_payload(self, data: bytes, offset: int) -> VersionInfo:
        return VersionInfo(data, offset)

    @property
    def version_info(self) -> VersionInfo:
        return self.value


class BMPGetVersion(BMPRequest[BMPGetVersionResponse]):
    """Ask ``board``'s BMP what it runs (``BC&MP/Spin5-BMP``, 2.1.2)."""

    __slots__ = ()

    def __init__(self, board: int) -> None:
        super().__init__(board, SCPRequestHeader(SCPCommand.CMD_VER))

    def get_scp_response(self) -> BMPGetVersionResponse:
        return BMPGetVersionResponse("Read BMP version", SCPCommand.CMD_VER, self.board)


@dataclass(frozen=True)
class SerialVector:
    """CMD_BMP_INFO / SERIAL: who the BMP is."""

    hardware_version: int
    #: The LPC1768's device serial number, four words.
    serial_number: tuple[int, int, int, int]
    flash_buffer: int
    board_stat: int
    cortex_boot: int

    def to_bytes(self) -> bytes:
        return SERIAL_VECTOR.pack(
            self.hardware_version,
            struct.pack("<4I", *self.serial_number),
            self.flash_buffer,
            self.board_stat,
            self.cortex_boot,
        )

    @staticmethod
    def from_bytes(data: bytes, offset: int = 0) -> SerialVector:
        block = payload(data, offset, SERIAL_VECTOR.size, "BMP serial vector")
        version, serial, flash, stat, boot = SERIAL_VECTOR.unpack(block)
        number: tuple[int, int, int, int] = struct.unpack("<4I", serial)
        return SerialVector(version, number, flash, stat, boot)


@dataclass(frozen=True)
class IPData:
    """One ``ip_data_t``: how the BMP, or its board's Ethernet chip, is
    set up on the network."""

    ip_address: str
    gateway: str
    net_mask: str
    mac_address: bytes = bytes(6)
    udp_port: int = 0
    flags: int = 0

    def to_bytes(self) -> bytes:
        return IP_DATA.pack(
            self.flags,
            self.mac_address,
            ipaddress.IPv4Address(self.ip_address).packed,
            ipaddress.IPv4Address(self.gateway).packed,
            ipaddress.IPv4Address(self.net_mask).packed,
            self.udp_port,
        )

    @staticmethod
    def from_bytes(data: bytes, offset: int = 0) -> IPData:
        block = payload(data, offset, IP_DATA.size, "BMP IP data")
        flags, mac, ip, gateway, mask, port = IP_DATA.unpack(block)
        return IPData(
            str(ipaddress.IPv4Address(ip)),
            str(ipaddress.IPv4Address(gateway)),
            str(ipaddress.IPv4Address(mask)),
            mac,
            port,
            flags,
        )


@dataclass(frozen=True)
class BMPIPAddresses:
    """CMD_BMP_INFO / IP_ADDR: the BMP's settings, then its board's."""

    bmp: IPData
    spinnaker: IPData

    def to_bytes(self) -> bytes:
        return self.bmp.to_bytes() + self.spinnaker.to_bytes()


class ReadSerialVectorResponse(BMPResponse[SerialVector]):
    __slots__ = ()

    def _parse_payload(self, data: bytes, offset: int) -> SerialVector:
        return SerialVector.from_bytes(data, offset)

    @property
    def serial_vector(self) -> SerialVector:
        return self.value


class ReadCANStatusResponse(BMPResponse[bytes]):
    __slots__ = ()

    def _parse_payload(self, data: bytes, offset: int) -> bytes:
        return payload(data, offset, CAN_STATUS_SIZE, "CAN status")

    @property
    def can_status(self) -> bytes:
        """A byte per board of the frame, zero where there is no BMP."""
        return self.value

    @property
    def boards(self) -> tuple[int, ...]:
        """The boards whose BMPs are on the frame's CAN bus."""
        return tuple(board for board, status in enumerate(self.value) if status)


class ReadIPAddressResponse(BMPResponse[BMPIPAddresses]):
    __slots__ = ()

    def _parse_payload(self, data: bytes, offset: int) -> BMPIPAddresses:
        return BMPIPAddresses(
            IPData.from_bytes(data, offset),
            IPData.from_bytes(data, offset + IP_DATA.size),
        )

    @property
    def addresses(self) -> BMPIPAddresses:
        return self.value


class ReadSerialVector(BMPRequest[ReadSerialVectorResponse]):
    """Read ``board``'s BMP's hardware version and serial number."""

    __slots__ = ()

    def __init__(self, board: int) -> None:
        super().__init__(
            board,
            SCPRequestHeader(SCPCommand.CMD_BMP_INFO),
            argument_1=BMPInfo.SERIAL.value,
        )

    def get_scp_response(self) -> ReadSerialVectorResponse:
        return ReadSerialVectorResponse(
            "Read BMP serial vector", SCPCommand.CMD_BMP_INFO, self.board
        )


class ReadCANStatus(BMPRequest[ReadCANStatusResponse]):
    """Ask a frame's BMP (board 0's, unless told) which BMPs it can reach."""

    __slots__ = ()

    def __init__(self, board: int = 0) -> None:
        super().__init__(
            board,
            SCPRequestHeader(SCPCommand.CMD_BMP_INFO),
            argument_1=BMPInfo.CAN_STATUS.value,
        )

    def get_scp_response(self) -> ReadCANStatusResponse:
        return ReadCANStatusResponse(
            "Read CAN status", SCPCommand.CMD_BMP_INFO, self.board
        )


class ReadIPAddress(BMPRequest[ReadIPAddressResponse]):
    """Read the network settings of ``board``'s BMP and Ethernet chip."""

    __slots__ = ()

    def __init__(self, board: int) -> None:
        super().__init__(
            board,
            SCPRequestHeader(SCPCommand.CMD_BMP_INFO),
            argument_1=BMPInfo.IP_ADDR.value,
        )

    def get_scp_response(self) -> ReadIPAddressResponse:
        return ReadIPAddressResponse(
            "Read IP address data", SCPCommand.CMD_BMP_INFO, self.board
        )
