"""Captures as Wireshark sees them: the CLI's pcap files, decoded by
tshark with the shipped dissector, account for every datagram the
client counted; the board's EIEIO live output decodes too.

Needs tshark (Debian package tshark; .ci/run installs it): where it is
missing these tests are skipped, saying so."""

from __future__ import annotations

import functools
import json
import os
import shutil
import socket
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from messages.errors import SpinnactorsError
from messages.scp import IPTagSet, ReadMemory
from tests.system import conftest
from tests.system.conftest import ROOT, start_board, stop_board
from transport import SCAMPConnection, VirtualBoard
from transport.connections.call import call
from transport.virtual.traffic import TagTraffic

TSHARK = shutil.which("tshark")
#: A lossy transfer through the CLI may take a while on a loaded machine.
run_cli = functools.partial(conftest.run_cli, timeout=40)
LUA = ROOT / "transport" / "capture" / "spinnaker.lua"

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(
        TSHARK is None,
        reason="tshark is not installed (apt-get install tshark; .ci/run "
        "installs it): captures are not checked against Wireshark here",
    ),
]


def tshark(path: Path, *fields: str, home: Path, display: str = "") -> list[list[str]]:
    """The fields of each decoded frame, with only the shipped dissector
    loaded (HOME is a fresh folder: no personal plugins or settings)."""
    command = [str(TSHARK), "-r", str(path), "-X", f"lua_script:{LUA}", "-T", "fields"]
    for name in fields:
        command += ["-e", name]
    if display:
        command += ["-Y", display]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=30,
        env=dict(os.environ, HOME=str(home)),
    )
    assert result.returncode == 0, result.stderr
    assert "Lua" not in result.stderr, result.stderr  # the script loaded
    return [line.split("\t") for line in result.stdout.splitlines()]


def link_counts(
    result: subprocess.CompletedProcess[bytes], event: str
) -> dict[str, int]:
    """The counters in the command's closing JSON log line."""
    assert result.returncode == 0, result.stderr.decode()
    for line in result.stderr.decode().splitlines():
        record = json.loads(line)
        if record["event"] == event:
            return {k: v for k, v in record.items() if isinstance(v, int)}
    raise AssertionError(f"no {event} line in {result.stderr.decode()}")


@pytest.fixture(scope="module")
def lossy_board(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    folder = tmp_path_factory.mktemp("board")
    process, address = start_board(
        "--drop", "0.1", "--dup", "0.05", "--seed", "11",
        "--capture", str(folder / "board.pcap"),
    )  # fmt: skip
    try:
        yield address
    finally:
        assert stop_board(process) == 0


@pytest.mark.parametrize("command", ["write", "read"])
def test_a_lossy_transfer_decodes_every_datagram_the_client_counted(
    lossy_board: tuple[str, int], tmp_path: Path, command: str
) -> None:
    host, port = lossy_board
    data = bytes(range(256)) * 80  # 80 requests
    path = tmp_path / f"{command}.pcap"
    common = ["--host", host, "--port", str(port), "--timeout", "0.05",
              "--capture", str(path), "-v", "--log-format", "json"]  # fmt: skip
    if command == "write":
        result = run_cli("write", "0", "0", "0x60000000", *common, stdin=data)
    else:
        written = run_cli("write", "0", "0", "0x60000000", "--host", host,
                          "--port", str(port), "--timeout", "0.05", stdin=data)  # fmt: skip
        assert written.returncode == 0, written.stderr
        result = run_cli("read", "0", "0", "0x60000000", str(len(data)), *common)
        assert result.stdout == data
    counts = link_counts(result, f"cli.{command}")

    rows = tshark(
        path, "scp.cmd", "scp.seq", "scp.rc", "scp.resend_of", "scp.duplicate_of",
        "scp.request_in", home=tmp_path,
    )  # fmt: skip
    requests = [row for row in rows if row[0]]
    responses = [row for row in rows if row[2]]
    assert len(rows) == len(requests) + len(responses)  # every frame is SCP
    assert len(requests) == counts["sent"]  # first sends and resends
    assert {row[0] for row in requests} == {f"CMD_{command.upper()}"}
    assert len(responses) == counts["completed"] + counts["duplicates"] + counts["late"]
    assert {row[2] for row in responses} == {"RC_OK"}
    assert all(row[5] for row in responses)  # each matched to its request

    # Resends show as repeated sequence numbers, each marked as one.
    per_sequence = Counter(row[1] for row in requests)
    assert counts["resent"] > 0, "the lossy board lost nothing: no resend to see"
    assert sum(n - 1 for n in per_sequence.values()) == counts["resent"]
    assert sum(1 for row in requests if row[3]) == counts["resent"]
    assert sum(1 for row in responses if row[4]) == counts["duplicates"]
    assert len(per_sequence) == 80


def test_filters_on_the_dissector_s_fields(tmp_path: Path) -> None:
    path = tmp_path / "f.pcap"
    with VirtualBoard(2, 2, capture=path) as board:
        host, port = board.address
        with SCAMPConnection(remote_host=host, remote_port=port) as connection:
            call(connection, ReadMemory((1, 0, 0), 0x6000_0000, 16))
            with pytest.raises(SpinnactorsError):  # RC_ROUTE is the point
                call(connection, ReadMemory((7, 7, 0), 0x6000_0000, 16))
    assert tshark(path, "scp.seq", home=tmp_path, display='scp.cmd == "CMD_READ"')
    assert [r[0] for r in tshark(path, "sdp.dest_chip", home=tmp_path,
                                 display="scp.kind == \"request\"")] == ["1,0", "7,7"]  # fmt: skip
    assert [r[0] for r in tshark(path, "scp.rc", home=tmp_path,
                                 display='scp.rc != "RC_OK"')] == ["RC_ROUTE"]  # fmt: skip
    rtt = tshark(path, "scp.rtt", "scp.request_cmd", home=tmp_path, display="scp.rtt")
    assert len(rtt) == 2 and all(float(r[0]) >= 0 and r[1] == "CMD_READ" for r in rtt)


def test_the_board_s_eieio_live_output_decodes(tmp_path: Path) -> None:
    path = tmp_path / "eieio.pcap"
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(5.0)
    port = listener.getsockname()[1]
    traffic = TagTraffic(2000.0, payload_size=18, eieio=True)  # 4 keys each
    try:
        with VirtualBoard(2, 2, traffic=traffic, capture=path) as board:
            host, board_port = board.address
            with SCAMPConnection(remote_host=host, remote_port=board_port) as scamp:
                call(scamp, IPTagSet(0, 0, "127.0.0.1", port, 1, strip=True))
            received = [listener.recvfrom(65535)[0] for _ in range(50)]
    finally:
        listener.close()
    assert received[0][:2] == bytes([4, 0x08])  # 4 keys, KEY_32_BIT
    rows = tshark(
        path, "eieio.kind", "eieio.type", "eieio.count", "eieio.tag", "eieio.key",
        home=tmp_path, display="eieio",
    )  # fmt: skip
    assert len(rows) >= 50
    assert {tuple(row[:4]) for row in rows} == {("data", "KEY_32_BIT", "4", "0")}
    keys = [int(key, 16) for row in rows for key in row[4].split(",")]
    assert keys == list(range(len(keys)))  # in order, none lost on the board's side
    (iptag,) = tshark(path, "scp.seq", home=tmp_path, display='scp.cmd == "CMD_IPTAG"')
    assert tshark(
        path, "scp.rc", home=tmp_path, display=f"scp.seq == {iptag[0]} && scp.rc"
    )[0] == ["RC_OK"]
