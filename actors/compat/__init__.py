"""SpiNNMan's API, with actors behind it: SCPRequestPipeLine and
ConnectionListener; and install(), which puts them under an unmodified
SpiNNMan.
"""

from actors.compat.connection_listener import ConnectionListener
from actors.compat.install import install, installed, is_installed, uninstall
from actors.compat.pipeline import SCPRequestPipeLine

__all__ = [
    "ConnectionListener",
    "SCPRequestPipeLine",
    "install",
    "installed",
    "is_installed",
    "uninstall",
]
