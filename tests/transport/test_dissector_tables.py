"""The Lua dissector's names are the Python enums' names and values."""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path

import pytest

import transport.capture
from messages.eieio.types import EIEIOType
from messages.scp.enums import SCPCommand, SCPResult

LUA = Path(transport.capture.__file__).parent / "spinnaker.lua"
_ENTRY = re.compile(r'^\s*\[(0x[0-9A-Fa-f]+|\d+)\] = "(\w+)",\s*$')


def lua_table(name: str) -> dict[int, str]:
    """The entries of ``local NAME = { [n] = "X", ... }`` in the file."""
    lines = LUA.read_text().splitlines()
    start = lines.index(f"local {name} = {{")
    table: dict[int, str] = {}
    for line in lines[start + 1 :]:
        if line.strip() == "}":
            return table
        match = _ENTRY.match(line)
        assert match, f"{name}: cannot read {line!r}"
        table[int(match[1], 0)] = match[2]
    raise AssertionError(f"{name} is not closed")


@pytest.mark.parametrize(
    ("table", "enum"),
    [
        ("SCP_COMMANDS", SCPCommand),
        ("SCP_RESULTS", SCPResult),
        ("EIEIO_TYPES", EIEIOType),
    ],
)
def test_lua_tables_equal_the_enums(table: str, enum: type[Enum]) -> None:
    assert lua_table(table) == {member.value: member.name for member in enum}


def test_eieio_commands_are_spinnman_s() -> None:
    spinnman = pytest.importorskip("spinnman.constants")
    ids = spinnman.EIEIO_COMMAND_IDS
    assert lua_table("EIEIO_COMMANDS") == {member.value: member.name for member in ids}


def test_the_dissector_is_package_data() -> None:
    text = (Path(__file__).parents[2] / "pyproject.toml").read_text()
    assert '"transport.capture" = ["spinnaker.lua"]' in text
