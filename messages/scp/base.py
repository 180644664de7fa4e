"""What every SCP request and response shares.

A request is an SDP header, an SCP header, three 32-bit arguments and up to
256 bytes of data; it knows which response parses its reply and whether the
board may safely execute it twice (the monitor does not de-duplicate, so a
retransmission runs the command again).
"""

from __future__ import annotations

import struct
from enum import Enum
from typing import Generic, TypeVar

from messages.errors import MalformedDatagramError, UnexpectedResponseCodeError
from messages.scp.enums import SCPResult
from messages.scp.header import SCP_HEADER_SIZE, SCPRequestHeader, SCPResponseHeader
from messages.sdp import SDP_HEADER_SIZE, SDPFlag, SDPHeader

_THREE_WORDS = struct.Struct("<3I")
#: Where the SCP header and the data after it start in an SDP payload.
SCP_HEADER_OFFSET = SDP_HEADER_SIZE
SCP_DATA_OFFSET = SDP_HEADER_SIZE + SCP_HEADER_SIZE
#: The commands that write a chip's memory, and which of their arguments
#: (1-based) hold the address and the length written.
_WRITES = {"CMD_WRITE": (1, 2), "CMD_FILL": (1, 3)}
_READ = "CMD_READ"

Arguments = tuple[int | None, int | None, int | None]


#: Commands already named by monitor_command (enum members, a few dozen).
_COMMAND_NAMES: dict[object, str | None] = {}


def monitor_command(command: object) -> str | None:
    """The name of ``command`` if it is a monitor's SCPCommand (ours or
    SpiNNMan's enum of that name); None for other enums, whose values mean
    other things (SpiNNFrontEndCommon's reinjector commands reuse them)."""
    try:
        return _COMMAND_NAMES[command]
    except (KeyError, TypeError):
        pass
    name = None
    if isinstance(command, Enum) and type(command).__name__ == "SCPCommand":
        name = command.name
        _COMMAND_NAMES[command] = name
    return name


def memory_written_by(
    command: object, x: int, y: int, arguments: Arguments
) -> tuple[int, int, int, int] | None:
    """(x, y, address, length) of the memory a request with ``command``
    and ``arguments`` writes on chip (x, y); None if it writes none."""
    spec = _WRITES.get(monitor_command(command) or "")
    if spec is None:
        return None
    address, length = arguments[spec[0] - 1], arguments[spec[1] - 1]
    if address is None or length is None:
        return None
    return x, y, address, length


def reply_size_of(command: object, arguments: Arguments) -> int | None:
    """The exact length of the RC_OK reply's SDP payload (the datagram
    less its padding) to a request with ``command`` and ``arguments``,
    where the protocol fixes it (a read returns exactly the bytes asked
    for); None where it does not."""
    size = arguments[1]
    if monitor_command(command) == _READ and size is not None:
        return SCP_DATA_OFFSET + size
    return None


class AbstractSCPResponse:
    """Parses a reply; subclasses read what follows the SCP header."""

    __slots__ = ("sdp_header", "scp_response_header")

    def __init__(self) -> None:
        self.sdp_header: SDPHeader | None = None
        self.scp_response_header: SCPResponseHeader | None = None

    def read_bytestring(self, data: bytes, offset: int) -> None:
        """Parse a reply whose SDP header starts at ``offset``."""
        self.sdp_header = SDPHeader.from_bytestring(data, offset)
        self.scp_response_header = SCPResponseHeader.from_bytestring(
            data, offset + SCP_HEADER_OFFSET
        )
        try:
            self.read_data_bytestring(data, offset + SCP_DATA_OFFSET)
        except struct.error as error:
            raise MalformedDatagramError(
                f"{type(self).__name__}: reply too short ({len(data)} bytes)"
            ) from error

    def read_data_bytestring(self, data: bytes, offset: int) -> None:
        raise NotImplementedError

    @property
    def result(self) -> SCPResult:
        if self.scp_response_header is None:
            raise ValueError("no reply has been read yet")
        return self.scp_response_header.result

    def check_ok(
        self, operation: str, command: str, also: frozenset[SCPResult] = frozenset()
    ) -> None:
        """Raise UnexpectedResponseCodeError unless the board said OK."""
        result = self.result
        if result is not SCPResult.RC_OK and result not in also:
            raise UnexpectedResponseCodeError(operation, command, result)


class CheckOKResponse(AbstractSCPResponse):
    """A reply that carries nothing but a result code."""

    __slots__ = ("operation", "command")

    def __init__(self, operation: str, command: str) -> None:
        super().__init__()
        self.operation = operation
        self.command = command

    def read_data_bytestring(self, data: bytes, offset: int) -> None:
        self.check_ok(self.operation, self.command)


R = TypeVar("R", bound=AbstractSCPResponse)


class AbstractSCPRequest(Generic[R]):
    """One SCP command, ready to be stamped with a sequence and sent."""

    __slots__ = (
        "sdp_header",
        "scp_request_header",
        "argument_1",
        "argument_2",
        "argument_3",
        "data",
    )

    #: Where requests go when the caller names no chip (the Ethernet chip).
    DEFAULT_DEST_X_COORD = 255
    DEFAULT_DEST_Y_COORD = 255
    #: False where running the command twice would differ from once.
    may_resend: bool = True

    def __init__(
        self,
        sdp_header: SDPHeader,
        scp_request_header: SCPRequestHeader,
        argument_1: int | None = None,
        argument_2: int | None = None,
        argument_3: int | None = None,
        data: bytes | None = None,
    ) -> None:
        self.sdp_header = sdp_header
        self.scp_request_header = scp_request_header
        self.argument_1 = argument_1
        self.argument_2 = argument_2
        self.argument_3 = argument_3
        self.data = data

    @property
    def bytestring(self) -> bytes:
        words = _THREE_WORDS.pack(
            self.argument_1 or 0, self.argument_2 or 0, self.argument_3 or 0
        )
        head = self.sdp_header.bytestring + self.scp_request_header.bytestring + words
        return head if self.data is None else head + bytes(self.data)

    def get_scp_response(self) -> R:
        raise NotImplementedError

    @property
    def memory_written(self) -> tuple[int, int, int, int] | None:
        """(x, y, address, length) of the memory this request changes, for
        requests that write memory; None for the rest."""
        x, y, _ = self.destination
        return memory_written_by(self.scp_request_header.command, x, y, self._arguments)

    @property
    def reply_size(self) -> int | None:
        """The exact length of an RC_OK reply's SDP payload (the datagram
        less its padding), when the protocol fixes it (a read's); a reply
        of another length is malformed."""
        return reply_size_of(self.scp_request_header.command, self._arguments)

    @property
    def _arguments(self) -> Arguments:
        return self.argument_1, self.argument_2, self.argument_3

    @property
    def destination(self) -> tuple[int, int, int]:
        header = self.sdp_header
        return (
            header.destination_chip_x,
            header.destination_chip_y,
            header.destination_cpu,
        )

    def __repr__(self) -> str:
        x, y, p = self.destination
        return (
            f"{type(self).__name__}({x},{y},{p} seq={self.scp_request_header.sequence})"
        )


def monitor_header(x: int, y: int, p: int = 0) -> SDPHeader:
    """The header of a reply-expected request to a chip's monitor port."""
    return SDPHeader(
        flags=SDPFlag.REPLY_EXPECTED,
        destination_port=0,
        destination_cpu=p,
        destination_chip_x=x,
        destination_chip_y=y,
    )
