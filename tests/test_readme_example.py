"""The README's example test, copied into a new file as a user would,
passes under the installed plugin's fixtures."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def example(marker: str = "example-test") -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(rf"<!-- {marker} -->\n```python\n(.*?)```", text, re.S)
    assert match, f"the README has no {marker}"
    return match.group(1)


@pytest.mark.timeout(120)
def test_the_readme_example_passes_in_a_new_file(tmp_path: Path) -> None:
    (tmp_path / "test_my_actor.py").write_text(example())
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "test_my_actor.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


@pytest.mark.timeout(120)
def test_a_leak_fails_the_test(tmp_path: Path) -> None:
    (tmp_path / "test_leak.py").write_text(
        "from actors import connect\n"
        "def test_leaves_a_client_open(virtual_board, actor_system):\n"
        "    connect(*virtual_board.address)\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "test_leak.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert result.returncode != 0
    assert "left actors" in result.stdout


@pytest.mark.timeout(120)
def test_the_readme_async_example_passes_in_a_new_file(tmp_path: Path) -> None:
    (tmp_path / "test_my_async.py").write_text(example("example-async-test"))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "test_my_async.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
