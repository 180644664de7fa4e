"""MkDocs hook: ``<!-- spinnactors-help COMMAND -->`` in a page becomes
what ``spinnactors COMMAND --help`` prints (the bare marker: ``spinnactors
--help``), so the CLI page shows the installed command as it is today."""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
from typing import Any

_MARKER = re.compile(r"^<!-- spinnactors-help(?P<command>[ a-z-]*)-->$", re.M)

# Runs the console script by its entry point, however the CLI is built.
_RUN = (
    "import sys\n"
    "from importlib.metadata import entry_points\n"
    "sys.argv[0] = 'spinnactors'\n"
    "(script,) = entry_points(group='console_scripts', name='spinnactors')\n"
    "sys.exit(script.load()())\n"
)


@functools.cache
def help_text(command: str) -> str:
    """What ``spinnactors COMMAND --help`` prints, 80 columns wide."""
    result = subprocess.run(
        [sys.executable, "-c", _RUN, *command.split(), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, COLUMNS="80", NO_COLOR="1", TERM="dumb"),
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"spinnactors {command} --help failed: {result.stdout}{result.stderr}"
        )
    return result.stdout.rstrip()


def on_page_markdown(markdown: str, **_: Any) -> str:
    def block(match: re.Match[str]) -> str:
        command = " ".join(match["command"].split())
        shown = f"spinnactors {command} --help".replace("  ", " ")
        return f"```text\n$ {shown}\n{help_text(command)}\n```"

    return _MARKER.sub(block, markdown)
