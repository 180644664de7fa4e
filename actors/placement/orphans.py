"""A worker process dies with its parent, at every stage.

On Linux the worker's first act is ``prctl(PR_SET_PDEATHSIG, SIGKILL)``:
the kernel kills it when its parent dies, whatever it is doing (starting
its boards' clients, or stuck). The kernel sends that signal when the
parent *thread* that forked the worker ends, so workers are started from a
thread that lasts as long as the parent (spawner.py). A parent that died
before the call (while the worker was still importing this package) is
caught by comparing ``os.getppid()`` with the parent's pid right after it,
and again each time the worker looks for a message (every HEARTBEAT s).
Where there is no prctl, that pid check and the pipe closing are all.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

from transport.logs import get_logger

log = get_logger(__name__)

#: From <linux/prctl.h>.
PR_SET_PDEATHSIG = 1
#: A worker's exit code when it finds its parent gone before it started.
ORPHANED = 3


def die_with_parent(parent: int) -> None:
    """Have the kernel kill this process when ``parent`` dies (on Linux);
    exit at once if it has died already."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            failed = libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0
        except (OSError, AttributeError) as error:
            log.warning("worker.no_death_signal", error=repr(error))
        else:
            if failed:
                log.warning("worker.no_death_signal", errno=ctypes.get_errno())
    if not parent_alive(parent):
        os._exit(ORPHANED)  # nothing started yet: nothing to clean up


def parent_alive(parent: int) -> bool:
    """Whether ``parent`` is still this process's parent (an orphan is
    re-parented to init, or to a subreaper)."""
    return os.getppid() == parent
