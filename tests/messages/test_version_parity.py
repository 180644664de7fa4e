"""A version string that does not parse raises what our callers and
SpiNNMan's both catch: MalformedDatagramError, and InvalidArgumentError
(SpiNNMan's tests, redirected to this project, expect that where SpiNNMan
raises SpinnmanInvalidParameterException), without messages importing
SpiNNMan."""

from __future__ import annotations

import pickle
import struct

import pytest

from messages.errors import (
    InvalidArgumentError,
    MalformedArgumentError,
    MalformedDatagramError,
)
from messages.scp import VersionInfo

#: SpiNNMan's unit test's version data (test_version_info_model.py):
#: arg1 = p2p address, physical and virtual CPU; arg2 = version number and
#: buffer size; arg3 = build date; then the string.
_ARG1 = (0xF0A1 << 16) | (0xFF << 8) | 0x3B
_ARG2 = (0xFF << 16) | 0x10


@pytest.mark.parametrize(
    "data",
    [
        struct.pack("<III13s", _ARG1, _ARG2, 0x1000, b"my.spinnaker"),  # no slash
        struct.pack("<II13s", _ARG1, _ARG2, b"my/spinnaker"),  # a word short
        struct.pack("<III6s", _ARG1, (0xFFFF << 16), 0, b"a/b\0x"),  # not N.N.N
        struct.pack("<III4s", _ARG1, _ARG2, 0, b"\xff/b"),  # not UTF-8
        struct.pack("<III", _ARG1, _ARG2, 0),  # no string at all
    ],
    ids=["format", "size", "version", "utf8", "short"],
)
def test_a_malformed_version_is_both_errors(data: bytes) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        VersionInfo(data)
    error = caught.value
    assert isinstance(error, MalformedDatagramError)
    assert isinstance(error, MalformedArgumentError)
    assert isinstance(error, ValueError)
    assert error.name == "version_data"
    assert str(error).startswith("version_data=")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is MalformedArgumentError and str(copy) == str(error)


def test_the_well_formed_one_still_parses() -> None:
    data = struct.pack("<III13s", _ARG1, _ARG2, 0x1000, b"my/spinnaker")
    info = VersionInfo(data)
    assert (info.name, info.hardware, info.version_number) == (
        "my",
        "spinnaker",
        (2, 55, 0),
    )
