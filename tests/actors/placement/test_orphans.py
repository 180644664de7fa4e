"""A worker's first act (actors/placement/orphans.py), in real child
processes: it asks the kernel for a death signal, and exits at once if
its parent is gone already."""

from __future__ import annotations

import subprocess
import sys

import pytest

from actors.placement.orphans import ORPHANED

GET_DEATH_SIGNAL = """\
import ctypes, os
from actors.placement.orphans import die_with_parent

die_with_parent(os.getppid())
signal = ctypes.c_int(-1)
ctypes.CDLL(None).prctl(2, ctypes.byref(signal), 0, 0, 0)  # PR_GET_PDEATHSIG
print(signal.value)
"""

NOT_MY_PARENT = """\
import os
from actors.placement.orphans import die_with_parent

die_with_parent(os.getpid())  # never its own parent: as if re-parented
print("carried on")
"""


def run(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")
def test_the_kernel_is_asked_to_kill_the_worker_with_its_parent() -> None:
    done = run(GET_DEATH_SIGNAL)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["9"]  # SIGKILL


def test_a_worker_whose_parent_is_gone_exits_at_once() -> None:
    done = run(NOT_MY_PARENT)
    assert done.returncode == ORPHANED, done.stderr
    assert done.stdout == ""
