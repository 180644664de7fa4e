"""SpiNNMan's own unit tests, their imports redirected to this project,
pass wherever they pass on SpiNNMan.

SpiNNMan does not ship its unit tests (the ``spinnman`` wheel has none), so
this runs only when ``SPINNMAN_UNITTESTS`` names a checkout's
``unittests`` folder (e.g. ``git archive 7.4.1 unittests`` of
github.com/SpiNNakerManchester/SpiNNMan); otherwise it is skipped and
says so. It copies the tests, rewrites each ``from spinnman... import
NAME`` whose NAME this project has (see REDIRECTS) to import ours, and
runs both copies in child processes, the redirected one under
actors.compat.install() (so SpiNNMan's processes use our pipeline); then
every test that passed on SpiNNMan must pass redirected.
"""

from __future__ import annotations

import ast
import importlib
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Where SpiNNMan's modules' names live here: (SpiNNMan's module prefix,
#: ours; None: not redirected). A name is redirected only if our module
#: has it; the first prefix that fits decides.
REDIRECTS: tuple[tuple[str, str | None], ...] = (
    ("spinnman.messages.scp", "messages.scp"),
    ("spinnman.messages.sdp", "messages"),
    ("spinnman.messages.eieio", "messages.eieio"),
    ("spinnman.messages.spinnaker_boot", "messages.boot"),
    ("spinnman.connections.udp_packet_connections", "transport"),
    # (not spinnman.model.enums: SpiNNMan's own model classes, which the
    # tests use with them, compare states with SpiNNMan's enums)
    ("spinnman.model.enums", None),
    ("spinnman.model", "messages.scp"),
)
#: SpiNNMan's names that are called something else here.
RENAMED = {
    ("spinnman.exceptions", "SpinnmanInvalidParameterException"): (
        "messages.errors",
        "InvalidArgumentError",
    ),
    ("spinnman.exceptions", "SpinnmanUnexpectedResponseCodeException"): (
        "messages.errors",
        "UnexpectedResponseCodeError",
    ),
}
#: The folders and files whose subjects this project has a counterpart of.
SUBJECTS = (
    "scp_tests",
    "sdp_tests",
    "messages",
    "model_tests",
    "connection_tests",
    "processes_test",
    "test_boot_message_assembly.py",
    "test_multicast_message_assembly.py",
)
_INSTALL = "import actors.compat\nactors.compat.install()\n"


def ours(module: str, name: str) -> tuple[str, str] | None:
    """Where ``from module import name`` goes here, or None (stays)."""
    if (module, name) in RENAMED:
        return RENAMED[(module, name)]
    for prefix, target in REDIRECTS:
        if module == prefix or module.startswith(prefix + "."):
            if target is not None and hasattr(importlib.import_module(target), name):
                return target, name
            return None
    return None


def redirect(source: str) -> tuple[str, int]:
    """``source`` with each redirectable imported name imported from here
    instead (as the name the test uses); how many were."""
    tree = ast.parse(source)
    count = 0
    body: list[ast.stmt] = []
    for node in tree.body:
        if not isinstance(node, ast.ImportFrom) or not node.module:
            body.append(node)
            continue
        kept: list[ast.alias] = []
        for alias in node.names:
            target = ours(node.module, alias.name)
            if target is None:
                kept.append(alias)
                continue
            count += 1
            body.append(
                ast.ImportFrom(
                    target[0],
                    [ast.alias(target[1], alias.asname or alias.name)],
                    0,
                )
            )
        if kept:
            body.append(ast.ImportFrom(node.module, kept, node.level))
    tree.body = body
    return ast.unparse(ast.fix_missing_locations(tree)), count


def outcomes(folder: Path, install: bool) -> dict[str, str]:
    """Run the tests in ``folder``: each test's outcome by its id."""
    report = folder / "report.xml"
    if install:
        (folder / "conftest.py").write_text(_INSTALL)
    targets = [str(folder / "unittests" / s) for s in SUBJECTS]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            f"--junitxml={report}",
            "--timeout=120",
            *[t for t in targets if Path(t).exists()],
        ],
        cwd=folder,
        env=dict(os.environ, PYTHONPATH=f"{folder}{os.pathsep}{ROOT}"),
        capture_output=True,
        timeout=600,
    )
    results: dict[str, str] = {}
    for case in ElementTree.parse(report).iter("testcase"):
        name = f"{case.get('classname')}.{case.get('name')}"
        kinds = {child.tag for child in case}
        results[name] = (
            "failed"
            if kinds & {"failure", "error"}
            else "skipped"
            if "skipped" in kinds
            else "passed"
        )
    return results


@pytest.mark.timeout(900)
def test_spinnmans_unit_tests_pass_redirected_where_they_pass(
    tmp_path: Path,
) -> None:
    given = os.environ.get("SPINNMAN_UNITTESTS")
    if not given:
        pytest.skip(
            "SpiNNMan does not ship its unit tests: set SPINNMAN_UNITTESTS to "
            "a SpiNNMan checkout's unittests folder"
        )
    original, redirected = tmp_path / "spinnman", tmp_path / "redirected"
    for folder in (original, redirected):
        shutil.copytree(given, folder / "unittests")
    changed = 0
    for path in (redirected / "unittests").rglob("*.py"):
        text, count = redirect(path.read_text())
        path.write_text(text)
        changed += count
    before = outcomes(original, install=False)
    after = outcomes(redirected, install=True)
    assert changed > 0 and before, "nothing was redirected or run"
    lost = sorted(
        name
        for name, outcome in before.items()
        if outcome == "passed" and after.get(name) != "passed"
    )
    assert lost == [], f"{len(lost)} pass on SpiNNMan only: {lost}"
