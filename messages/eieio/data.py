"""EIEIO data messages: a header and up to a datagram's worth of keys.

Built messages hold their elements encoded, as they will be sent; a parsed
message holds the received bytes. Either way iterating yields the elements
as a receiver sees them, with the key prefix and payload base applied, so
a message and its parsed copy iterate alike.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator

from messages.eieio.elements import (
    DataElement,
    KeyDataElement,
    KeyPayloadDataElement,
)
from messages.eieio.header import EIEIODataHeader
from messages.eieio.types import EIEIOPrefix, EIEIOType
from messages.errors import InvalidArgumentError, MalformedDatagramError

#: SpiNNMan's UDP_MESSAGE_MAX_SIZE: a data message (header and elements)
#: must fit in this many bytes, which is what SCAMP and the boards' EIEIO
#: handlers buffer.
MAX_MESSAGE_SIZE = 256

_UNPACK = {
    EIEIOType.KEY_16_BIT: struct.Struct("<H"),
    EIEIOType.KEY_PAYLOAD_16_BIT: struct.Struct("<HH"),
    EIEIOType.KEY_32_BIT: struct.Struct("<I"),
    EIEIOType.KEY_PAYLOAD_32_BIT: struct.Struct("<II"),
}


class EIEIODataMessage:
    """An EIEIO data message, built key by key or parsed from a datagram."""

    __slots__ = ("_header", "_elements", "_n_read")

    def __init__(
        self, eieio_header: EIEIODataHeader, data: bytes | None = None, offset: int = 0
    ) -> None:
        """Without ``data`` the message starts empty; with it, the header's
        count of elements is taken from ``data`` at ``offset``."""
        if not isinstance(eieio_header, EIEIODataHeader):
            raise InvalidArgumentError(
                "eieio_header", eieio_header, "must be an EIEIODataHeader"
            )
        self._header = eieio_header
        self._n_read = 0
        if data is None:
            if eieio_header.count:
                raise InvalidArgumentError(
                    "count",
                    eieio_header.count,
                    "a message built without data starts with no elements",
                )
            self._elements = bytearray()
            return
        length = eieio_header.count * eieio_header.eieio_type.element_bytes
        if offset < 0 or len(data) - offset < length:
            raise MalformedDatagramError(
                f"EIEIO header counts {eieio_header.count} "
                f"{eieio_header.eieio_type.name} elements ({length} bytes) "
                f"but {max(0, len(data) - offset)} bytes follow it"
            )
        # Bytes after the last counted element are ignored, as SpiNNMan does.
        self._elements = bytearray(data[offset : offset + length])

    @staticmethod
    def create(
        eieio_type: EIEIOType,
        count: int = 0,
        data: bytes | None = None,
        offset: int = 0,
        key_prefix: int | None = None,
        payload_prefix: int | None = None,
        timestamp: int | None = None,
        prefix_type: EIEIOPrefix = EIEIOPrefix.LOWER_HALF_WORD,
        tag: int = 0,
    ) -> EIEIODataMessage:
        """SpiNNMan's factory: a timestamp is a payload base marked as time."""
        if payload_prefix is not None and timestamp is not None:
            raise InvalidArgumentError(
                "timestamp",
                timestamp,
                "a message has one payload base: give payload_prefix or "
                "timestamp, not both",
            )
        header = EIEIODataHeader(
            eieio_type,
            tag,
            key_prefix,
            prefix_type,
            payload_prefix if timestamp is None else timestamp,
            timestamp is not None,
            count,
        )
        return EIEIODataMessage(header, data, offset)

    @staticmethod
    def from_bytestring(data: bytes, offset: int = 0) -> EIEIODataMessage:
        """Parse a datagram; MalformedDatagramError if it is not data."""
        header = EIEIODataHeader.from_bytestring(data, offset)
        return EIEIODataMessage(header, data, offset + header.size)

    @property
    def eieio_header(self) -> EIEIODataHeader:
        return self._header

    @property
    def eieio_type(self) -> EIEIOType:
        return self._header.eieio_type

    # -- sizes -----------------------------------------------------------------

    @staticmethod
    def min_packet_length(
        eieio_type: EIEIOType,
        is_prefix: bool = False,
        is_payload_base: bool = False,
        is_timestamp: bool = False,
    ) -> int:
        """SpiNNMan's measure: a header and one payload's bytes."""
        return (
            EIEIODataHeader.get_header_size(
                eieio_type, is_prefix, is_payload_base or is_timestamp
            )
            + eieio_type.payload_bytes
        )

    def get_min_packet_length(self) -> int:
        return self.min_packet_length(
            self._header.eieio_type,
            self._header.prefix is not None,
            self._header.payload_base is not None,
        )

    @property
    def max_n_elements(self) -> int:
        """How many elements fit within MAX_MESSAGE_SIZE with this header."""
        return (
            MAX_MESSAGE_SIZE - self._header.size
        ) // self._header.eieio_type.element_bytes

    @property
    def n_elements(self) -> int:
        return len(self._elements) // self._header.eieio_type.element_bytes

    def __len__(self) -> int:
        return self.n_elements

    @property
    def size(self) -> int:
        """Bytes on the wire with the current elements."""
        return self._header.size + len(self._elements)

    # -- building ------------------------------------------------------------

    def add_key(self, key: int) -> None:
        """Append a key; the format must be key-only."""
        self._add("key", key, KeyDataElement(key))

    def add_key_and_payload(self, key: int, payload: int) -> None:
        """Append a key and payload; the format must carry payloads."""
        self._add("key", key, KeyPayloadDataElement(key, payload, self._header.is_time))

    def add_element(self, element: DataElement) -> None:
        if not isinstance(element, (KeyDataElement, KeyPayloadDataElement)):
            raise InvalidArgumentError(
                "element", element, "must be a KeyDataElement or KeyPayloadDataElement"
            )
        self._add("element", element, element)

    def _add(self, name: str, value: object, element: DataElement) -> None:
        encoded = element.get_bytestring(self._header.eieio_type)
        limit = self.max_n_elements
        if self.n_elements >= limit:
            raise InvalidArgumentError(
                name,
                value,
                f"the message is full: {limit} "
                f"{self._header.eieio_type.name} elements fill its "
                f"{MAX_MESSAGE_SIZE} bytes",
            )
        self._elements += encoded
        self._header.count = self.n_elements

    # -- reading ---------------------------------------------------------------

    def __iter__(self) -> Iterator[DataElement]:
        """The elements as received: prefix and payload base applied."""
        fields = _UNPACK[self._header.eieio_type].iter_unpack(bytes(self._elements))
        return map(self._decoder(), fields)

    @property
    def is_next_element(self) -> bool:
        """SpiNNMan's cursor: whether next_element has more to give."""
        return self._n_read < self.n_elements

    @property
    def next_element(self) -> DataElement | None:
        """SpiNNMan's cursor: the next element, or None after the last."""
        if not self.is_next_element:
            return None
        kind = _UNPACK[self._header.eieio_type]
        fields = kind.unpack_from(self._elements, self._n_read * kind.size)
        self._n_read += 1
        return self._decoder()(fields)

    def _decoder(self) -> Callable[[tuple[int, ...]], DataElement]:
        header = self._header
        prefix = 0 if header.prefix is None else header.prefix
        if header.prefix_type is EIEIOPrefix.UPPER_HALF_WORD:
            prefix <<= 16
        base, is_time = header.payload_base, header.is_time
        has_payload = header.eieio_type.payload_bytes != 0

        def decode(fields: tuple[int, ...]) -> DataElement:
            key = fields[0] | prefix
            if has_payload:
                payload = fields[1] if base is None else fields[1] | base
                return KeyPayloadDataElement(key, payload, is_time)
            if base is None:
                return KeyDataElement(key)
            return KeyPayloadDataElement(key, base, is_time)

        return decode

    # -- wire ------------------------------------------------------------------

    @property
    def bytestring(self) -> bytes:
        return self._header.pack(self.n_elements) + bytes(self._elements)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EIEIODataMessage):
            return NotImplemented
        return self.bytestring == other.bytestring

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"EIEIODataMessage({self._header!r})"


def read_eieio_data_message(data: bytes, offset: int = 0) -> EIEIODataMessage:
    """SpiNNMan's name for EIEIODataMessage.from_bytestring."""
    return EIEIODataMessage.from_bytestring(data, offset)
