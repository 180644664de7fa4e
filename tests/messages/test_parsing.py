"""Parsing bad datagrams raises MalformedDatagramError and nothing else."""

from __future__ import annotations

import contextlib
import pickle
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from messages import MalformedDatagramError, SDPHeader, SDPMessage
from messages.errors import UnexpectedResponseCodeError
from messages.scp import (
    AbstractSCPRequest,
    CountState,
    CPUState,
    FillRequest,
    GetVersion,
    IPTagGet,
    ReadMemory,
    SCPResponseHeader,
    SCPResult,
    SDRAMAlloc,
    SDRAMDeAlloc,
    VersionInfo,
)

REQUESTS: list[AbstractSCPRequest] = [  # type: ignore[type-arg]
    ReadMemory((0, 0, 0), 0, 16),
    GetVersion(0, 0, 0),
    IPTagGet(0, 0, 1),
    CountState(0, 0, 1, CPUState.RUNNING),
    SDRAMAlloc(0, 0, 1, 64),
    SDRAMDeAlloc(0, 0, app_id=1),
    FillRequest(0, 0, 0, 0, 4),
]


def reply(result: SCPResult, payload: bytes = b"", sequence: int = 1) -> bytes:
    return (
        b"\0\0"
        + bytes([0x07, 0xFF, 0xFF, 0, 0, 0, 0, 0])
        + struct.pack("<2H", result.value, sequence)
        + payload
    )


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80), st.integers(0, 2))
def test_random_bytes_never_escape_as_other_errors(data: bytes, offset: int) -> None:
    for request in REQUESTS:
        response = request.get_scp_response()
        with contextlib.suppress(MalformedDatagramError, UnexpectedResponseCodeError):
            response.read_bytestring(data, offset)


@pytest.mark.parametrize("length", range(14))
def test_truncated_headers(length: int) -> None:
    datagram = reply(SCPResult.RC_OK, bytes(16))[:length]
    with pytest.raises(MalformedDatagramError):
        ReadMemory((0, 0, 0), 0, 16).get_scp_response().read_bytestring(datagram, 2)


def test_read_of_wrong_length_is_inconsistent() -> None:
    response = ReadMemory((0, 0, 0), 0, 16).get_scp_response()
    with pytest.raises(MalformedDatagramError, match="16 bytes answered with 15"):
        response.read_bytestring(reply(SCPResult.RC_OK, bytes(15)), 2)


def test_read_payload_is_zero_copy_view() -> None:
    datagram = reply(SCPResult.RC_OK, bytes(range(16)))
    response = ReadMemory((0, 0, 0), 0, 16).get_scp_response()
    response.read_bytestring(datagram, 2)
    assert response.data is datagram
    assert response.payload == bytes(range(16))


def test_error_code_raises_with_the_code() -> None:
    response = ReadMemory((0, 0, 0), 0, 16).get_scp_response()
    with pytest.raises(UnexpectedResponseCodeError) as caught:
        response.read_bytestring(reply(SCPResult.RC_ROUTE), 2)
    assert caught.value.result is SCPResult.RC_ROUTE
    assert "RC_ROUTE" in str(caught.value)


def test_unknown_result_code_is_malformed() -> None:
    datagram = bytearray(reply(SCPResult.RC_OK, bytes(16)))
    datagram[10] = 0x42
    with pytest.raises(MalformedDatagramError, match="0x0042"):
        SCPResponseHeader.from_bytestring(bytes(datagram), 10)


def test_unknown_sdp_flags_are_malformed() -> None:
    with pytest.raises(MalformedDatagramError, match="flags 0x55"):
        SDPHeader.from_bytestring(b"\0\0" + bytes([0x55]) + bytes(7), 2)


def test_sdp_message_round_trip() -> None:
    datagram = b"\0\0" + bytes([0x07, 3, 0x21, 0xFF, 1, 2, 0, 0]) + b"hello"
    message = SDPMessage.from_bytestring(datagram, 2)
    assert message.sdp_header.destination_port == 1
    assert message.sdp_header.destination_cpu == 1
    assert message.sdp_header.tag == 3
    assert message.payload == b"hello"
    assert b"\0\0" + message.bytestring == datagram


def test_version_info_round_trip() -> None:
    info = VersionInfo(
        "SC&MP", "SpiNNaker", (4, 0, 0), "4.0.0", 12345, 1, 2, 0, physical_cpu_id=3
    )
    assert VersionInfo.from_bytes(info.to_bytes()) == info


def test_version_info_is_made_from_fields_or_from_reply_data() -> None:
    """SpiNNMan's form, VersionInfo(version_data, offset=0), beside the fields."""
    info = VersionInfo(
        name="SC&MP",
        hardware="SpiNNaker",
        version_number=(4, 0, 0),
        version_string="4.0.0",
        build_date=12345,
        x=1,
        y=2,
        p=0,
    )
    data = info.to_bytes()
    assert VersionInfo(data) == info
    assert VersionInfo(b"\xff" * 5 + data, 5) == info
    assert VersionInfo(version_data=bytearray(data), offset=0) == info
    assert VersionInfo(memoryview(b"\0\0" + data), offset=2) == info
    assert pickle.loads(pickle.dumps(info)) == info
    with pytest.raises(TypeError):
        VersionInfo("SC&MP", "SpiNNaker")  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        VersionInfo(data, 0, 1)  # type: ignore[call-overload]


@pytest.mark.parametrize(
    "text", [b"no-slash\0" + b"4.0.0\0", b"A/B\0x.y\0", b"A/B/C\0" + b"4.0.0\0"]
)
def test_bad_version_strings_are_malformed(text: bytes) -> None:
    data = struct.pack("<BBBBHHI", 0, 0, 0, 0, 256, 0xFFFF, 0) + text
    with pytest.raises(MalformedDatagramError):
        VersionInfo.from_bytes(data)


def test_requests_pickle() -> None:
    request = ReadMemory((1, 2, 3), 0x60000000, 256)
    request.sdp_header.update_for_send(0, 0)
    copy = pickle.loads(pickle.dumps(request))
    assert copy.bytestring == request.bytestring


@pytest.mark.timeout(10)
def test_every_result_code_has_a_plain_meaning_in_its_error() -> None:
    for result in SCPResult:
        assert result.meaning and result.meaning[0].islower()
        error = UnexpectedResponseCodeError("read at 0x0 on 0,0,0", "CMD_READ", result)
        assert f"board answered {result.name} ({result.meaning})" in str(error)
    # A code given as a bare value (no meaning known) still reads.
    assert str(UnexpectedResponseCodeError("op", "CMD_READ", 0x99)).endswith(
        "board answered 153"
    )
