"""Where everything sits in an SCP datagram on UDP, and the board's port.

The one home of these facts: nothing else in the packages spells out the
padding, an offset or the port. A datagram is, by byte offset:

    0   padding, 2 bytes of zero
    2   the SDP header, 8 bytes (messages/sdp.py)
    10  a request's command or a reply's result code, 16 bits
    12  the sequence number, 16 bits
    14  a request's three 32-bit arguments, or a reply's data
    26  a request's data (at most 256 bytes)

Hot loops (the window, bulk runs) read the offsets and structs below
directly; everything else makes and reads datagrams with the helpers.
"""

from __future__ import annotations

import struct
from typing import Any

from messages.errors import MalformedDatagramError
from messages.scp.base import SCP_DATA_OFFSET, AbstractSCPRequest, R
from messages.scp.enums import SCPResult
from messages.scp.header import result_code
from messages.sdp import SDP_HEADER_SIZE

#: The UDP port of a board's SCAMP monitor (SpiNNMan's name).
SCP_SCAMP_PORT = 17893
#: Every SDP datagram on UDP starts with these two bytes.
PADDING = b"\0\0"

#: Padding, the SDP header's eight bytes (flags, tag, destination port and
#: cpu, source port and cpu, destination y, x, source y, x), command or
#: result, sequence: the part every SCP datagram has.
HEAD = struct.Struct("<2x8BHH")
#: The result code and sequence number, at RESULT_OFFSET.
RESULT_AND_SEQUENCE = struct.Struct("<2H")
#: One 16-bit field: the result code at RESULT_OFFSET, the sequence number
#: at SEQUENCE_OFFSET.
RESULT = SEQUENCE = struct.Struct("<H")
#: A request's three arguments, at ARGUMENTS_OFFSET.
ARGUMENTS = struct.Struct("<3I")

#: Where the SDP header starts.
SDP_OFFSET = len(PADDING)
#: Where a request's command and a reply's result code start.
COMMAND_OFFSET = RESULT_OFFSET = SDP_OFFSET + SDP_HEADER_SIZE
#: Where the sequence number starts, in a request and in its reply.
SEQUENCE_OFFSET = RESULT_OFFSET + RESULT.size
#: Where a request's arguments and a reply's data start.
ARGUMENTS_OFFSET = REPLY_DATA_OFFSET = SDP_OFFSET + SCP_DATA_OFFSET
#: The shortest datagram that can answer a request.
MIN_REPLY = REPLY_DATA_OFFSET
#: Where a request's data (a write's bytes) starts.
REQUEST_DATA_OFFSET = ARGUMENTS_OFFSET + ARGUMENTS.size


def request_datagram(
    request: AbstractSCPRequest[Any], source_x: int, source_y: int
) -> bytes:
    """The datagram to send for ``request``, stamped as coming from chip
    (source_x, source_y) so that its reply returns through that chip."""
    request.sdp_header.update_for_send(source_x, source_y)
    return PADDING + request.bytestring


def reply_header(datagram: bytes) -> tuple[SCPResult, int]:
    """A reply's result code and sequence number.

    Raises MalformedDatagramError for a datagram too short to be a reply or
    a result code the board does not send.
    """
    if len(datagram) < MIN_REPLY:
        raise MalformedDatagramError(
            f"SCP response of {len(datagram)} bytes; at least {MIN_REPLY} needed"
        )
    code, sequence = RESULT_AND_SEQUENCE.unpack_from(datagram, RESULT_OFFSET)
    return result_code(code), sequence


def parse_reply(request: AbstractSCPRequest[R], datagram: bytes) -> R:
    """``request``'s response, read from its reply: its data parsed, or the
    error its result code means (UnexpectedResponseCodeError) or
    MalformedDatagramError."""
    response = request.get_scp_response()
    response.read_bytestring(datagram, SDP_OFFSET)
    return response
