"""One SCP request at a time, blocking: for tools, tests and probes.

Pipelines and actors do this properly (windows, deadlines, adaptive
timeouts); this is the plain stop-and-wait loop a command-line probe needs
before any of that is running.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import TypeVar

from messages.errors import MalformedDatagramError
from messages.scp.base import AbstractSCPRequest, AbstractSCPResponse
from messages.scp.enums import RETRY_CODES
from transport.connections.scamp import SCAMPConnection
from transport.errors import ReceiveTimeout

R = TypeVar("R", bound=AbstractSCPResponse)

_sequence = itertools.count()
_sequence_lock = threading.Lock()


def next_sequence() -> int:
    with _sequence_lock:
        return next(_sequence) & 0xFFFF


def call(
    connection: SCAMPConnection,
    request: AbstractSCPRequest[R],
    *,
    timeout: float = 1.0,
    retries: int = 3,
) -> R:
    """Send ``request``, wait for its reply, resend on loss or busy codes.

    Raises ReceiveTimeout when every try went unanswered, and whatever the
    response raises for an error code from the board.
    """
    sequence = next_sequence()
    request.scp_request_header.sequence = sequence
    datagram = connection.get_scp_data(request)
    tries = 1 + (retries if request.may_resend else 0)
    for _ in range(tries):
        connection.send(datagram)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                result, seq, data, offset = connection.receive_scp_response(left)
            except ReceiveTimeout:
                break
            except MalformedDatagramError:
                continue
            if seq != sequence:
                continue
            if result in RETRY_CODES:
                break
            response: R = request.get_scp_response()
            response.read_bytestring(data, offset)
            return response
    raise ReceiveTimeout(
        f"{request!r}: no usable reply after {tries} tries of {timeout} s"
    )
