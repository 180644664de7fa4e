"""Fenced code blocks of the project's Markdown (README.md, docs/), found
and run as a reader would run them: each block alone, in a new directory,
by a new interpreter.

A block may carry a marker, the HTML comment on the line just before its
fence: ``<!-- example-test -->`` (the README's test of a user's actor) or
``<!-- not-run: REASON -->`` (a block the docs test shows but does not run,
and says why).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_FENCE = re.compile(
    r"(?:^<!--\s*(?P<marker>.*?)\s*-->\n)?"
    r"^(?P<indent>[ \t]*)```(?P<info>[^\n`]*)\n(?P<code>.*?)^(?P=indent)```[ \t]*$",
    re.M | re.S,
)


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language, marker and code."""

    path: Path
    line: int
    language: str
    marker: str
    code: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def not_run(self) -> str | None:
        """The reason given for not running this block, if it has one."""
        match = re.fullmatch(r"not-run:\s*(.*)", self.marker)
        return match[1].strip() if match else None


def fenced_blocks(path: Path) -> list[Block]:
    """Every fenced block of a Markdown file, indented ones included (their
    indent removed)."""
    text = path.read_text()
    blocks = []
    for match in _FENCE.finditer(text):
        indent = len(match["indent"])
        code = "".join(line[indent:] for line in match["code"].splitlines(True))
        blocks.append(
            Block(
                path=path,
                line=text.count("\n", 0, match.start("info")) + 1,
                language=match["info"].strip().split(" ")[0],
                marker=match["marker"] or "",
                code=code,
            )
        )
    return blocks


def run_python(
    source: str,
    cwd: Path,
    timeout: float,
    *args: str,
    name: str = "block.py",
) -> subprocess.CompletedProcess[str]:
    """Run ``source`` as ``cwd/name`` (``args`` before it, e.g. ``-m
    pytest``) in a session of its own; when it has ended or timed out,
    kill whatever it left in that session and say so."""
    script = cwd / name
    script.write_text(source)
    command = [sys.executable, *args, script.name]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
            raise AssertionError(
                f"still running after {timeout} s:\n{stdout}{stderr}"
            ) from None
        finally:
            left = _kill_session(process.pid)
    if left:
        raise AssertionError(f"left processes running: {left}\n{stdout}{stderr}")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


#: How long processes of a block's session may take to end after it has
#: (multiprocessing's resource tracker, and a Machine's workers, exit once
#: they see their parent gone: on a loaded machine that is not at once).
SESSION_GRACE = 5.0


def _kill_session(sid: int) -> list[str]:
    """Kill every process still in session ``sid`` after SESSION_GRACE;
    their command lines."""
    pause = threading.Event()  # never set: a wait that cannot be cut short
    deadline = time.monotonic() + SESSION_GRACE
    while _session(sid) and time.monotonic() < deadline:
        pause.wait(0.02)  # (a process's end sends no event to wait on)
    left = []
    for pid, cmdline in _session(sid):
        left.append(cmdline)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return left


def _session(sid: int) -> list[tuple[int, str]]:
    """The live processes of session ``sid``: (pid, command line)."""
    found = []
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
            cmdline = (status.parent / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue  # ended while we looked
        # After ')': state, ppid, pgrp, session; a zombie has gone already.
        if int(fields[3]) == sid and fields[0] != "Z":
            text = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append((int(status.parent.name), text))
    return found
