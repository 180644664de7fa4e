"""IP tags: how a board knows where to send the SDP traffic a host wants."""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Sequence

from messages.errors import InvalidArgumentError
from messages.scp.base import (
    AbstractSCPRequest,
    AbstractSCPResponse,
    CheckOKResponse,
    monitor_header,
)
from messages.scp.enums import IPTagCommand, SCPCommand
from messages.scp.header import SCPRequestHeader
from messages.validate import check_chip, check_int

MAX_IP_TAG = 7
#: SC&MP's tag table: 8 fixed tags for applications (0-7), then 8 transient
#: ones (8-15) it uses to route its replies.
TAG_FIXED_SIZE = 8
TAG_POOL_SIZE = 8
TAG_TABLE_SIZE = TAG_FIXED_SIZE + TAG_POOL_SIZE
#: sizeof(iptag_t): CMD_IPTAG GET answers this many bytes a tag.
IPTAG_ENTRY_SIZE = 32
#: What IPTAG TTO answers (before it sets the new timeout): the timeout it
#: had, the entry size, the pool and fixed tag counts.
TTO_REPLY = struct.Struct("<4B")
#: The transient tags' timeout after boot: 10 ms * 2 ** (n - 1).
TTO_AT_BOOT = 9
_STRIP_BIT = 28
_USE_SENDER_BIT = 30
# ip, mac, port, timeout, flags, count, rx_port, y, x, cpu|port<<5 (then
# padding to IPTAG_ENTRY_SIZE).
IPTAG_INFO = struct.Struct("<4s6s3HIH3B")

FLAG_IN_USE = 0x8000
FLAG_TEMPORARY = 0x4000
FLAG_ARP = 0x2000
FLAG_USE_SENDER = 0x0400
FLAG_REVERSE = 0x0200
FLAG_STRIP = 0x0100
#: Where arg1 of SET carries the flags: bits 28-31 are flags 8-11.
FLAGS_SHIFT = 20
FLAGS_MASK = 0x0F00


def _tag_argument(command: IPTagCommand, tag: int) -> int:
    return (command.value << 16) | check_int("tag", tag, 0, MAX_IP_TAG)


def host_bytes(host: str | bytes | bytearray | Sequence[int]) -> bytes:
    """Four address bytes from a dotted string or a sequence of ints."""
    if isinstance(host, str):
        try:
            return ipaddress.IPv4Address(host).packed
        except ValueError:
            raise InvalidArgumentError(
                "host", host, "must be an IPv4 address"
            ) from None
    try:
        packed = bytes(host)
    except (TypeError, ValueError):
        raise InvalidArgumentError("host", host, "must be 4 bytes in 0..255") from None
    if len(packed) != 4:
        raise InvalidArgumentError("host", host, "must be 4 bytes")
    return packed


class IPTagSet(AbstractSCPRequest[CheckOKResponse]):
    """Point tag 0..7 of chip (x, y) at host:port."""

    __slots__ = ()

    def __init__(
        self,
        x: int,
        y: int,
        host: str | bytes | bytearray | Sequence[int],
        port: int,
        tag: int,
        *,
        strip: bool = False,
        use_sender: bool = False,
    ) -> None:
        x, y = check_chip(x, y)
        address = host_bytes(host)
        super().__init__(
            monitor_header(x, y),
            SCPRequestHeader(SCPCommand.CMD_IPTAG),
            argument_1=(
                int(bool(strip)) << _STRIP_BIT
                | int(bool(use_sender)) << _USE_SENDER_BIT
                | _tag_argument(IPTagCommand.SET, tag)
            ),
            argument_2=check_int("port", port, 0, 0xFFFF),
            argument_3=int.from_bytes(address, "little"),
        )

    def get_scp_response(self) -> CheckOKResponse:
        return CheckOKResponse("set IP tag", "CMD_IPTAG")


class IPTagGetResponse(AbstractSCPResponse):
    __slots__ = (
        "ip_address",
        "mac_address",
        "port",
        "timeout",
        "flags",
        "count",
        "rx_port",
        "spin_chip_x",
        "spin_chip_y",
        "spin_cpu",
        "spin_port",
    )

    def __init__(self) -> None:
        super().__init__()
        self.ip_address = b"\0" * 4
        self.mac_address = b"\0" * 6
        self.port = self.timeout = self.flags = self.count = 0
        self.rx_port = self.spin_chip_x = self.spin_chip_y = 0
        self.spin_cpu = self.spin_port = 0

    def read_data_bytestring(self, data: bytes, offset: int) -> None:
        self.check_ok("get IP tag info", "CMD_IPTAG")
        (
            self.ip_address,
            self.mac_address,
            self.port,
            self.timeout,
            self.flags,
            self.count,
            self.rx_port,
            self.spin_chip_y,
            self.spin_chip_x,
            cpu_port,
        ) = IPTAG_INFO.unpack_from(data, offset)
        self.spin_port = (cpu_port >> 5) & 7
        self.spin_cpu = cpu_port & 0x1F

    @property
    def in_use(self) -> bool:
        return bool(self.flags & FLAG_IN_USE)

    @property
    def is_temporary(self) -> bool:
        return bool(self.flags & FLAG_TEMPORARY)

    @property
    def is_arp(self) -> bool:
        return bool(self.flags & FLAG_ARP)

    @property
    def is_reverse(self) -> bool:
        return bool(self.flags & FLAG_REVERSE)

    @property
    def strip_sdp(self) -> bool:
        return bool(self.flags & FLAG_STRIP)


class IPTagGet(AbstractSCPRequest[IPTagGetResponse]):
    """Read what tag 0..7 of chip (x, y) points at."""

    __slots__ = ()

    def __init__(self, x: int, y: int, tag: int) -> None:
        x, y = check_chip(x, y)
        super().__init__(
            monitor_header(x, y),
            SCPRequestHeader(SCPCommand.CMD_IPTAG),
            argument_1=_tag_argument(IPTagCommand.GET, tag),
            argument_2=1,
        )

    def get_scp_response(self) -> IPTagGetResponse:
        return IPTagGetResponse()


class IPTagClear(AbstractSCPRequest[CheckOKResponse]):
    """Free tag 0..7 of chip (x, y)."""

    __slots__ = ()

    def __init__(self, x: int, y: int, tag: int) -> None:
        x, y = check_chip(x, y)
        super().__init__(
            monitor_header(x, y),
            SCPRequestHeader(SCPCommand.CMD_IPTAG),
            argument_1=_tag_argument(IPTagCommand.CLR, tag),
        )

    def get_scp_response(self) -> CheckOKResponse:
        return CheckOKResponse("clear IP tag", "CMD_IPTAG")
