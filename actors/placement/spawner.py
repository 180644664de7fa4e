"""Worker processes start from one thread that lasts as long as this process.

A worker asks the kernel to kill it when its parent dies (orphans.py). On
Linux that parent is the *thread* that forked the worker, not the process:
a worker forked by a GroupActor's thread would be killed when that thread
ends, and one forked by a caller's short-lived thread (a thread pool's)
long before its Machine closes. So every worker is started here, on a
daemon thread made on first use that idles on a queue between starts and
ends only with the process (a forked child makes its own).
"""

from __future__ import annotations

import os
import queue
import threading
from concurrent.futures import Future
from multiprocessing.process import BaseProcess

#: The spawner thread's name (test kits leave it out of leaked threads).
SPAWNER = "spinnactors-spawner"

_Start = tuple[BaseProcess, "Future[None]"]

_lock = threading.Lock()
#: The process the spawner runs in, and its queue of processes to start.
_spawner: tuple[int, queue.SimpleQueue[_Start]] | None = None


def start_process(process: BaseProcess) -> None:
    """``process.start()``, done on the spawner thread; what it raises is
    raised here."""
    done: Future[None] = Future()
    _starts().put((process, done))
    done.result()


def is_spawner(thread: threading.Thread) -> bool:
    """Whether ``thread`` is the spawner (meant to last: not a leak)."""
    return thread.name == SPAWNER and thread.daemon


def _starts() -> queue.SimpleQueue[_Start]:
    global _spawner
    with _lock:
        if _spawner is None or _spawner[0] != os.getpid():
            starts: queue.SimpleQueue[_Start] = queue.SimpleQueue()
            threading.Thread(
                target=_serve, args=(starts,), name=SPAWNER, daemon=True
            ).start()
            _spawner = (os.getpid(), starts)
        return _spawner[1]


def _serve(starts: queue.SimpleQueue[_Start]) -> None:
    while True:
        process, done = starts.get()
        try:
            process.start()
        except BaseException as error:  # noqa: BLE001 - raised in the caller
            done.set_exception(error)
        else:
            done.set_result(None)
