"""`spinnactors dissector` and `replay` as a user runs them."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from actors import connect
from actors.app import packets
from actors.app.parser import build_parser
from tests.system.conftest import ROOT, run_cli
from transport import VirtualBoard

pytestmark = pytest.mark.timeout(60)
run = functools.partial(run_cli, text=True)


def test_dissector_prints_the_path_of_the_shipped_script() -> None:
    result = run("dissector")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{ROOT / 'transport' / 'capture' / 'spinnaker.lua'}\n"
    assert result.stderr == ""


def test_dissector_install_copies_it_to_the_plugin_folder(tmp_path: Path) -> None:
    result = run("dissector", "--install", home=tmp_path)
    target = tmp_path / ".local" / "lib" / "wireshark" / "plugins" / "spinnaker.lua"
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"installed {target}\n"
    assert (
        target.read_bytes()
        == (ROOT / "transport" / "capture" / "spinnaker.lua").read_bytes()
    )
    elsewhere = run("dissector", "--install", "--plugin-dir", str(tmp_path / "p"))
    assert elsewhere.stdout == f"installed {tmp_path / 'p' / 'spinnaker.lua'}\n"


def test_the_plugin_folder_is_looked_up_when_the_help_shows_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Importing the CLI or building its parser reads neither HOME nor
    APPDATA: the dissector's --help finds Wireshark's folder as it prints."""
    looked: list[str] = []

    def plugin_folder() -> Path:
        looked.append("/wireshark/plugins")
        return Path(looked[-1])

    monkeypatch.setattr(packets, "plugin_folder", plugin_folder)
    parser = build_parser()
    assert looked == []
    with pytest.raises(SystemExit) as exited:
        parser.parse_args(["dissector", "--help"])
    assert exited.value.code == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert "install into DIR instead (default: /wireshark/plugins)" in shown
    assert looked == ["/wireshark/plugins"]


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    """A write then a read of chip 1,1, captured by the client."""
    path = tmp_path / "run.pcap"
    with VirtualBoard(2, 2) as board, connect(*board.address, capture=path) as client:
        client.write(1, 1, 0x6000_0000, b"spinnaker" * 100)
        assert client.read(1, 1, 0x6000_0000, 900) == b"spinnaker" * 100
    return path


def test_replay_to_a_board_that_answers_the_same(capture: Path) -> None:
    with VirtualBoard(2, 2) as board:
        host, port = board.address
        result = run("replay", str(capture), "--host", host, "--port", str(port))
        assert board.monitor.memory.read(0x0101, 0x6000_0000, 900) == b"spinnaker" * 100
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"replaying 8 requests from {capture} to {host}:{port}\n"
        "8 requests: 8 answered the same, 0 differently\n"
    )


def test_replay_reports_each_answer_that_differs(capture: Path) -> None:
    with VirtualBoard(1, 1) as board:  # no chip 1,1: every request fails
        host, port = board.address
        result = run("replay", str(capture), "--port", str(port))
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"replaying 8 requests from {capture} to {host}:{port}"
    assert lines[1] == (
        "frame 1 CMD_WRITE seq 0: RC_OK with 0 bytes -> RC_ROUTE with 0 bytes"
    )
    assert lines[-1] == "8 requests: 0 answered the same, 8 differently"
    assert len(lines) == 10


def test_replay_of_what_is_not_a_capture_is_a_one_line_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"not a capture at all, no")
    result = run("replay", str(junk))
    assert result.returncode == 1
    assert result.stderr.startswith(
        "spinnactors replay: error: not a classic pcap file"
    )
    assert len(result.stderr.splitlines()) == 1
    missing = run("replay", str(tmp_path / "nowhere.pcap"))
    assert missing.returncode == 1
    assert missing.stderr.startswith("spinnactors replay: error: ")
    assert "nowhere.pcap" in missing.stderr


def test_capture_to_a_folder_that_cannot_be_made_is_a_one_line_error(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = run("version", "--capture", str(blocker / "x.pcap"), "--port", "9")
    assert result.returncode == 1
    assert result.stderr.startswith("spinnactors version: error: ")
    assert len(result.stderr.splitlines()) == 1
