"""SCP requests and responses, byte-identical to SpiNNMan's."""

from messages.scp.alloc import (
    SDRAMAlloc,
    SDRAMAllocResponse,
    SDRAMDeAlloc,
    SDRAMDeAllocResponse,
)
from messages.scp.app import CountState, CountStateResponse, SendSignal
from messages.scp.base import (
    AbstractSCPRequest,
    AbstractSCPResponse,
    CheckOKResponse,
)
from messages.scp.enums import (
    RETRY_CODES,
    AllocFree,
    CPUState,
    IPTagCommand,
    ReadType,
    SCPCommand,
    SCPResult,
    Signal,
    SignalType,
)
from messages.scp.header import SCPRequestHeader, SCPResponseHeader
from messages.scp.iptag import IPTagClear, IPTagGet, IPTagGetResponse, IPTagSet
from messages.scp.memory import (
    FillRequest,
    ReadMemory,
    ReadMemoryResponse,
    WriteMemory,
)
from messages.scp.version import GetVersion, GetVersionResponse, VersionInfo

__all__ = [
    "RETRY_CODES",
    "AbstractSCPRequest",
    "AbstractSCPResponse",
    "AllocFree",
    "CPUState",
    "CheckOKResponse",
    "CountState",
    "CountStateResponse",
    "FillRequest",
    "GetVersion",
    "GetVersionResponse",
    "IPTagClear",
    "IPTagCommand",
    "IPTagGet",
    "IPTagGetResponse",
    "IPTagSet",
    "ReadMemory",
    "ReadMemoryResponse",
    "ReadType",
    "SCPCommand",
    "SCPRequestHeader",
    "SCPResponseHeader",
    "SCPResult",
    "SDRAMAlloc",
    "SDRAMAllocResponse",
    "SDRAMDeAlloc",
    "SDRAMDeAllocResponse",
    "SendSignal",
    "Signal",
    "SignalType",
    "VersionInfo",
    "WriteMemory",
]
