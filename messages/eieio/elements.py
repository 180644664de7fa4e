"""The elements of an EIEIO data message: a key, or a key and a payload.

Values are full 32-bit numbers, because a receiver sees them with the key
prefix and payload base already applied; whether a value fits the message's
format is checked when the element is encoded.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from messages.eieio.types import EIEIOType
from messages.errors import InvalidArgumentError
from messages.validate import check_u32

_PACK = {
    EIEIOType.KEY_16_BIT: struct.Struct("<H"),
    EIEIOType.KEY_PAYLOAD_16_BIT: struct.Struct("<HH"),
    EIEIOType.KEY_32_BIT: struct.Struct("<I"),
    EIEIOType.KEY_PAYLOAD_32_BIT: struct.Struct("<II"),
}


@dataclass(frozen=True, slots=True)
class KeyDataElement:
    """A key alone (a spike, in the usual use)."""

    key: int

    def __post_init__(self) -> None:
        check_u32("key", self.key)

    def get_bytestring(self, eieio_type: EIEIOType) -> bytes:
        """This element in ``eieio_type``'s wire format."""
        if eieio_type.payload_bytes:
            raise InvalidArgumentError(
                "key",
                self.key,
                f"a {eieio_type.name} message needs a payload with each key",
            )
        _check_fits("key", self.key, eieio_type)
        return _PACK[eieio_type].pack(self.key)


@dataclass(frozen=True, slots=True)
class KeyPayloadDataElement:
    """A key and its payload; the payload may be a timestamp."""

    key: int
    payload: int
    payload_is_timestamp: bool = False

    def __post_init__(self) -> None:
        check_u32("key", self.key)
        check_u32("payload", self.payload)
        if not isinstance(self.payload_is_timestamp, bool):
            raise InvalidArgumentError(
                "payload_is_timestamp", self.payload_is_timestamp, "must be a bool"
            )

    @property
    def is_time(self) -> bool:
        return self.payload_is_timestamp

    def get_bytestring(self, eieio_type: EIEIOType) -> bytes:
        """This element in ``eieio_type``'s wire format."""
        if not eieio_type.payload_bytes:
            raise InvalidArgumentError(
                "payload",
                self.payload,
                f"a {eieio_type.name} message carries keys only",
            )
        _check_fits("key", self.key, eieio_type)
        _check_fits("payload", self.payload, eieio_type)
        return _PACK[eieio_type].pack(self.key, self.payload)


DataElement = KeyDataElement | KeyPayloadDataElement


def _check_fits(name: str, value: int, eieio_type: EIEIOType) -> None:
    if value > eieio_type.max_value:
        raise InvalidArgumentError(
            name,
            value,
            f"does not fit the {8 * eieio_type.key_bytes} bits "
            f"of a {eieio_type.name} message",
        )
