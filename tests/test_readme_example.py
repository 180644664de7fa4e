"""The README's example test (and the testing guide's async one), copied
into a new file as a user would, passes under the installed plugin's
fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.markdown_blocks import ROOT, fenced_blocks, run_python

PYTEST = ("-m", "pytest", "-q", "-p", "no:cacheprovider")


def example(marker: str = "example-test", page: str = "README.md") -> str:
    marked = [
        block
        for block in fenced_blocks(ROOT / page)
        if block.marker == marker and block.language == "python"
    ]
    assert marked, f"{page} has no {marker}"
    return marked[0].code


@pytest.mark.timeout(120)
def test_the_readme_example_passes_in_a_new_file(tmp_path: Path) -> None:
    result = run_python(example(), tmp_path, 110, *PYTEST, name="test_my_actor.py")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


@pytest.mark.timeout(120)
def test_a_leak_fails_the_test(tmp_path: Path) -> None:
    leak = (
        "from actors import connect\n"
        "def test_leaves_a_client_open(virtual_board, actor_system):\n"
        "    connect(*virtual_board.address)\n"
    )
    result = run_python(leak, tmp_path, 110, *PYTEST, name="test_leak.py")
    assert result.returncode != 0
    assert "left actors" in result.stdout


@pytest.mark.timeout(120)
def test_the_testing_guides_async_example_passes_in_a_new_file(
    tmp_path: Path,
) -> None:
    code = example("example-async-test", "docs/guides/testing.md")
    result = run_python(code, tmp_path, 110, *PYTEST, name="test_my_async.py")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
