"""The layout module: its offsets are the wire's (as DESIGN.md states them,
spelled out here on purpose), and its helpers make and read datagrams."""

from __future__ import annotations

import struct

import pytest

from messages import MalformedDatagramError, SDPHeader
from messages.errors import UnexpectedResponseCodeError
from messages.scp import (
    GetVersion,
    ReadMemory,
    SCPCommand,
    SCPResult,
    WriteMemory,
    layout,
)
from messages.scp.bulk import ChunkBuilder

pytestmark = pytest.mark.timeout(10)


def reply(code: int, sequence: int, data: bytes = b"") -> bytes:
    """A reply built by hand: padding, an SDP header, result, sequence."""
    sdp = bytes([0x07, 0xFF, 0xFF, 0, 0, 0, 0, 0])
    return b"\0\0" + sdp + struct.pack("<2H", code, sequence) + data


def test_the_offsets_are_the_wire_s() -> None:
    assert bytes(2) == layout.PADDING
    assert layout.SDP_OFFSET == 2
    assert layout.COMMAND_OFFSET == layout.RESULT_OFFSET == 10
    assert layout.SEQUENCE_OFFSET == 12
    assert layout.ARGUMENTS_OFFSET == layout.REPLY_DATA_OFFSET == 14
    assert layout.MIN_REPLY == layout.HEAD.size == 14
    assert layout.REQUEST_DATA_OFFSET == 26
    assert layout.SCP_SCAMP_PORT == 17893


def test_a_request_datagram_is_padding_then_the_stamped_request() -> None:
    request = WriteMemory((1, 2, 3), 0x6000_0000, b"abcd")
    request.scp_request_header.sequence = 0x1234
    datagram = layout.request_datagram(request, 4, 5)
    assert datagram[:2] == b"\0\0"
    header = SDPHeader.from_bytestring(datagram, 2)
    assert (header.source_chip_x, header.source_chip_y) == (4, 5)
    assert (header.destination_chip_x, header.destination_chip_y) == (1, 2)
    command, sequence, address, size = struct.unpack_from("<2H2I", datagram, 10)
    assert (command, sequence) == (SCPCommand.CMD_WRITE.value, 0x1234)
    assert (address, size) == (0x6000_0000, 4)
    assert datagram[26:] == b"abcd"


def test_the_bulk_builder_packs_what_the_request_packs() -> None:
    request = ReadMemory((1, 2, 3), 0x6000_0001, 255)
    expected = layout.request_datagram(request, 7, 8)
    assert bytes(ChunkBuilder(1, 2, 3, 7, 8).read(0x6000_0001, 255)) == expected


def test_reply_header_reads_result_and_sequence() -> None:
    assert layout.reply_header(reply(0x80, 0xBEEF, b"xyz")) == (
        SCPResult.RC_OK,
        0xBEEF,
    )
    assert layout.reply_header(reply(0x87, 3)) == (SCPResult.RC_ROUTE, 3)


@pytest.mark.parametrize("length", range(14))
def test_reply_header_refuses_a_short_datagram(length: int) -> None:
    with pytest.raises(MalformedDatagramError, match="at least 14"):
        layout.reply_header(reply(0x80, 1)[:length])


def test_reply_header_refuses_an_unknown_result_code() -> None:
    with pytest.raises(MalformedDatagramError, match="0x0042"):
        layout.reply_header(reply(0x42, 1))


def test_parse_reply_gives_the_request_s_response() -> None:
    response = layout.parse_reply(
        ReadMemory((0, 0, 0), 0, 4), reply(0x80, 1, b"\1\2\3\4")
    )
    assert response.payload == b"\1\2\3\4"


def test_parse_reply_raises_for_an_error_code() -> None:
    with pytest.raises(UnexpectedResponseCodeError) as caught:
        layout.parse_reply(GetVersion(0, 0, 0), reply(0x87, 1))
    assert caught.value.result is SCPResult.RC_ROUTE
