"""The command line's commands and options as data.

Each option is one add_argument call's names and keywords; each command
its summary, description, examples and options in the order ``--help``
lists them. parser.py and cold.py write their commands as tables of
these, and the options several commands take (the link's, the chip's
coordinates, --capture, --metrics-port) are one entry each, shared.
"""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from actors.app import arguments


@dataclass(frozen=True)
class Option:
    """One ``add_argument(*names, **settings)``."""

    names: tuple[str, ...]
    settings: Mapping[str, Any]


@dataclass(frozen=True)
class Group:
    """Options listed under a heading of their own in ``--help``."""

    title: str
    description: str
    options: tuple[Option, ...]


@dataclass(frozen=True)
class Command:
    """A subcommand: its one-line summary, description, examples and parts."""

    name: str
    summary: str
    description: str
    examples: tuple[str, ...]
    parts: tuple[Option | Group, ...] = ()


def option(*names: str, **settings: Any) -> Option:
    """An option written as its add_argument call would be."""
    return Option(names, settings)


def seconds(name: str, default: float | None, text: str) -> Option:
    """A number of seconds (0.001 to 600)."""
    return option(name, type=arguments.seconds, default=default, help=text)


def count(name: str, most: int, default: int, text: str) -> Option:
    """A whole number from 1 to ``most``."""
    kind = arguments.ranged(int, 1, most, "a count")
    return option(name, type=kind, default=default, help=text)


def delay(name: str, most: float, default: float, text: str) -> Option:
    """Seconds from 0 (none) to ``most``."""
    kind = arguments.ranged(float, 0, most, "seconds")
    return option(name, type=kind, default=default, help=text)


def rate(name: str, text: str) -> Option:
    """A chance, 0 to 1; none unless given."""
    return option(name, type=arguments.rate, default=0.0, help=text)


def add(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    parts: Iterable[Option | Group],
) -> None:
    """Add ``parts`` in order (a group's options under its heading)."""
    for part in parts:
        if isinstance(part, Group):
            add(parser.add_argument_group(part.title, part.description), part.options)
        else:
            parser.add_argument(*part.names, **part.settings)


def add_command(
    commands: Any, command: Command, common: Callable[[argparse.ArgumentParser], None]
) -> argparse.ArgumentParser:
    """The subcommand, with the ``common`` options first, then its parts."""
    epilog = "examples:\n" + "\n".join(f"  {example}" for example in command.examples)
    parser: argparse.ArgumentParser = commands.add_parser(
        command.name,
        help=command.summary,
        description=textwrap.fill(command.description, 78),
        epilog=epilog,
    )
    common(parser)
    add(parser, command.parts)
    return parser
