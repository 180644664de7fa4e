"""EIEIO data messages (multicast keys and payloads), wire-compatible with
SpiNNMan's."""

from messages.eieio.data import (
    MAX_MESSAGE_SIZE,
    EIEIODataMessage,
    read_eieio_data_message,
)
from messages.eieio.elements import (
    DataElement,
    KeyDataElement,
    KeyPayloadDataElement,
)
from messages.eieio.header import EIEIODataHeader
from messages.eieio.types import EIEIOPrefix, EIEIOType

__all__ = [
    "MAX_MESSAGE_SIZE",
    "DataElement",
    "EIEIODataHeader",
    "EIEIODataMessage",
    "EIEIOPrefix",
    "EIEIOType",
    "KeyDataElement",
    "KeyPayloadDataElement",
    "read_eieio_data_message",
]
