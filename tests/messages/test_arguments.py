"""Constructors reject bad arguments with an error that names the value."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from messages import InvalidArgumentError
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

BAD: list[tuple[Callable[[], Any], str, object]] = [
    (lambda: ReadMemory((256, 0, 0), 0, 4), "x", 256),
    (lambda: ReadMemory((0, -1, 0), 0, 4), "y", -1),
    (lambda: ReadMemory((0, 0, 18), 0, 4), "p", 18),
    (lambda: ReadMemory((0, 0, 0), 0, 0), "size", 0),
    (lambda: ReadMemory((0, 0, 0), 0, 257), "size", 257),
    (lambda: ReadMemory((0, 0, 0), -4, 4), "base_address", -4),
    (lambda: ReadMemory((0, 0, 0), 2**32 - 2, 4), "base_address", 2**32 - 2),
    (lambda: ReadMemory((0, 0), 0, 4), "coordinates", (0, 0)),  # type: ignore[arg-type]
    (lambda: ReadMemory((0, 0, 0), 0, 4.0), "size", 4.0),  # type: ignore[arg-type]
    (lambda: WriteMemory((0, 0, 0), 0, b""), "data", "0 bytes"),
    (lambda: WriteMemory((0, 0, 0), 0, bytes(257)), "data", "257 bytes"),
    (lambda: WriteMemory((0, 0, 0), 0, "text"), "data", "str"),  # type: ignore[arg-type]
    (lambda: FillRequest(0, 0, 2, 0, 8), "base_address", 2),
    (lambda: FillRequest(0, 0, 0, 0, 6), "size", 6),
    (lambda: FillRequest(0, 0, 0, 2**32, 8), "data", 2**32),
    (lambda: GetVersion(0, 0, 32), "p", 32),
    (lambda: IPTagSet(0, 0, "127.0.0.1", 5000, 8), "tag", 8),
    (lambda: IPTagSet(0, 0, "127.0.0.1", 70000, 1), "port", 70000),
    (lambda: IPTagSet(0, 0, "localhost", 5000, 1), "host", "localhost"),
    (lambda: IPTagSet(0, 0, [1, 2, 3], 5000, 1), "host", [1, 2, 3]),
    (lambda: IPTagGet(0, 0, 9), "tag", 9),
    (lambda: IPTagClear(0, 0, -1), "tag", -1),
    (lambda: SendSignal(256, Signal.START), "app_id", 256),
    (lambda: SendSignal(1, 3), "signal", 3),  # type: ignore[arg-type]
    (lambda: CountState(0, 0, 300, CPUState.RUNNING), "app_id", 300),
    (lambda: CountState(0, 0, 1, 7), "state", 7),  # type: ignore[arg-type]
    (lambda: SDRAMAlloc(0, 0, 1, 0), "size", 0),
    (lambda: SDRAMAlloc(0, 0, 1, 16, tag=256), "tag", 256),
    (lambda: SDRAMDeAlloc(0, 0), "app_id/base_address", (None, None)),
    (
        lambda: SDRAMDeAlloc(0, 0, app_id=1, base_address=4),
        "app_id/base_address",
        (1, 4),
    ),
]


@pytest.mark.parametrize(("build", "name", "value"), BAD)
def test_bad_argument_is_named(
    build: Callable[[], Any], name: str, value: object
) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        build()
    assert caught.value.name == name
    assert caught.value.value == value
    assert name in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_largest_spans_are_accepted() -> None:
    assert ReadMemory((255, 255, 17), 2**32 - 256, 256).argument_2 == 256
    assert WriteMemory((0, 0, 0), 0, bytes(256)).data == bytes(256)


def test_resend_safety_is_declared() -> None:
    assert ReadMemory((0, 0, 0), 0, 4).may_resend
    assert WriteMemory((0, 0, 0), 0, b"1").may_resend
    assert GetVersion(0, 0, 0).may_resend
    assert not SDRAMAlloc(0, 0, 1, 64).may_resend
    assert SDRAMAlloc(0, 0, 1, 64, tag=3).may_resend
    assert not SDRAMAlloc(0, 0, 1, 64, tag=3, retry_tag=False).may_resend
    assert not SDRAMDeAlloc(0, 0, app_id=1).may_resend
    assert not SendSignal(1, Signal.START).may_resend
