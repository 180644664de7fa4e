"""Every request is byte-for-byte the datagram SpiNNMan would send."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from spinnman.messages.scp import impl as theirs
from spinnman.messages.scp.enums import Signal as TheirSignal
from spinnman.model.enums import CPUState as TheirCPUState

from messages.scp import (
    CountState,
    CPUState,
    FillRequest,
    GetVersion,
    IPTagClear,
    IPTagGet,
    IPTagSet,
    ReadMemory,
    SDRAMAlloc,
    SDRAMDeAlloc,
    SendSignal,
    Signal,
    WriteMemory,
)

chips = st.integers(0, 255)
cores = st.integers(0, 17)
sequences = st.integers(0, 0xFFFF)
sources = st.tuples(st.integers(0, 255), st.integers(0, 255))
app_ids = st.integers(0, 255)


@st.composite
def spans(draw: Any) -> tuple[int, int]:
    size = draw(st.integers(1, 256))
    address = draw(st.integers(0, (1 << 32) - size))
    return address, size


def wire(request: Any, sequence: int, source: tuple[int, int]) -> bytes:
    request.sdp_header.update_for_send(*source)
    request.scp_request_header.sequence = sequence
    return bytes(request.bytestring)


def same(ours: Any, reference: Any, sequence: int, source: tuple[int, int]) -> None:
    assert wire(ours, sequence, source) == wire(reference, sequence, source)


common = settings(max_examples=200, deadline=None)


@common
@given(chips, chips, cores, spans(), sequences, sources)
def test_read_memory(
    x: int,
    y: int,
    p: int,
    span: tuple[int, int],
    sequence: int,
    source: tuple[int, int],
) -> None:
    same(
        ReadMemory((x, y, p), *span),
        theirs.ReadMemory((x, y, p), *span),
        sequence,
        source,
    )


@common
@given(
    chips,
    chips,
    cores,
    st.binary(min_size=1, max_size=256),
    st.data(),
    sequences,
    sources,
)
def test_write_memory(
    x: int,
    y: int,
    p: int,
    data: bytes,
    draw: Any,
    sequence: int,
    source: tuple[int, int],
) -> None:
    address = draw.draw(st.integers(0, (1 << 32) - len(data)))
    same(
        WriteMemory((x, y, p), address, data),
        theirs.WriteMemory((x, y, p), address, data),
        sequence,
        source,
    )


@common
@given(
    chips,
    chips,
    st.integers(0, (1 << 30) - 1),
    st.integers(0, 2**32 - 1),
    st.integers(1, 1 << 20),
    sequences,
    sources,
)
def test_fill(
    x: int,
    y: int,
    word_address: int,
    word: int,
    words: int,
    sequence: int,
    source: tuple[int, int],
) -> None:
    address, size = word_address * 4, words * 4
    if address + size > 1 << 32:
        address = (1 << 32) - size
    same(
        FillRequest(x, y, address, word, size),
        theirs.FillRequest(x, y, address, word, size),
        sequence,
        source,
    )


@common
@given(chips, chips, cores, sequences, sources)
def test_get_version(
    x: int, y: int, p: int, sequence: int, source: tuple[int, int]
) -> None:
    same(GetVersion(x, y, p), theirs.GetVersion(x, y, p), sequence, source)


@common
@given(
    chips,
    chips,
    st.lists(st.integers(0, 255), min_size=4, max_size=4),
    st.integers(0, 0xFFFF),
    st.integers(0, 7),
    st.booleans(),
    st.booleans(),
    sequences,
    sources,
)
def test_iptag_set(
    x: int,
    y: int,
    host: list[int],
    port: int,
    tag: int,
    strip: bool,
    use_sender: bool,
    sequence: int,
    source: tuple[int, int],
) -> None:
    same(
        IPTagSet(x, y, host, port, tag, strip=strip, use_sender=use_sender),
        theirs.IPTagSet(x, y, host, port, tag, strip=strip, use_sender=use_sender),
        sequence,
        source,
    )
    dotted = ".".join(map(str, host))
    same(
        IPTagSet(x, y, dotted, port, tag, strip=strip),
        theirs.IPTagSet(x, y, host, port, tag, strip=strip),
        sequence,
        source,
    )


@common
@given(chips, chips, st.integers(0, 7), sequences, sources)
def test_iptag_get_and_clear(
    x: int, y: int, tag: int, sequence: int, source: tuple[int, int]
) -> None:
    same(IPTagGet(x, y, tag), theirs.IPTagGet(x, y, tag), sequence, source)
    same(IPTagClear(x, y, tag), theirs.IPTagClear(x, y, tag), sequence, source)


@common
@given(app_ids, st.sampled_from(list(Signal)), sequences, sources)
def test_send_signal(
    app_id: int, signal: Signal, sequence: int, source: tuple[int, int]
) -> None:
    same(
        SendSignal(app_id, signal),
        theirs.SendSignal(app_id, TheirSignal[signal.name]),
        sequence,
        source,
    )


@common
@given(chips, chips, app_ids, st.sampled_from(list(CPUState)), sequences, sources)
def test_count_state(
    x: int, y: int, app_id: int, state: CPUState, sequence: int, source: tuple[int, int]
) -> None:
    same(
        CountState(x, y, app_id, state),
        theirs.CountState(x, y, app_id, TheirCPUState[state.name]),
        sequence,
        source,
    )


@common
@given(
    chips,
    chips,
    app_ids,
    st.integers(1, 2**32 - 1),
    st.none() | st.integers(0, 255),
    st.booleans(),
    sequences,
    sources,
)
def test_sdram_alloc(
    x: int,
    y: int,
    app_id: int,
    size: int,
    tag: int | None,
    retry_tag: bool,
    sequence: int,
    source: tuple[int, int],
) -> None:
    same(
        SDRAMAlloc(x, y, app_id, size, tag, retry_tag),
        theirs.SDRAMAlloc(x, y, app_id, size, tag, retry_tag),
        sequence,
        source,
    )


@common
@given(chips, chips, app_ids, st.integers(0, 2**32 - 1), sequences, sources)
def test_sdram_dealloc(
    x: int, y: int, app_id: int, address: int, sequence: int, source: tuple[int, int]
) -> None:
    same(
        SDRAMDeAlloc(x, y, app_id=app_id),
        theirs.SDRAMDeAlloc(x, y, app_id=app_id),
        sequence,
        source,
    )
    same(
        SDRAMDeAlloc(x, y, base_address=address),
        theirs.SDRAMDeAlloc(x, y, base_address=address),
        sequence,
        source,
    )
