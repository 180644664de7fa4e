"""Pure data and codecs for SDP and SCP: no sockets, threads or clocks."""

import logging

from messages.errors import (
    InvalidArgumentError,
    MalformedDatagramError,
    SpinnactorsError,
    UnexpectedResponseCodeError,
)
from messages.sdp import SDPFlag, SDPHeader, SDPMessage

# A library prints nothing unless its host sets logging up (messages logs
# nothing today; this keeps it so if it ever does).
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "InvalidArgumentError",
    "MalformedDatagramError",
    "SDPFlag",
    "SDPHeader",
    "SDPMessage",
    "SpinnactorsError",
    "UnexpectedResponseCodeError",
]
