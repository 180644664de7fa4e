"""One board, as a blocking client: Client, and the operations (version,
read, write, fill, call) it shares with a Machine's boards.
"""

from actors.board.client import Client
from actors.board.operations import BoardOperations

__all__ = [
    "BoardOperations",
    "Client",
]
