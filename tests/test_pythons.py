"""The Pythons pyproject.toml claims are the ones noxfile.py tests: from the
requires-python floor up, every minor version, each one a classifier."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path
from typing import Any

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def project() -> dict[str, Any]:
    text = (ROOT / "pyproject.toml").read_text()
    return dict(tomllib.loads(text)["project"])


def nox_pythons() -> list[str]:
    """noxfile.py's PYTHONS, read without importing nox (not installed in
    the sessions' venvs)."""
    for node in ast.parse((ROOT / "noxfile.py").read_text()).body:
        if isinstance(node, ast.Assign) and [
            target.id for target in node.targets if isinstance(target, ast.Name)
        ] == ["PYTHONS"]:
            return list(ast.literal_eval(node.value))
    raise AssertionError("noxfile.py has no PYTHONS")


@pytest.mark.timeout(10)
def test_the_tested_pythons_start_at_the_floor_and_skip_none() -> None:
    floor = re.fullmatch(r">=\s*(3\.\d+)", project()["requires-python"])
    assert floor, project()["requires-python"]
    pythons = nox_pythons()
    minors = [int(version.split(".")[1]) for version in pythons]
    assert pythons[0] == floor[1]
    assert minors == list(range(minors[0], minors[0] + len(minors)))


@pytest.mark.timeout(10)
def test_the_classifiers_name_the_tested_pythons() -> None:
    prefix = "Programming Language :: Python :: "
    claimed = [
        c.removeprefix(prefix)
        for c in project()["classifiers"]
        if re.fullmatch(re.escape(prefix) + r"3\.\d+", c)
    ]
    assert claimed == nox_pythons()
