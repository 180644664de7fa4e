"""install(): an unmodified SpiNNMan, running on spinnactors' actors.

SpiNNMan makes every SCPRequestPipeLine in one place
(``spinnman.processes.abstract_multi_connection_process``, which imports
the name from ``spinnman.connections``), and SpiNNFrontEndCommon and
sPyNNaker take ConnectionListener from ``spinnman.connections``. install()
rebinds those names to spinnactors' classes (actors/compat/bridge.py:
subclasses of SpiNNMan's originals), so that every pipeline SpiNNMan
makes from then on is ours: its requests go through one supervised
ConnectionActor per connection, with adaptive retransmission, write
fences, metrics, capture and structlog logs. It rebinds SpiNNMan's
ReadMemoryProcess and WriteMemoryProcess too (``spinnman.processes`` and
their modules, and the copies the Transceiver, ExtendedTransceiver and
LoadMultiCastRoutesProcess hold) to subclasses whose reads and writes of
more than one 256-byte piece, on a connection spinnactors drives through
its socket, are one job on that same actor, with no SpiNNMan object per
piece (actors/compat/processes.py). uninstall() puts SpiNNMan's own
classes back.

How: install() imports the modules where SpiNNMan binds the names (so it
is the same whether SpiNNMan was imported before or not) and rebinds
every module-level name, in SpiNNMan's and its front ends' modules
already loaded, that holds one of SpiNNMan's originals (a module that did
``from spinnman.connections import ConnectionListener`` before install()
holds its own copy). A module imported later takes the name from
``spinnman.connections`` and so gets ours. That is all an import hook
would achieve, with less to go wrong: no finder on sys.meta_path, nothing
to keep in step with importlib. uninstall() rebinds every name that holds
one of ours, including those of modules imported meanwhile, to SpiNNMan's.

What it leaves alone: SpiNNMan's connections (SCAMP, BMP, EIEIO, boot,
spalloc-proxied; the pipeline drives them through their own methods),
its request and response classes, its other processes and its
Transceiver, and pipelines, listeners or processes already made.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType

from actors.compat.shared import SHARED
from messages.errors import InvalidArgumentError
from messages.validate import check_seconds
from transport.capture.writer import PacketCapture
from transport.logs import get_logger

log = get_logger(__name__)

#: The modules where SpiNNMan binds SCPRequestPipeLine,
#: ConnectionListener, ReadMemoryProcess or WriteMemoryProcess: imported
#: by install(), so that they exist to patch (a module imported later,
#: such as the Transceiver's, takes the names from these).
HOMES = (
    "spinnman.connections.scp_request_pipeline",
    "spinnman.connections.connection_listener",
    "spinnman.connections",
    "spinnman.processes.abstract_multi_connection_process",
    "spinnman.processes.read_memory_process",
    "spinnman.processes.write_memory_process",
    "spinnman.processes",
)
#: Packages whose modules may hold copies of SpiNNMan's names: SpiNNMan
#: itself and the front ends built on it.
HOST_PACKAGES = frozenset(
    {"spinnman", "spinn_front_end_common", "spynnaker", "spinnaker_graph_front_end"}
)
#: How long a connection's actor stays after SpiNNMan's operation on it
#: ends: the Transceiver makes a pipeline per operation, and the next one
#: finds the actor running (and the board stays on /metrics meanwhile).
DEFAULT_LINGER = 30.0


@dataclass
class _Installed:
    """What install() changed, to undo."""

    linger_before: float
    capture: PacketCapture | None
    owns_capture: bool


_lock = threading.Lock()
_state: _Installed | None = None


def install(
    *,
    linger: float = DEFAULT_LINGER,
    capture: PacketCapture | str | os.PathLike[str] | None = None,
) -> None:
    """Run SpiNNMan's pipelines and listeners on spinnactors from now on.

    ``linger`` is how long a connection's actor stays idle after an
    operation (see DEFAULT_LINGER); ``capture`` records every datagram of
    the connections SpiNNMan's pipelines drive, as pcap, to a file (closed
    by uninstall()) or a PacketCapture of yours. Calling it again while
    installed does nothing. Raises ImportError if SpiNNMan is not
    installed.
    """
    global _state
    linger = check_seconds("linger", linger, zero=True)
    with _lock:
        if _state is not None:
            return
        bridge = _import_bridge()
        recorder, owns = _recorder(capture)
        _state = _Installed(SHARED.linger, recorder, owns)
        SHARED.linger, SHARED.capture = linger, recorder
        rebound = _rebind(bridge.REPLACEMENTS)
    log.info("compat.installed", rebound=rebound, linger=linger)


def uninstall() -> None:
    """Put SpiNNMan's own classes back wherever install() put ours (and
    wherever modules imported since took ours); stop the connection actors
    no pipeline uses now. Pipelines and listeners already made carry on
    until they finish or close. Calling it when not installed does nothing."""
    global _state
    with _lock:
        state = _state
        if state is None:
            return
        from actors.compat import bridge

        rebound = _rebind({new: old for old, new in bridge.REPLACEMENTS.items()})
        SHARED.linger, SHARED.capture = state.linger_before, None
        _state = None
    SHARED.stop_idle()
    if state.owns_capture and state.capture is not None:
        state.capture.close()
    log.info("compat.uninstalled", rebound=rebound)


def is_installed() -> bool:
    """Whether install() is in effect."""
    return _state is not None


@contextlib.contextmanager
def installed(
    *,
    linger: float = DEFAULT_LINGER,
    capture: PacketCapture | str | os.PathLike[str] | None = None,
) -> Iterator[None]:
    """install() for the ``with`` block; uninstalled at its end unless it
    was installed before the block began."""
    first = not is_installed()
    install(linger=linger, capture=capture)
    try:
        yield
    finally:
        if first:
            uninstall()


def _recorder(
    capture: PacketCapture | str | os.PathLike[str] | None,
) -> tuple[PacketCapture | None, bool]:
    """The capture to record to, and whether install() opened it."""
    if capture is None or isinstance(capture, PacketCapture):
        return capture, False
    if isinstance(capture, (str, os.PathLike)):
        return PacketCapture(capture), True
    raise InvalidArgumentError(
        "capture", capture, "must be a file path or a PacketCapture"
    )


def _import_bridge() -> ModuleType:
    try:
        for name in HOMES:
            importlib.import_module(name)
        from actors.compat import bridge
    except ImportError as error:
        raise ImportError(
            "actors.compat.install() runs SpiNNMan on spinnactors, and "
            f"SpiNNMan cannot be imported ({error}): pip install spinnman"
        ) from error
    return bridge


def _rebind(replacements: dict[type, type]) -> int:
    """Rebind every module-level name of the host packages' loaded
    modules that holds a key of ``replacements`` to its value; how many."""
    count = 0
    for module in list(sys.modules.values()):
        name = getattr(module, "__name__", None)
        if not isinstance(name, str) or name.split(".")[0] not in HOST_PACKAGES:
            continue
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for attribute, value in list(namespace.items()):
            if isinstance(value, type) and value in replacements:
                setattr(module, attribute, replacements[value])
                count += 1
    return count
