"""spinnactors' pipeline, listener and memory processes as SpiNNMan's
own classes.

install() puts these where SpiNNMan binds its names. The pipeline and
listener are spinnactors' class first (its constructor and every method)
and SpiNNMan's original second, so that code checking
``isinstance(x, SCPRequestPipeLine)`` against SpiNNMan's class, or
subclassing it, still holds; SpiNNMan's own constructor never runs. The
memory processes (actors/compat/processes.py) are subclasses of
SpiNNMan's that take over its whole reads and writes. Only install()
imports this module: SpiNNMan is an optional dependency.
"""

from __future__ import annotations

from typing import Any

from spinnman.connections import connection_listener as spinnman_listener
from spinnman.connections import scp_request_pipeline as spinnman_pipeline

from actors.compat import connection_listener, pipeline, processes

#: SpiNNMan's originals, as they were when this module was first imported.
ORIGINAL_PIPELINE = spinnman_pipeline.SCPRequestPipeLine
ORIGINAL_LISTENER = spinnman_listener.ConnectionListener


class SCPRequestPipeLine(  # type: ignore[misc]
    pipeline.SCPRequestPipeLine[Any], ORIGINAL_PIPELINE[Any]
):
    """spinnactors' SCPRequestPipeLine, an instance of SpiNNMan's."""


class ConnectionListener(
    connection_listener.ConnectionListener[Any], ORIGINAL_LISTENER[Any]
):
    """spinnactors' ConnectionListener, an instance of SpiNNMan's."""


#: SpiNNMan's memory processes, and those install() puts in their place.
ORIGINAL_READ = processes.ORIGINAL_READ
ORIGINAL_WRITE = processes.ORIGINAL_WRITE
ReadMemoryProcess = processes.ReadMemoryProcess
WriteMemoryProcess = processes.WriteMemoryProcess

#: What install() puts in place of what.
REPLACEMENTS: dict[type, type] = {
    ORIGINAL_PIPELINE: SCPRequestPipeLine,
    ORIGINAL_LISTENER: ConnectionListener,
    ORIGINAL_READ: ReadMemoryProcess,
    ORIGINAL_WRITE: WriteMemoryProcess,
}
