"""SpiNNMan's API, with actors behind it: SCPRequestPipeLine and
ConnectionListener; and install(), which puts them, and memory processes
that run SpiNNMan's whole reads and writes as single jobs, under an
unmodified SpiNNMan (transfers() counts those).
"""

from actors.compat.bulk import Transfers, transfers
from actors.compat.connection_listener import ConnectionListener
from actors.compat.install import install, installed, is_installed, uninstall
from actors.compat.pipeline import SCPRequestPipeLine

__all__ = [
    "ConnectionListener",
    "SCPRequestPipeLine",
    "Transfers",
    "install",
    "installed",
    "is_installed",
    "transfers",
    "uninstall",
]
