"""SpiNNMan's request objects, run by the connection actor as SpiNNMan
runs them.

SpiNNMan's requests carry the same headers, arguments and
``get_scp_response()`` as ours, but say nothing of whether they may be
resent or what memory they write. So a ForeignRequest answers for them:

- **Resending.** SpiNNMan's pipeline resends every request, after a
  timeout and after a retry code alike; a request that does not say
  (``may_resend``) is resent as SpiNNMan would resend it.
- **Write fences.** The memory a request writes is read off its command
  and arguments (CMD_WRITE, CMD_FILL; messages.scp.base.memory_written_by),
  so SpiNNMan's WriteMemory is fenced like ours. A request with an enum of
  its own as the command (SpiNNFrontEndCommon's reinjector commands) writes
  nothing as far as the fences know.
- **Replies it cannot parse.** An RC_OK reply is handed to SpiNNMan's
  response class as it came, and whatever that raises reaches the error
  callback unchanged, at once, as in SpiNNMan: the datagram arrived whole
  (UDP checks it), so a reply that does not parse says something about the
  board (an odd version string, a reply of another shape) that a resend
  would only repeat, and SpiNNMan's callers catch those exceptions. The one
  exception is a read answered with the wrong number of bytes: the
  protocol fixes a read's reply length, so that reply is taken as a loss
  and the read is sent again (SpiNNMan's response would have handed the
  wrong bytes on).
- **Errors.** Where the window ends a SpiNNMan request without a reply,
  the error callback gets SpiNNMan's exception: SpinnmanTimeoutException
  when every try went unanswered (SpiNNMan decides to boot a board on it),
  SpinnmanIOException for the rest (retry codes that persisted, a
  connection given up on), each with our error as its ``__cause__``. A
  timeout's text is not SpiNNMan's "timed out after {packet_timeout}
  seconds": a try here waits as long as the round trips seen say (a few
  ms on a near board; packet_timeout at most), and is resent n_retries
  times, so it says what the connection did: where, how many sends, how
  long in all.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, cast

from actors.errors import RequestError, RequestTimeout
from messages.errors import InvalidArgumentError
from messages.scp.base import AbstractSCPRequest, memory_written_by, reply_size_of
from messages.scp.layout import PADDING

#: The surface a request must have for the pipeline to send it.
_REQUEST_SURFACE = ("sdp_header", "scp_request_header", "bytestring")


class ForeignRequest(AbstractSCPRequest[Any]):
    """A request of another library's (SpiNNMan's) as the window sees it:
    whether it may be resent, what it writes, its reply's length, read
    off the original when asked (the window asks once per request). Its
    datagram is made by the connection (SCPJob.datagram): it has no
    bytestring of its own."""

    __slots__ = ("original", "may_resend")

    def __init__(self, original: Any) -> None:
        # (AbstractSCPRequest's fields stay unset: this is made for every
        # request SpiNNMan sends, so it does no more than it must)
        self.original = original
        self.may_resend = getattr(original, "may_resend", True) is not False

    @property
    def memory_written(self) -> tuple[int, int, int, int] | None:
        original = self.original
        header = original.sdp_header
        return memory_written_by(
            original.scp_request_header.command,
            header.destination_chip_x,
            header.destination_chip_y,
            (original.argument_1, original.argument_2, original.argument_3),
        )

    @property
    def reply_size(self) -> int | None:
        original = self.original
        return reply_size_of(
            original.scp_request_header.command,
            (original.argument_1, original.argument_2, original.argument_3),
        )

    @property
    def destination(self) -> tuple[int, int, int]:
        header = self.original.sdp_header
        return (
            header.destination_chip_x,
            header.destination_chip_y,
            header.destination_cpu,
        )

    def get_scp_response(self) -> Any:
        return self.original.get_scp_response()

    def __repr__(self) -> str:
        return repr(self.original)


#: Request types found to have the surface a request needs.
_CHECKED: set[type] = set()


def check_request(request: object) -> None:
    """Refuse what cannot be sent as an SCP request, naming it (each type
    is looked at once)."""
    kind = type(request)
    if kind in _CHECKED or isinstance(request, AbstractSCPRequest):
        return
    # (looked up statically: SpiNNMan's bytestring asserts the header has
    # been stamped for sending)
    missing = [
        name
        for name in _REQUEST_SURFACE
        if inspect.getattr_static(request, name, None) is None
    ]
    if missing or not callable(getattr(request, "get_scp_response", None)):
        raise InvalidArgumentError(
            "request",
            kind.__name__,
            "must be an SCP request (ours or SpiNNMan's): it has no "
            + ", ".join(missing or ["get_scp_response"]),
        )
    _CHECKED.add(kind)


def datagram_maker(connection: Any) -> Callable[[Any], bytes]:
    """How ``connection`` makes a request into the datagram it sends: its
    own ``get_scp_data`` (SpiNNMan's stamps the source chip; a BMP's and a
    spalloc proxy's their own), or, for a connection without one, the
    request stamped with the connection's chip."""
    get_scp_data = getattr(connection, "get_scp_data", None)
    if get_scp_data is not None:
        return cast("Callable[[Any], bytes]", get_scp_data)
    chip = (getattr(connection, "chip_x", 255), getattr(connection, "chip_y", 255))

    def make(request: Any) -> bytes:
        request.sdp_header.update_for_send(*chip)
        return PADDING + bytes(request.bytestring)

    return make


def speaks_spinnman(request: object) -> bool:
    """Whether ``request`` is SpiNNMan's (or a subclass of one, as
    SpiNNFrontEndCommon's are): its callers expect SpiNNMan's exceptions."""
    return any(
        klass.__module__.split(".")[0] == "spinnman" for klass in type(request).__mro__
    )


def spinnman_error(error: BaseException, request: Any, timeout: float) -> BaseException:
    """What SpiNNMan's pipeline would have handed the error callback for
    ``error``: its own exception for a request that got no usable reply;
    anything else (a response's parse error) unchanged. ``timeout`` is the
    pipeline's packet_timeout (the longest one try waits)."""
    if not isinstance(error, RequestError):
        return error
    try:
        from spinnman.exceptions import SpinnmanIOException, SpinnmanTimeoutException
    except ImportError:  # pragma: no cover - a spinnman request without spinnman
        return error
    mapped: Exception
    if isinstance(error, RequestTimeout):
        # Its timeout, as SpiNNMan's callers read it: the seconds actually
        # waited (from the connection taking the request to giving it up,
        # every send), or, where not known, packet_timeout, the longest one
        # try waits. Its text is the connection's: where, sends, how long.
        waited = timeout if error.waited is None else error.waited
        mapped = SpinnmanTimeoutException(
            request, float(waited), f"Operation {request} timed out: {error}"
        )
    else:
        header = request.sdp_header
        mapped = SpinnmanIOException(
            f"Errors sending request {request} to {header.destination_chip_x}, "
            f"{header.destination_chip_y}, {header.destination_cpu}: {error}"
        )
    mapped.__cause__ = error
    return mapped
