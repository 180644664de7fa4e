"""The 4-byte headers that open every SCP request and response."""

from __future__ import annotations

import struct
from enum import Enum

from messages.errors import MalformedDatagramError
from messages.scp.enums import SCPCommand, SCPResult
from messages.validate import check_int

_TWO_SHORTS = struct.Struct("<2H")
SCP_HEADER_SIZE = 4
_RESULTS = {result.value: result for result in SCPResult}


class SCPRequestHeader:
    """Command and sequence number; the pipeline sets the sequence."""

    __slots__ = ("command", "_sequence")

    def __init__(self, command: SCPCommand | Enum, sequence: int = 0) -> None:
        self.command = command
        self._sequence = check_int("sequence", sequence, 0, 0xFFFF)

    @property
    def sequence(self) -> int:
        return self._sequence

    @sequence.setter
    def sequence(self, sequence: int) -> None:
        self._sequence = check_int("sequence", sequence, 0, 0xFFFF)

    @property
    def bytestring(self) -> bytes:
        return _TWO_SHORTS.pack(self.command.value, self._sequence)

    def __repr__(self) -> str:
        return f"SCPRequestHeader({self.command.name}, seq={self._sequence})"


class SCPResponseHeader:
    """Result code and the sequence number of the request it answers."""

    __slots__ = ("result", "sequence")

    def __init__(self, result: SCPResult, sequence: int) -> None:
        self.result = result
        self.sequence = sequence

    @staticmethod
    def from_bytestring(data: bytes, offset: int) -> SCPResponseHeader:
        if len(data) - offset < SCP_HEADER_SIZE:
            raise MalformedDatagramError(
                f"SCP response header needs {SCP_HEADER_SIZE} bytes at "
                f"offset {offset}, datagram has {len(data)}"
            )
        code, sequence = _TWO_SHORTS.unpack_from(data, offset)
        return SCPResponseHeader(result_code(code), sequence)

    @property
    def bytestring(self) -> bytes:
        return _TWO_SHORTS.pack(self.result.value, self.sequence)

    def __repr__(self) -> str:
        return f"SCPResponseHeader({self.result.name}, seq={self.sequence})"


def result_code(code: int) -> SCPResult:
    """The SCPResult for a wire value, or MalformedDatagramError."""
    try:
        return _RESULTS[code]
    except KeyError:
        raise MalformedDatagramError(f"unknown SCP result code 0x{code:04x}") from None
