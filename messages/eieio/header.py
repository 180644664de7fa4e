"""The header of an EIEIO data message.

Byte 0 is the element count, byte 1 the flags: bit 7 a key prefix follows,
bit 6 it fills the upper half-word, bit 5 a payload base follows, bit 4
payloads are timestamps, bits 3-2 the format, bits 1-0 the tag. Then the
16-bit prefix, then the payload base (as wide as a key), little endian.
Flags 01 in bits 7-6 mark an EIEIO command instead, which is not data.
"""

from __future__ import annotations

import struct

from messages.eieio.types import EIEIOPrefix, EIEIOType
from messages.errors import InvalidArgumentError, MalformedDatagramError
from messages.validate import check_int

_COUNT_AND_FLAGS = struct.Struct("<BB")
_PREFIX = struct.Struct("<H")
_BASE = {2: struct.Struct("<H"), 4: struct.Struct("<I")}

_HAS_PREFIX = 0x80
_UPPER_HALF = 0x40
_HAS_BASE = 0x20
_IS_TIME = 0x10
#: Bits 7-6 of the flags of an EIEIO command message.
_COMMAND_MASK, _COMMAND = 0xC0, 0x40

MAX_COUNT = 0xFF
MAX_TAG = 3


class EIEIODataHeader:
    """What a data message says about its elements; count is kept by the
    message that owns the header."""

    __slots__ = (
        "_eieio_type",
        "_tag",
        "_prefix",
        "_prefix_type",
        "_payload_base",
        "_is_time",
        "_count",
    )

    def __init__(
        self,
        eieio_type: EIEIOType,
        tag: int = 0,
        prefix: int | None = None,
        prefix_type: EIEIOPrefix = EIEIOPrefix.LOWER_HALF_WORD,
        payload_base: int | None = None,
        is_time: bool = False,
        count: int = 0,
    ) -> None:
        if not isinstance(eieio_type, EIEIOType):
            raise InvalidArgumentError("eieio_type", eieio_type, "must be an EIEIOType")
        if not isinstance(prefix_type, EIEIOPrefix):
            raise InvalidArgumentError(
                "prefix_type", prefix_type, "must be an EIEIOPrefix"
            )
        if not isinstance(is_time, bool):
            raise InvalidArgumentError("is_time", is_time, "must be a bool")
        self._eieio_type = eieio_type
        self._tag = check_int("tag", tag, 0, MAX_TAG)
        self._prefix = (
            None if prefix is None else check_int("prefix", prefix, 0, 0xFFFF)
        )
        self._prefix_type = prefix_type
        self._payload_base = (
            None
            if payload_base is None
            else check_int("payload_base", payload_base, 0, eieio_type.max_value)
        )
        self._is_time = is_time
        self._count = check_int("count", count, 0, MAX_COUNT)

    @property
    def eieio_type(self) -> EIEIOType:
        return self._eieio_type

    @property
    def tag(self) -> int:
        return self._tag

    @property
    def prefix(self) -> int | None:
        """The key prefix, or None when keys are sent whole."""
        return self._prefix

    @property
    def prefix_type(self) -> EIEIOPrefix:
        return self._prefix_type

    @property
    def payload_base(self) -> int | None:
        """OR-ed into every payload; for key-only formats, the payload."""
        return self._payload_base

    @property
    def is_time(self) -> bool:
        return self._is_time

    @property
    def count(self) -> int:
        return self._count

    @count.setter
    def count(self, count: int) -> None:
        self._count = check_int("count", count, 0, MAX_COUNT)

    def increment_count(self) -> None:
        self.count = self._count + 1

    def reset_count(self) -> None:
        self._count = 0

    @property
    def size(self) -> int:
        return self.get_header_size(
            self._eieio_type, self._prefix is not None, self._payload_base is not None
        )

    @staticmethod
    def get_header_size(
        eieio_type: EIEIOType, is_prefix: bool = False, is_payload_base: bool = False
    ) -> int:
        return (
            2
            + (2 if is_prefix else 0)
            + (eieio_type.key_bytes if is_payload_base else 0)
        )

    @property
    def bytestring(self) -> bytes:
        return self.pack(self._count)

    def pack(self, count: int) -> bytes:
        """The header as sent with ``count`` elements after it."""
        flags = (self._eieio_type.value << 2) | self._tag
        if self._prefix is not None:
            flags |= _HAS_PREFIX
            if self._prefix_type is EIEIOPrefix.UPPER_HALF_WORD:
                flags |= _UPPER_HALF
        if self._payload_base is not None:
            flags |= _HAS_BASE
        if self._is_time:
            flags |= _IS_TIME
        parts = [_COUNT_AND_FLAGS.pack(count, flags)]
        if self._prefix is not None:
            parts.append(_PREFIX.pack(self._prefix))
        if self._payload_base is not None:
            parts.append(_BASE[self._eieio_type.key_bytes].pack(self._payload_base))
        return b"".join(parts)

    @staticmethod
    def from_bytestring(data: bytes, offset: int) -> EIEIODataHeader:
        """Parse a header; MalformedDatagramError if short or a command."""
        if offset < 0 or len(data) - offset < 2:
            raise MalformedDatagramError(
                f"EIEIO header needs 2 bytes at offset {offset}, "
                f"datagram has {len(data)}"
            )
        count, flags = _COUNT_AND_FLAGS.unpack_from(data, offset)
        if flags & _COMMAND_MASK == _COMMAND:
            raise MalformedDatagramError(
                f"flags 0x{flags:02x} mark an EIEIO command, not data"
            )
        eieio_type = EIEIOType((flags >> 2) & 3)
        has_prefix = bool(flags & _HAS_PREFIX)
        has_base = bool(flags & _HAS_BASE)
        size = EIEIODataHeader.get_header_size(eieio_type, has_prefix, has_base)
        if len(data) - offset < size:
            raise MalformedDatagramError(
                f"EIEIO header with flags 0x{flags:02x} needs {size} bytes "
                f"at offset {offset}, datagram has {len(data)}"
            )
        at = offset + 2
        prefix = None
        if has_prefix:
            prefix = _PREFIX.unpack_from(data, at)[0]
            at += 2
        base = None
        if has_base:
            base = _BASE[eieio_type.key_bytes].unpack_from(data, at)[0]
        return EIEIODataHeader(
            eieio_type,
            flags & MAX_TAG,
            prefix,
            EIEIOPrefix(int(bool(flags & _UPPER_HALF))),
            base,
            bool(flags & _IS_TIME),
            count,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EIEIODataHeader):
            return NotImplemented
        return self.bytestring == other.bytestring

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"EIEIODataHeader({self._eieio_type.name}, tag={self._tag}, "
            f"prefix={self._prefix}, prefix_type={self._prefix_type.name}"
            f", payload_base={self._payload_base}, "
            f"is_time={self._is_time}, count={self._count})"
        )
