"""Every reply SpiNNMan's users parse themselves is parsed as SpiNNMan does.

The installed SpiNNMan is the oracle: the same bytes go into both, at the
same offset, written SpiNNMan's way (``VersionInfo(data, offset)``, a
response made as SpiNNMan makes it, then ``read_bytestring(data, offset)``
or ``read_data_bytestring(data, offset)``); either both refuse the bytes
(each with its own exception) or both give the same fields.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from spinnman.messages.scp import impl as theirs
from spinnman.messages.scp.impl.count_state_response import (
    CountStateResponse as TheirCountStateResponse,
)
from spinnman.messages.scp.impl.sdram_de_alloc import _SCPSDRAMDeAllocResponse
from spinnman.model import VersionInfo as TheirVersionInfo

from messages.errors import MalformedDatagramError, UnexpectedResponseCodeError
from messages.scp import (
    CountStateResponse,
    GetVersionResponse,
    IPTagGetResponse,
    SCPResult,
    SDRAMAlloc,
    SDRAMAllocResponse,
    SDRAMDeAllocResponse,
    VersionInfo,
)

VERSION_FIELDS = (
    "name",
    "hardware",
    "version_number",
    "version_string",
    "build_date",
    "x",
    "y",
    "p",
)
IPTAG_FIELDS = (
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
    "in_use",
    "is_temporary",
    "is_arp",
    "is_reverse",
    "strip_sdp",
)

OUR_REFUSALS = (MalformedDatagramError, UnexpectedResponseCodeError)
common = settings(max_examples=300, deadline=None)
prefixes = st.binary(max_size=6)
# Characters that make version strings interesting: separators, digits
# (an Arabic-Indic one too), a NUL and a letter outside ASCII.
plain = st.text(alphabet="aZ&. 09\u0663\u00e9", max_size=10)
words = plain | st.text(alphabet="aZ&/.\0 09\u0663\u00e9", max_size=10)
versions = st.from_regex(r"\d{1,3}\.\d{1,3}\.\d{1,3}[a-z\0]{0,2}", fullmatch=True)


@st.composite
def version_bodies(draw: Any) -> bytes:
    """The data of a version reply: legacy or modern, well formed or not."""
    number = draw(st.just(0xFFFF) | st.integers(0, 0xFFFE))
    args = struct.pack(
        "<BBBBHHI",
        *(draw(st.integers(0, 255)) for _ in range(4)),
        draw(st.integers(0, 0xFFFF)),
        number,
        draw(st.integers(0, 2**32 - 1)),
    )
    name_hardware = f"{draw(plain | words)}/{draw(plain | words)}"
    nuls = draw(st.sampled_from(["\0", "\0\0\0"]))  # a padded name too
    fitting = (  # the form the version number asks for
        f"{name_hardware}{nuls}{draw(versions)}\0"
        if number == 0xFFFF
        else f"{name_hardware}\0"
    )
    odd = draw(
        st.sampled_from(
            [
                f"{name_hardware}\0{draw(words)}\0",
                f"{name_hardware}\0",
                name_hardware.replace("/", "") + "\0",
            ]
        )
    )
    text = draw(st.sampled_from([fitting, fitting, odd])).encode()
    tail: bytes = draw(st.just(text) | st.just(text) | st.binary(max_size=24))
    return args + tail


def parsed(
    parse: Callable[[], Any], names: tuple[str, ...], *, ours: bool
) -> dict[str, Any] | None:
    """The named fields of what ``parse`` returns, or None if it refused the
    bytes: SpiNNMan may refuse with anything, we only with our errors (a bad
    datagram, an error code); anything else fails the test."""
    refusals = OUR_REFUSALS if ours else (Exception,)
    try:
        made = parse()
    except refusals:
        return None
    return {name: getattr(made, name) for name in names}


def same(
    ours: Callable[[], Any], reference: Callable[[], Any], names: tuple[str, ...]
) -> None:
    assert parsed(ours, names, ours=True) == parsed(reference, names, ours=False)


def reply(result: SCPResult, body: bytes, prefix: bytes) -> bytes:
    """A whole reply datagram after ``prefix``: padding, SDP, rc, seq, body."""
    sdp = bytes([0x07, 0xFF, 0x00, 0xFF, 0, 0, 0, 0])
    return prefix + b"\0\0" + sdp + struct.pack("<2H", result.value, 7) + body


def read(response: Any, datagram: bytes, offset: int) -> Any:
    response.read_bytestring(datagram, offset)
    return response


results = st.sampled_from(
    [SCPResult.RC_OK, SCPResult.RC_OK, SCPResult.RC_P2P_NOREPLY, SCPResult.RC_ARG]
)
words_of_data = st.just(b"\0\0\0\0") | st.binary(max_size=8)


@common
@given(prefixes, version_bodies())
def test_version_info_from_data_and_offset(prefix: bytes, body: bytes) -> None:
    data, offset = prefix + body, len(prefix)
    same(
        lambda: VersionInfo(data, offset),
        lambda: TheirVersionInfo(data, offset),
        VERSION_FIELDS,
    )
    if parsed(lambda: TheirVersionInfo(data, offset), (), ours=False) is not None:
        info = VersionInfo(data, offset)
        assert info == VersionInfo.from_bytes(data, offset)
        assert VersionInfo(data[offset:]) == VersionInfo(version_data=data[offset:])
        assert info.physical_cpu_id == TheirVersionInfo(data, offset)._physical_cpu_id


@common
@given(prefixes, results, version_bodies())
def test_get_version_response(prefix: bytes, result: SCPResult, body: bytes) -> None:
    datagram, offset = reply(result, body, prefix), len(prefix) + 2
    same(
        lambda: read(GetVersionResponse(), datagram, offset).version_info,
        lambda: (
            read(
                theirs.GetVersion(0, 0, 0).get_scp_response(), datagram, offset
            ).version_info
        ),
        VERSION_FIELDS,
    )


@common
@given(prefixes, results, st.binary(max_size=8))
def test_count_state_response(prefix: bytes, result: SCPResult, body: bytes) -> None:
    datagram, offset = reply(result, body, prefix), len(prefix) + 2
    same(
        lambda: read(CountStateResponse(), datagram, offset),
        lambda: read(TheirCountStateResponse(), datagram, offset),
        ("count",),
    )


@common
@given(prefixes, results, st.binary(min_size=20, max_size=28) | st.binary(max_size=24))
def test_iptag_get_response(prefix: bytes, result: SCPResult, body: bytes) -> None:
    datagram, offset = reply(result, body, prefix), len(prefix) + 2
    same(
        lambda: read(IPTagGetResponse(), datagram, offset),
        lambda: read(theirs.IPTagGet(0, 0, 0).get_scp_response(), datagram, offset),
        IPTAG_FIELDS,
    )


@common
@given(prefixes, results, words_of_data, st.integers(1, 2**32 - 1))
def test_sdram_alloc_response(
    prefix: bytes, result: SCPResult, body: bytes, size: int
) -> None:
    datagram, offset = reply(result, body, prefix), len(prefix) + 2
    reference = theirs.SDRAMAlloc(0, 0, 1, size).get_scp_response
    same(
        lambda: read(SDRAMAllocResponse(size), datagram, offset),
        lambda: read(reference(), datagram, offset),
        ("base_address",),
    )
    same(
        lambda: read(SDRAMAlloc(0, 0, 1, size).get_scp_response(), datagram, offset),
        lambda: read(reference(), datagram, offset),
        ("base_address",),
    )


@common
@given(prefixes, results, words_of_data, st.booleans())
def test_sdram_dealloc_response(
    prefix: bytes, result: SCPResult, body: bytes, by_app: bool
) -> None:
    datagram, offset = reply(result, body, prefix), len(prefix) + 2
    same(
        lambda: read(SDRAMDeAllocResponse(by_app), datagram, offset),
        lambda: read(_SCPSDRAMDeAllocResponse(by_app), datagram, offset),
        ("number_of_blocks_freed",),
    )


@pytest.mark.parametrize(
    ("ours", "reference", "names"),
    [
        (CountStateResponse, TheirCountStateResponse, ("count",)),
        (
            IPTagGetResponse,
            lambda: theirs.IPTagGet(0, 0, 0).get_scp_response(),
            IPTAG_FIELDS,
        ),
        (SDRAMDeAllocResponse, _SCPSDRAMDeAllocResponse, ("number_of_blocks_freed",)),
        (
            lambda: SDRAMDeAllocResponse(read_n_blocks_freed=True),
            lambda: _SCPSDRAMDeAllocResponse(read_n_blocks_freed=True),
            ("number_of_blocks_freed",),
        ),
    ],
)
def test_read_data_bytestring_reads_at_the_offset_given(
    ours: Callable[[], Any], reference: Callable[[], Any], names: tuple[str, ...]
) -> None:
    """A response made as SpiNNMan makes it (no arguments, or SpiNNMan's),
    its headers read, then its data read again with
    read_data_bytestring(data, offset) from further on."""
    datagram = reply(SCPResult.RC_OK, bytes(range(1, 32)), b"")
    seen = []
    for make in (ours, reference):
        response = make()
        response.read_bytestring(datagram, 2)
        first = {name: getattr(response, name) for name in names}
        response.read_data_bytestring(datagram, 17)
        seen.append((first, {name: getattr(response, name) for name in names}))
    assert seen[0] == seen[1]
