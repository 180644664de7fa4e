"""The command line and what it shows: the demo and progress bars. The
console script is ``actors.app.cli:main`` (not imported here, so that
``python -m actors.app.cli`` runs it cleanly).
"""

from actors.app.demo import run_demo
from actors.app.progress import Progress

__all__ = [
    "Progress",
    "run_demo",
]
