"""EIEIO data messages are byte-for-byte SpiNNMan's, in both directions."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from spinnman.messages.eieio import EIEIOPrefix as TheirPrefix
from spinnman.messages.eieio import EIEIOType as TheirType
from spinnman.messages.eieio import read_eieio_data_message
from spinnman.messages.eieio.data_messages import EIEIODataHeader as TheirHeader
from spinnman.messages.eieio.data_messages import EIEIODataMessage as TheirMessage

from messages.eieio import (
    MAX_MESSAGE_SIZE,
    EIEIODataHeader,
    EIEIODataMessage,
    EIEIOPrefix,
    EIEIOType,
    KeyDataElement,
    KeyPayloadDataElement,
)
from messages.errors import InvalidArgumentError, MalformedDatagramError

# Hundreds of examples each through SpiNNMan's codecs: 3 s on a quiet machine,
# three times that with a second suite running beside it.
pytestmark = pytest.mark.timeout(60)
common = settings(max_examples=300, deadline=None)


def theirs_of(eieio_type: EIEIOType) -> TheirType:
    return TheirType(eieio_type.value)


def described(element: Any) -> tuple[str, int, int | None, bool | None]:
    """An element of either library as plain data."""
    if hasattr(element, "payload"):
        return (
            "key+payload",
            element.key,
            element.payload,
            element.payload_is_timestamp,
        )
    return ("key", element.key, None, None)


def their_elements(message: Any) -> list[tuple[Any, ...]]:
    found = []
    while message.is_next_element:
        found.append(described(message.next_element))
    return found


@st.composite
def messages(draw: Any) -> tuple[dict[str, Any], list[tuple[int, int]]]:
    """Header arguments and elements (payload 0 for key-only formats)."""
    eieio_type = draw(st.sampled_from(EIEIOType))
    top = eieio_type.max_value
    values = st.one_of(st.integers(0, top), st.sampled_from([0, top]))
    base = draw(st.none() | values)
    header = dict(
        eieio_type=eieio_type,
        tag=draw(st.integers(0, 3)),
        prefix=draw(st.none() | st.integers(0, 0xFFFF)),
        prefix_type=draw(st.sampled_from(EIEIOPrefix)),
        payload_base=base,
        is_time=draw(st.booleans()),
    )
    room = (
        MAX_MESSAGE_SIZE - EIEIODataHeader(**header).size
    ) // eieio_type.element_bytes
    elements = draw(st.lists(st.tuples(values, values), max_size=room))
    return header, elements


def build_both(
    header: dict[str, Any], elements: list[tuple[int, int]]
) -> tuple[EIEIODataMessage, Any]:
    ours = EIEIODataMessage(EIEIODataHeader(**header))
    theirs = TheirMessage(
        TheirHeader(
            theirs_of(header["eieio_type"]),
            tag=header["tag"],
            prefix=header["prefix"],
            prefix_type=TheirPrefix(header["prefix_type"].value),
            payload_base=header["payload_base"],
            is_time=header["is_time"],
        )
    )
    has_payload = header["eieio_type"].payload_bytes != 0
    for key, payload in elements:
        if has_payload:
            ours.add_key_and_payload(key, payload)
            theirs.add_key_and_payload(key, payload)
        else:
            ours.add_key(key)
            theirs.add_key(key)
    return ours, theirs


@common
@given(messages())
def test_built_messages_are_spinnmans(
    case: tuple[dict[str, Any], list[tuple[int, int]]],
) -> None:
    ours, theirs = build_both(*case)
    assert ours.bytestring == theirs.bytestring
    assert ours.size == theirs.size == len(ours.bytestring)
    assert ours.n_elements == theirs.n_elements == len(case[1])
    assert ours.max_n_elements == theirs.max_n_elements
    assert ours.get_min_packet_length() == theirs.get_min_packet_length()
    assert ours.eieio_header.size == theirs.eieio_header.size


@common
@given(messages())
def test_spinnman_parses_ours_and_we_parse_spinnmans(
    case: tuple[dict[str, Any], list[tuple[int, int]]],
) -> None:
    ours, theirs = build_both(*case)
    expected = their_elements(read_eieio_data_message(theirs.bytestring, 0))
    parsed = EIEIODataMessage.from_bytestring(theirs.bytestring, 0)
    assert [described(e) for e in parsed] == expected
    assert [described(e) for e in ours] == expected
    assert their_elements(read_eieio_data_message(ours.bytestring, 0)) == expected
    assert parsed == ours and parsed.eieio_header == ours.eieio_header
    assert parsed.bytestring == ours.bytestring


@common
@given(
    st.sampled_from(EIEIOType),
    st.none() | st.integers(0, 0xFFFF),
    st.sampled_from(EIEIOPrefix),
    st.none() | st.integers(0, 0xFFFF),
    st.none() | st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF),
)
def test_create_matches_spinnmans_create(
    eieio_type: EIEIOType,
    key_prefix: int | None,
    prefix_type: EIEIOPrefix,
    payload_prefix: int | None,
    timestamp: int | None,
    key: int,
) -> None:
    if payload_prefix is not None and timestamp is not None:
        payload_prefix = None
    ours = EIEIODataMessage.create(
        eieio_type,
        key_prefix=key_prefix,
        payload_prefix=payload_prefix,
        timestamp=timestamp,
        prefix_type=prefix_type,
    )
    theirs = TheirMessage.create(
        theirs_of(eieio_type),
        key_prefix=key_prefix,
        payload_prefix=payload_prefix,
        timestamp=timestamp,
        prefix_type=TheirPrefix(prefix_type.value),
    )
    if eieio_type.payload_bytes:
        ours.add_key_and_payload(key, key ^ 0x5A5A)
        theirs.add_key_and_payload(key, key ^ 0x5A5A)
    else:
        ours.add_key(key)
        theirs.add_key(key)
    assert ours.bytestring == theirs.bytestring
    assert ours.eieio_header.is_time == (timestamp is not None)


@settings(max_examples=1000, deadline=None)
@given(
    st.binary(max_size=3),
    st.integers(0, 12) | st.integers(0, 255),
    st.binary(max_size=40),
)
def test_any_datagram_parses_as_spinnman_does_or_is_malformed(
    before: bytes, count: int, rest: bytes
) -> None:
    """Small counts, so that many random datagrams are well formed."""
    offset = len(before)
    data = before + bytes([count]) + rest
    try:
        expected = their_elements(read_eieio_data_message(data, offset))
    except Exception:  # SpiNNMan fails in several ways: struct, index...
        expected = None
    try:
        ours = EIEIODataMessage.from_bytestring(data, offset)
    except MalformedDatagramError:
        assert expected is None
        return
    assert [described(e) for e in ours] == expected


# -- decoding rules, spelled out ----------------------------------------------


def test_prefix_and_payload_base_are_applied_when_read() -> None:
    message = EIEIODataMessage.create(
        EIEIOType.KEY_16_BIT,
        key_prefix=0xAB00,
        prefix_type=EIEIOPrefix.UPPER_HALF_WORD,
        timestamp=0x1234,
    )
    message.add_key(0x0042)
    [element] = list(message)
    assert element == KeyPayloadDataElement(0xAB000042, 0x1234, True)
    assert isinstance(element, KeyPayloadDataElement) and element.is_time

    lower = EIEIODataMessage.create(
        EIEIOType.KEY_PAYLOAD_32_BIT, key_prefix=0x0F00, payload_prefix=0xF0
    )
    lower.add_key_and_payload(0x1200_0001, 0x0A)
    assert list(lower) == [KeyPayloadDataElement(0x1200_0F01, 0xFA, False)]


def test_cursor_reads_like_spinnmans() -> None:
    message = EIEIODataMessage.create(EIEIOType.KEY_32_BIT)
    for key in (1, 2, 3):
        message.add_key(key)
    parsed = EIEIODataMessage.from_bytestring(message.bytestring, 0)
    seen = []
    while parsed.is_next_element:
        seen.append(parsed.next_element)
    assert seen == [KeyDataElement(1), KeyDataElement(2), KeyDataElement(3)]
    assert parsed.next_element is None
    assert len(parsed) == 3


def test_parses_at_an_offset_and_ignores_trailing_bytes() -> None:
    message = EIEIODataMessage.create(EIEIOType.KEY_PAYLOAD_16_BIT, tag=2)
    message.add_key_and_payload(7, 9)
    parsed = EIEIODataMessage.from_bytestring(
        b"\xee\xee" + message.bytestring + b"\0\0", 2
    )
    assert parsed == message and parsed.eieio_header.tag == 2


# -- the size limit -------------------------------------------------------


@pytest.mark.parametrize("eieio_type", list(EIEIOType))
@pytest.mark.parametrize(("prefix", "base"), [(None, None), (1, None), (1, 1)])
def test_a_full_message_refuses_one_more(
    eieio_type: EIEIOType, prefix: int | None, base: int | None
) -> None:
    message = EIEIODataMessage.create(
        eieio_type, key_prefix=prefix, payload_prefix=base
    )
    theirs = TheirMessage.create(
        theirs_of(eieio_type), key_prefix=prefix, payload_prefix=base
    )
    assert message.max_n_elements == theirs.max_n_elements

    def add(key: int) -> None:
        if eieio_type.payload_bytes:
            message.add_key_and_payload(key, 1)
        else:
            message.add_key(key)

    for key in range(message.max_n_elements):
        add(key)
    assert len(message.bytestring) <= MAX_MESSAGE_SIZE
    assert len(message.bytestring) + eieio_type.element_bytes > MAX_MESSAGE_SIZE
    with pytest.raises(InvalidArgumentError, match="full") as raised:
        add(5)
    assert raised.value.name == "key" and raised.value.value == 5
    assert message.n_elements == message.max_n_elements


# -- malformed datagrams ----------------------------------------------------


def test_truncated_header_is_malformed() -> None:
    for data in (b"", b"\x01"):
        with pytest.raises(MalformedDatagramError, match="2 bytes"):
            EIEIODataMessage.from_bytestring(data, 0)
    # Prefix and a 32-bit payload base announced, 4 of their 6 bytes sent.
    flags = 0x80 | 0x20 | (EIEIOType.KEY_32_BIT.value << 2)
    with pytest.raises(MalformedDatagramError, match="needs 8 bytes"):
        EIEIODataMessage.from_bytestring(bytes([0, flags, 1, 2, 3, 4]), 0)


def test_count_larger_than_the_data_is_malformed() -> None:
    message = EIEIODataMessage.create(EIEIOType.KEY_PAYLOAD_32_BIT)
    message.add_key_and_payload(1, 2)
    data = bytearray(message.bytestring)
    data[0] = 2
    with pytest.raises(MalformedDatagramError, match="counts 2"):
        EIEIODataMessage.from_bytestring(bytes(data), 0)
    with pytest.raises(MalformedDatagramError):
        EIEIODataMessage.from_bytestring(message.bytestring[:-1], 0)


def test_command_type_bits_are_not_data() -> None:
    # Bits 7-6 = 01: an EIEIO command (here 0x4001, "database confirmation").
    with pytest.raises(MalformedDatagramError, match="command"):
        EIEIODataMessage.from_bytestring(b"\x01\x40", 0)


# -- bad arguments ------------------------------------------------------------


def test_32_bit_key_in_a_16_bit_message() -> None:
    message = EIEIODataMessage.create(EIEIOType.KEY_16_BIT)
    with pytest.raises(InvalidArgumentError, match="16 bits") as raised:
        message.add_key(0x1_0000)
    assert raised.value.name == "key" and raised.value.value == 0x1_0000
    wide = EIEIODataMessage.create(EIEIOType.KEY_PAYLOAD_16_BIT)
    with pytest.raises(InvalidArgumentError) as raised:
        wide.add_key_and_payload(1, 0x1_0000)
    assert raised.value.name == "payload"
    assert message.n_elements == wide.n_elements == 0


def test_payload_on_a_key_only_type() -> None:
    message = EIEIODataMessage.create(EIEIOType.KEY_32_BIT)
    with pytest.raises(InvalidArgumentError, match="keys only") as raised:
        message.add_key_and_payload(1, 2)
    assert raised.value.name == "payload"
    keyed = EIEIODataMessage.create(EIEIOType.KEY_PAYLOAD_32_BIT)
    with pytest.raises(InvalidArgumentError, match="needs a payload"):
        keyed.add_key(1)
    with pytest.raises(InvalidArgumentError):
        keyed.add_element(KeyDataElement(1))
    assert message.bytestring == b"\x00\x08" and keyed.n_elements == 0


@pytest.mark.parametrize(
    ("arguments", "name"),
    [
        (dict(tag=4), "tag"),
        (dict(prefix=0x1_0000), "prefix"),
        (dict(prefix=-1), "prefix"),
        (dict(payload_base=0x1_0000), "payload_base"),
        (dict(count=256), "count"),
        (dict(is_time=1), "is_time"),
        (dict(prefix_type=1), "prefix_type"),
    ],
)
def test_header_arguments_are_checked(arguments: dict[str, Any], name: str) -> None:
    with pytest.raises(InvalidArgumentError) as raised:
        EIEIODataHeader(EIEIOType.KEY_16_BIT, **arguments)
    assert raised.value.name == name


def test_other_bad_arguments() -> None:
    with pytest.raises(InvalidArgumentError) as raised:
        EIEIODataHeader(2)  # type: ignore[arg-type]
    assert raised.value.name == "eieio_type"
    with pytest.raises(InvalidArgumentError) as raised:
        EIEIODataMessage.create(EIEIOType.KEY_16_BIT, count=3)
    assert raised.value.name == "count"
    with pytest.raises(InvalidArgumentError) as raised:
        EIEIODataMessage.create(EIEIOType.KEY_16_BIT, payload_prefix=1, timestamp=2)
    assert raised.value.name == "timestamp"
    with pytest.raises(InvalidArgumentError) as raised:
        EIEIODataMessage.create(EIEIOType.KEY_32_BIT).add_key(-1)
    assert raised.value.name == "key"
    with pytest.raises(InvalidArgumentError) as raised:
        EIEIODataMessage.create(EIEIOType.KEY_32_BIT).add_key(True)
    assert raised.value.name == "key"
    with pytest.raises(InvalidArgumentError) as raised:
        KeyPayloadDataElement(1, 1 << 32)
    assert raised.value.name == "payload"


def test_fuzzing_reaches_well_formed_datagrams() -> None:
    """Guard for the fuzz test above: its shape does produce real parses."""
    data = bytes([3, 0x80 | 0x20 | 0x10 | 0x04 | 1]) + bytes(range(20))
    parsed = EIEIODataMessage.from_bytestring(data, 0)
    assert [described(e) for e in parsed] == their_elements(
        read_eieio_data_message(data, 0)
    )
