"""The docs site builds with ``mkdocs build --strict``, and every Python
block in docs/ runs, alone, in a new interpreter, and leaves nothing
behind: no thread, actor or process."""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.markdown_blocks import ROOT, Block, fenced_blocks, run_python

DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
BLOCKS = [block for page in PAGES for block in fenced_blocks(page)]
PYTHON = [block for block in BLOCKS if block.language == "python"]
SHELL = [block for block in BLOCKS if block.language == "shell"]

#: Appended to each block: once it has run, every thread it started must
#: end (within 10 s in all) and no actor may be left; exit 3 says what was.
EPILOGUE = """

if __name__ == "__main__":
    import sys as _sys
    import threading as _threading
    import time as _time

    import pykka as _pykka

    from actors.placement.spawner import is_spawner as _is_spawner

    _threads = [
        _thread
        for _thread in _threading.enumerate()
        if _thread is not _threading.main_thread() and not _is_spawner(_thread)
    ]
    _deadline = _time.monotonic() + 10
    for _thread in _threads:
        _thread.join(max(0.0, _deadline - _time.monotonic()))
    _left = [_thread.name for _thread in _threads if _thread.is_alive()]
    _actors = _pykka.ActorRegistry.get_all()
    if _left or _actors:
        print(f"left threads {_left} and actors {_actors}", file=_sys.stderr)
        _sys.exit(3)
"""

needs_mkdocs = pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None,
    reason="mkdocs is not installed (the docs extra; the nox test-core "
    "sessions leave it out)",
)


@needs_mkdocs
@pytest.mark.timeout(120)
def test_the_site_builds_strict(tmp_path: Path) -> None:
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
        env=dict(os.environ, NO_MKDOCS_2_WARNING="1"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # The hook put the command's own help in, and mkdocstrings the API.
    cli = (site / "guides" / "cli" / "index.html").read_text()
    assert "usage: spinnactors read" in cli
    api = (site / "reference" / "actors" / "index.html").read_text()
    for name in ("connecting.connect", "board.client.Client", "placement.machine"):
        assert f'id="actors.{name}"' in api


#: The guides the site must have, and the one whose examples are shell
#: commands (parsed below) rather than Python.
GUIDES = {
    "getting-started",
    "cli",
    "spinnman-migration",
    "embedding",
    "supervision",
    "supervision-semantics",
    "many-boards",
    "asyncio",
    "testing",
    "virtual-board",
    "cold-boards",
}
SHELL_GUIDES = {"cli"}
#: Fewer runnable Python blocks than this means block discovery broke (a
#: test that runs none would pass, vacuously).
MIN_PYTHON_BLOCKS = 25


def runnable(block: Block) -> bool:
    return block.language == "python" and not block.marker


@pytest.mark.timeout(10)
def test_enough_python_blocks_are_found_to_run() -> None:
    assert len([block for block in PYTHON if runnable(block)]) >= MIN_PYTHON_BLOCKS


@pytest.mark.timeout(10)
def test_every_guide_is_there_with_an_example_that_runs() -> None:
    guides = {page.stem: page for page in PAGES if page.parent.name == "guides"}
    assert set(guides) >= GUIDES, f"missing guides: {GUIDES - set(guides)}"
    for name, page in guides.items():
        blocks = fenced_blocks(page)
        if name in SHELL_GUIDES:
            assert any(block.language == "shell" for block in blocks), page
        else:
            assert any(runnable(block) for block in blocks), (
                f"{page.relative_to(ROOT)} has no Python block that runs"
            )


@pytest.mark.timeout(10)
def test_the_docs_have_blocks_and_every_block_a_language() -> None:
    assert len(PYTHON) >= MIN_PYTHON_BLOCKS and SHELL
    unnamed = [block.where for block in BLOCKS if not block.language]
    assert not unnamed, f"say what each block is (```python, ```shell, ...): {unnamed}"


#: Markers of blocks that are test files of a user's, run under pytest by
#: another test rather than as scripts here.
RUN_AS_TEST_FILES = {
    "example-async-test": "run under pytest by tests/test_readme_example.py",
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("block", PYTHON, ids=[block.where for block in PYTHON])
def test_the_python_block_runs(block: Block, tmp_path: Path) -> None:
    if block.marker in RUN_AS_TEST_FILES:
        pytest.skip(f"{block.where}: {RUN_AS_TEST_FILES[block.marker]}")
    if block.marker:
        reason = block.not_run
        assert reason, f"{block.where}: unknown marker {block.marker!r}"
        pytest.skip(f"{block.where} is marked not-run: {reason}")
    result = run_python(block.code + EPILOGUE, tmp_path, 50)
    assert result.returncode == 0, f"{block.where}:\n{result.stdout}{result.stderr}"


def spinnactors_commands(code: str) -> list[list[str]]:
    """The arguments of each ``spinnactors`` command in a shell block
    (commands joined by ``&&``, ``|`` or ``;`` taken apart, redirections
    left out)."""
    commands = []
    for line in code.replace("\\\n", " ").splitlines():
        command: list[str] = []
        words = iter([*shlex.split(line, comments=True), ";"])
        for word in words:
            if word in ("&&", "||", "|", ";", "&"):
                if command[:1] == ["spinnactors"]:
                    commands.append(command[1:])
                command = []
            elif word in (">", "<", "2>", ">>"):
                next(words)
            else:
                command.append(word)
    return commands


@pytest.mark.timeout(30)
def test_the_shell_blocks_spinnactors_commands_parse() -> None:
    """Each ``spinnactors ...`` command shown is one the command accepts."""
    from actors.app.parser import build_parser

    shown = [
        (block.where, argv)
        for block in SHELL
        for argv in spinnactors_commands(block.code)
    ]
    assert shown
    for where, argv in shown:
        try:
            build_parser().parse_args(argv)
        except SystemExit as refused:
            raise AssertionError(f"{where}: spinnactors {argv} is refused") from refused


#: A path into this repository, as the docs and docstrings cite them.
CITED_PATH = re.compile(
    r"(?<![\w/.-])((?:actors|bench|docs|messages|tests|transport)/[\w/.-]*\w\.(?:py|md|lua))"
)


#: A file cited by its bare name, as a docstring names a module beside it.
CITED_NAME = re.compile(r"(?<![\w/.-])(\w[\w-]*\.(?:py|md|lua))(?![\w/-])")
#: Bare names the docs cite that are not files of ours: the reader's own
#: test file and Wireshark's configuration.
NOT_OURS = {"test_something.py", "this_file.py", "init.lua"}


def citing_sources() -> list[Path]:
    """The README, the docs and the packages' and benchmarks' sources."""
    sources = [ROOT / "README.md", *PAGES]
    for package in ("actors", "bench", "messages", "transport"):
        sources += sorted((ROOT / package).rglob("*.py"))
    return sources


def cited(pattern: re.Pattern[str]) -> list[tuple[str, str]]:
    """(where, what) of every match of pattern in the citing sources."""
    return [
        (str(source.relative_to(ROOT)), found)
        for source in citing_sources()
        for found in pattern.findall(source.read_text(encoding="utf-8"))
    ]


def cited_paths() -> list[tuple[str, str]]:
    """(where, path) of every repository path the sources cite."""
    return cited(CITED_PATH)


def file_names() -> set[str]:
    """The name of every file in the repository's tree (not its caches)."""
    names = {path.name for path in ROOT.iterdir()}
    for top in ("actors", "bench", "docs", "messages", "tests", "transport"):
        names |= {path.name for path in (ROOT / top).rglob("*")}
    return names


@pytest.mark.timeout(30)
def test_every_cited_path_exists() -> None:
    """A file moved (actors/ was split by concern) leaves no reference to
    where it was."""
    cited = cited_paths()
    assert len(cited) > 50  # the pattern finds what is there
    missing = [
        f"{where}: {path}" for where, path in cited if not (ROOT / path).exists()
    ]
    assert missing == []


@pytest.mark.timeout(30)
def test_every_cited_file_name_exists() -> None:
    """A bare name (``remote.py``) is checked too: a module renamed or
    folded into another leaves no docstring citing the old name."""
    names = cited(CITED_NAME)
    assert len(names) > 30  # the pattern finds what is there
    ours = file_names()
    missing = [
        f"{where}: {name}"
        for where, name in names
        if name not in ours and name not in NOT_OURS
    ]
    assert missing == []
