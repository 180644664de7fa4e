"""What people see on stderr: one rich Console for bars and log lines.

A live progress bar and log lines share the terminal. Lines written
straight to stderr would land inside the bar; printed through the same
Console as the bar, rich puts each above it. On a pipe, or with JSON
logs, there is no bar and no colour: one plain line per event.
"""

from __future__ import annotations

import io
from typing import TextIO

from rich.console import Console
from rich.text import Text


def make_console(stream: TextIO, *, plain: bool = False) -> Console:
    """A Console on ``stream``; ``plain`` (JSON logs) never draws or colours."""
    if plain:
        return Console(
            file=stream, force_terminal=False, no_color=True, highlight=False
        )
    return Console(file=stream, highlight=False)


def shows_bars(console: Console) -> bool:
    """Whether a live bar belongs on this console (a terminal, not JSON)."""
    return console.is_terminal and not console.no_color


class ConsoleLines(io.TextIOBase):
    """A text stream for a logging handler that prints each whole line
    through ``console`` (above any live bar), keeping its ANSI colours."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self._console = console
        self._partial = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            self._console.print(Text.from_ansi(line), soft_wrap=True)
        return len(text)

    def flush(self) -> None:
        if self._partial:
            line, self._partial = self._partial, ""
            self._console.print(Text.from_ansi(line), soft_wrap=True)
