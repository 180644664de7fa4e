"""Sans-IO: the pipeline window, its requests and pieces, rtt, write fences,
jobs and their runs. No pykka, threads, sockets or clocks: given bytes and
the time, it answers what to send and what has ended.
"""

from actors.protocol.fences import Claim, Hold, Span, WriteFences
from actors.protocol.jobs import (
    Job,
    Outcome,
    OutcomeSink,
    ReadJob,
    SCPJob,
    WriteJob,
    deliver,
    written_span,
)
from actors.protocol.recovery import WindowCounters
from actors.protocol.requests import Bulk, Piece, Request
from actors.protocol.rtt import RttEstimator, RttStats
from actors.protocol.runs import JobRun
from actors.protocol.settings import WindowSettings
from actors.protocol.window import Window

__all__ = [
    "Bulk",
    "Claim",
    "deliver",
    "Hold",
    "Job",
    "JobRun",
    "Outcome",
    "Piece",
    "OutcomeSink",
    "ReadJob",
    "Request",
    "RttEstimator",
    "RttStats",
    "SCPJob",
    "Span",
    "Window",
    "WindowCounters",
    "WindowSettings",
    "WriteFences",
    "WriteJob",
    "written_span",
]
