"""The suite on every Python that pyproject.toml claims.

``nox`` runs the fast part of the suite (everything but tests/system,
whose exit tests it keeps) on 3.10, 3.11, 3.12 and 3.13, each in a fresh
venv with the ``test-core`` extra: no Ray, whose 240 MB install only the
placement system tests use (they skip without it). ``nox -s tests-3.10
-- tests/system`` runs other tests instead. A Python that is not on this
machine is skipped with a message, never an error, also where ``CI`` is
set; none is ever downloaded.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nox

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]

nox.options.sessions = ["tests"]
nox.options.error_on_missing_interpreters = False
nox.options.download_python = "never"


def pyenv_bins(versions: list[str]) -> list[str]:
    """The bin folder of pyenv's newest X.Y.Z for each X.Y it has.

    pyenv's shims answer only for the versions it has activated, so nox
    would not find, say, python3.10 beside a global 3.11 without these."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    bins = []
    for version in versions:
        patches = [
            (int(folder.name.rsplit(".", 1)[1]), folder / "bin")
            for folder in root.glob(f"{version}.*")
            if re.fullmatch(rf"{re.escape(version)}\.\d+", folder.name)
            and (folder / "bin" / f"python{version}").exists()
        ]
        if patches:
            bins.append(str(max(patches)[1]))
    return bins


os.environ["PATH"] = os.pathsep.join([*pyenv_bins(PYTHONS), os.environ["PATH"]])


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The fast suite on one Python (arguments after -- replace the paths)."""
    with one_install_at_a_time():
        session.install(".[test-core]")
    session.run("python", "-m", "pytest", "-q", *(session.posargs or fast_suite()))


@contextmanager
def one_install_at_a_time() -> Iterator[None]:
    """Sessions run side by side (several nox commands at once) take turns
    to install: each builds the wheel in the same build/ folder of the
    source tree."""
    try:
        import fcntl
    except ImportError:  # (not POSIX: nothing runs them side by side)
        yield
        return
    Path(".nox").mkdir(exist_ok=True)
    with open(Path(".nox") / "install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


#: What the default Python's run checks once for all: ruff and mypy read
#: the source, not the interpreter (mypy checks it as for the oldest
#: Python claimed: pyproject.toml says so), and the site builds the same.
ONCE_FILES = {"test_style.py"}
ONCE_TESTS = ["tests/test_docs.py::test_the_site_builds_strict"]


def fast_suite() -> list[str]:
    """Everything but tests/system, and of it only the exit tests: what a
    script does at exit changes from one Python to the next (3.12.0 and
    3.12.1 start no thread in an atexit hook); less what is checked once."""
    tests = Path(__file__).parent / "tests"
    parts = [
        path.relative_to(tests.parent)
        for path in sorted(tests.iterdir())
        if path.name != "system"
        and path.name not in ONCE_FILES
        and (
            (path.is_dir() and path.name != "__pycache__")
            or (path.name.startswith("test_") and path.suffix == ".py")
        )
    ]
    deselect = [arg for test in ONCE_TESTS for arg in ("--deselect", test)]
    return [*map(str, parts), "tests/system/test_exit.py", *deselect]
