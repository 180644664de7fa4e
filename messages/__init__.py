"""Pure data and codecs for SDP and SCP: no sockets, threads or clocks."""

from messages.errors import (
    InvalidArgumentError,
    MalformedDatagramError,
    SpinnactorsError,
    UnexpectedResponseCodeError,
)
from messages.sdp import SDPFlag, SDPHeader, SDPMessage

__all__ = [
    "InvalidArgumentError",
    "MalformedDatagramError",
    "SDPFlag",
    "SDPHeader",
    "SDPMessage",
    "SpinnactorsError",
    "UnexpectedResponseCodeError",
]
