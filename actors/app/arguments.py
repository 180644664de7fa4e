"""What the command line accepts: its parser, and each kind of argument."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, NoReturn


class Help(
    argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter
):
    """Shows each option's default (once), and keeps the examples' layout."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "(default" in text or action.default is None or action.default is False:
            return text
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line on stderr, with where to
    look, and exit 2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", Help)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see: {self.prog} --help)\n")


def ranged(
    kind: Callable[[str], float | int], low: float, high: float, what: str
) -> Callable[[str], float | int]:
    """A parser of ``kind`` that takes only values in low..high."""

    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"{text} is out of range {_number(low)}..{_number(high)}"
            )
        return value

    return parse


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def integer(text: str) -> int:
    """Decimal or 0x-hex."""
    return int(text, 0)


port = ranged(int, 0, 65535, "a port number")
side = ranged(int, 1, 256, "a whole number")
rate = ranged(float, 0.0, 1.0, "a probability")
millis = ranged(float, 0.0, 60_000.0, "a number of milliseconds")
chip_x = ranged(integer, 0, 255, "a chip x")
chip_y = ranged(integer, 0, 255, "a chip y")
core = ranged(integer, 0, 17, "a core")
address = ranged(integer, 0, 0xFFFF_FFFF, "an address")
length = ranged(integer, 0, 1 << 32, "a length in bytes")
