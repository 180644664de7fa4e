"""install() rebinds SpiNNMan's names where SpiNNMan binds them, and
uninstall() puts back exactly what was there."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
import spinnman.connections as spinnman_connections
import spinnman.connections.connection_listener as spinnman_listener_module
import spinnman.connections.scp_request_pipeline as spinnman_pipeline_module
import spinnman.processes.abstract_multi_connection_process as amcp

import actors.compat
from actors.compat import install, installed, is_installed, uninstall
from actors.compat import pipeline as our_pipeline
from actors.compat.connection_listener import ConnectionListener as OurListener
from actors.compat.shared import SHARED

ROOT = Path(__file__).resolve().parents[3]
SPINNMAN_PIPELINE = spinnman_pipeline_module.SCPRequestPipeLine
SPINNMAN_LISTENER = spinnman_listener_module.ConnectionListener

#: Every place SpiNNMan binds the two names.
HOMES = [
    (amcp, "SCPRequestPipeLine"),
    (spinnman_connections, "SCPRequestPipeLine"),
    (spinnman_pipeline_module, "SCPRequestPipeLine"),
    (spinnman_connections, "ConnectionListener"),
    (spinnman_listener_module, "ConnectionListener"),
]


@pytest.fixture(autouse=True)
def _uninstalled() -> Iterator[None]:
    uninstall()
    yield
    uninstall()


def bound() -> list[type]:
    return [getattr(module, name) for module, name in HOMES]


def test_install_rebinds_every_home_to_subclasses_of_spinnmans_own() -> None:
    install()
    assert is_installed()
    pipeline, *_ = now = bound()
    assert now[:3] == [pipeline] * 3
    assert now[3] is now[4]
    assert issubclass(pipeline, our_pipeline.SCPRequestPipeLine)
    assert issubclass(pipeline, SPINNMAN_PIPELINE)
    assert issubclass(now[3], OurListener)
    assert issubclass(now[3], SPINNMAN_LISTENER)
    # spinnactors' methods, not SpiNNMan's, are the ones that run.
    assert pipeline.send_request is our_pipeline.SCPRequestPipeLine.send_request
    assert now[3].start is OurListener.start


def test_uninstall_puts_back_exactly_what_was_there() -> None:
    before = bound()
    assert before == [SPINNMAN_PIPELINE] * 3 + [SPINNMAN_LISTENER] * 2
    install()
    assert bound() != before
    uninstall()
    assert not is_installed()
    assert bound() == before


def test_install_and_uninstall_are_idempotent() -> None:
    install()
    first = bound()
    install()
    assert bound() == first
    uninstall()
    uninstall()
    assert bound() == [SPINNMAN_PIPELINE] * 3 + [SPINNMAN_LISTENER] * 2


def test_the_context_manager_uninstalls_only_what_it_installed() -> None:
    with installed():
        assert is_installed()
        assert amcp.SCPRequestPipeLine is not SPINNMAN_PIPELINE
    assert not is_installed()
    assert amcp.SCPRequestPipeLine is SPINNMAN_PIPELINE
    install()
    with installed():
        pass
    assert is_installed(), "installed before the block: left installed"


def test_front_end_modules_copies_are_rebound_both_ways(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A front end that took the names before install() (as
    SpiNNFrontEndCommon's LiveEventConnection does at import) holds its own
    copies; one imported during install() takes ours from
    spinnman.connections; uninstall() restores both. Modules outside
    SpiNNaker's packages are left alone."""
    before = _module(monkeypatch, "spinn_front_end_common.utilities.connections.before")
    outsider = _module(monkeypatch, "someone_elses.module")
    install()
    during = _module(monkeypatch, "spynnaker.during")
    assert before.ConnectionListener is spinnman_connections.ConnectionListener
    assert during.ConnectionListener is spinnman_connections.ConnectionListener
    assert before.ConnectionListener is not SPINNMAN_LISTENER
    assert outsider.ConnectionListener is SPINNMAN_LISTENER
    uninstall()
    assert before.ConnectionListener is SPINNMAN_LISTENER
    assert during.ConnectionListener is SPINNMAN_LISTENER
    assert during.SCPRequestPipeLine is SPINNMAN_PIPELINE


def _module(monkeypatch: pytest.MonkeyPatch, name: str) -> types.ModuleType:
    """A module named ``name`` that imports SpiNNMan's names as front ends
    do (``from spinnman.connections import ...``)."""
    module = types.ModuleType(name)
    exec(  # noqa: S102 - the import statement a front end runs
        "from spinnman.connections import ConnectionListener, SCPRequestPipeLine",
        module.__dict__,
    )
    monkeypatch.setitem(sys.modules, name, module)
    return module


def test_install_before_spinnman_is_imported() -> None:
    """In a fresh interpreter that has not imported SpiNNMan, install()
    still rebinds the name where processes take it from."""
    code = (
        "import sys; from actors.compat import install; "
        "assert 'spinnman' not in sys.modules; install(); "
        "import spinnman.processes.abstract_multi_connection_process as m; "
        "print(m.SCPRequestPipeLine.__module__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "actors.compat.bridge"


def test_install_lingers_and_uninstall_restores_the_linger() -> None:
    assert SHARED.linger == 0.0
    install(linger=5.0)
    assert SHARED.linger == 5.0
    uninstall()
    assert SHARED.linger == 0.0


def test_the_public_names() -> None:
    assert actors.compat.install is install
    assert actors.compat.uninstall is uninstall
