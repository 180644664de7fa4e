"""What the command line accepts: its parser, and each kind of argument.

Every number is checked where it is parsed (finite, in range), so that a
bad one is a usage error naming the argument (exit 2) and never reaches a
socket or a struct as NaN, infinity or a value out of range.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

#: Exit statuses: a mistake in the command line, and work that failed.
USAGE = 2
FAILED = 1

#: Arguments that are numbers although they start with "-" (argparse
#: takes "-0x1" or "-inf" for an option otherwise, and then says that the
#: next argument is missing instead of what is wrong with this one).
_NEGATIVE_NUMBER = re.compile(
    r"^-(0[xob][0-9a-f_]+|\d[\d_]*(\.\d*)?(e[-+]?\d+)?|\.\d+(e[-+]?\d+)?|inf(inity)?|nan)$",
    re.IGNORECASE,
)


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
    look, and exit 2; a negative number is an argument, not an option."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", Help)
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = _NEGATIVE_NUMBER

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE, f"{self.prog}: error: {message} (see: {self.prog} --help)\n")


class UsageError(Exception):
    """A mistake in the command line found after parsing (an input too
    long for the address): exit 2, like argparse's own."""


def usage_error(where: str, message: str) -> int:
    """A mistake in the command line found after parsing: one line, where
    to look, exit 2."""
    print(f"{where}: error: {message} (see: {where} --help)", file=sys.stderr)
    return USAGE


def ranged(
    kind: Callable[[str], float | int], low: float, high: float, what: str
) -> Callable[[str], float | int]:
    """A parser of ``kind`` that takes only finite values in low..high."""

    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text} is not a finite number")
        if value < low:
            raise argparse.ArgumentTypeError(
                f"{text} is too small: it must be >= {_number(low)}"
            )
        if value > high:
            raise argparse.ArgumentTypeError(
                f"{text} is too large: it must be <= {_number(high)}"
            )
        return value

    return parse


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def integer(text: str) -> int:
    """Decimal or 0x-hex."""
    return int(text, 0)


def host(text: str) -> str:
    """A host name or address: not empty, and one the resolver can take
    (a label over 63 characters is refused before it is looked up)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty host name")
    try:
        text.encode("idna")
    except UnicodeError as error:
        found = re.search(r"\(UnicodeError: (.*)\)$", str(error))
        reason = found.group(1) if found else str(error)
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a host name: {reason}"
        ) from None
    return text


def host_port(text: str) -> tuple[str, int | None]:
    """HOST or HOST:PORT."""
    name, colon, number = text.rpartition(":")
    if not colon:
        return host(text), None
    return host(name), int(port(number))


def folder(text: str) -> str:
    """A folder to put a file in: named, and not an existing file."""
    if not text:
        raise argparse.ArgumentTypeError("an empty folder name")
    if Path(text).exists() and not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a folder")
    return text


port = ranged(int, 0, 65535, "a port number")
side = ranged(int, 1, 256, "a whole number")
rate = ranged(float, 0.0, 1.0, "a probability")
millis = ranged(float, 0.0, 60_000.0, "a number of milliseconds")
chip = ranged(integer, 0, 255, "a chip coordinate")
chip_x = ranged(integer, 0, 255, "a chip x")
chip_y = ranged(integer, 0, 255, "a chip y")
core = ranged(integer, 0, 17, "a core")
address = ranged(integer, 0, 0xFFFF_FFFF, "an address")
length = ranged(integer, 0, 1 << 32, "a length in bytes")
seconds = ranged(float, 0.001, 600, "seconds")
retries = ranged(int, 0, 1000, "a count")
