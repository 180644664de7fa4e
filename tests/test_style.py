"""The packages, their tests, the benchmarks and noxfile.py stay typed
(mypy --strict), tidy (ruff check) and formatted (ruff format): the test
command enforces all three, so CI does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["actors", "messages", "transport"]
#: What mypy, ruff check and ruff format check: the benchmarks and the nox
#: sessions too (pyproject.toml's [tool.mypy] relaxes a few test modules).
CHECKED = [*PACKAGES, "tests", "bench", "noxfile.py"]


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.mark.timeout(300)
def test_mypy_strict_is_clean() -> None:
    result = run("mypy", "--strict", "--no-incremental", *CHECKED)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.timeout(120)
def test_ruff_is_clean() -> None:
    result = run("ruff", "check", *CHECKED)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.timeout(120)
def test_ruff_format_is_applied() -> None:
    result = run("ruff", "format", "--check", *CHECKED)
    assert result.returncode == 0, (
        "run `ruff format actors messages transport tests bench noxfile.py`:\n"
        + result.stdout
        + result.stderr
    )
