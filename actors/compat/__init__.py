"""SpiNNMan's API, with actors behind it: SCPRequestPipeLine and
ConnectionListener.
"""

from actors.compat.connection_listener import ConnectionListener
from actors.compat.pipeline import SCPRequestPipeLine

__all__ = [
    "ConnectionListener",
    "SCPRequestPipeLine",
]
