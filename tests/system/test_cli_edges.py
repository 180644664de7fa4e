"""The command line at its edges, as a hostile but fair user meets it:
numbers that are not finite or out of range, inputs without end, a
machine short of memory, a closed stdout, busy ports and odd paths. Each
ends in one line on stderr and the documented exit status (2: a bad
argument, 1: the work failed), never a traceback. Real processes, real UDP."""

from __future__ import annotations

import functools
import re
import select
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors import connect
from tests.system.conftest import run_cli, start_board, stop_board
from transport import VirtualBoard
from transport.capture.pcap import RECORD, file_header

pytestmark = pytest.mark.timeout(60)
run = functools.partial(run_cli, text=True)

#: An address-space cap the commands run in normally (a small transfer
#: works in it) but that no 1 GiB buffer fits in.
MEMORY_CAP = 1 << 30


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The stderr of a failed command: exactly one line, no traceback."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def usage(command: str, message: str) -> str:
    return (
        f"spinnactors {command}: error: {message} (see: spinnactors {command} --help)"
    )


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A write to chip 1,1, captured by the client."""
    path = tmp_path_factory.mktemp("capture") / "run.pcap"
    with VirtualBoard(2, 2) as board, connect(*board.address, capture=path) as client:
        client.write(1, 1, 0x6000_0000, b"spinnaker" * 100)
    return path


def closed_port() -> int:
    """A local UDP port nothing listens on (the host answers ICMP refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as gone:
        gone.bind(("127.0.0.1", 0))
        return int(gone.getsockname()[1])


@pytest.fixture
def busy_tcp_port() -> Iterator[int]:
    """A loopback TCP port something else listens on."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield int(taken.getsockname()[1])


# -- numbers are checked where they are parsed -------------------------------


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("nan", "nan is not a finite number"),
        ("inf", "inf is not a finite number"),
        ("-inf", "-inf is not a finite number"),
        ("1e30", "1e30 is too large: it must be <= 600"),
        ("0", "0 is too small: it must be >= 0.001"),
    ],
)
def test_replay_timeout_must_be_finite_and_in_range(
    capture: Path, given: str, message: str
) -> None:
    result = run("replay", str(capture), "--port", "9", "--timeout", given)
    assert result.returncode == 2
    assert one_error_line(result) == usage("replay", f"argument --timeout: {message}")
    assert result.stdout == ""


def test_replay_retries_must_not_be_negative(capture: Path) -> None:
    result = run("replay", str(capture), "--port", "9", "--retries", "-1")
    assert result.returncode == 2
    assert one_error_line(result) == usage(
        "replay", "argument --retries: -1 is too small: it must be >= 0"
    )
    assert result.stdout == ""


def test_bench_chip_out_of_range_is_a_usage_error_before_any_board() -> None:
    result = run("bench", "--chip", "-1", "0")
    assert result.returncode == 2
    assert one_error_line(result) == usage(
        "bench", "argument --chip: -1 is too small: it must be >= 0"
    )
    assert result.stdout == ""  # no board was started


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("-0x1", "4"), "address: -0x1 is too small: it must be >= 0"),
        (("-1", "4"), "address: -1 is too small: it must be >= 0"),
        (("0", "-0x10"), "length: -0x10 is too small: it must be >= 0"),
    ],
)
def test_a_negative_hex_number_is_an_argument_not_an_option(
    args: tuple[str, str], message: str
) -> None:
    result = run("read", "0", "0", *args, "-o", "-")
    assert result.returncode == 2
    assert one_error_line(result) == usage("read", f"argument {message}")


def test_write_past_the_end_of_memory_exits_2_and_stops_reading() -> None:
    # /dev/zero never ends: only what fits (and one byte) is read. (Capped
    # so that a reader of the whole input fails fast, not the machine.)
    result = run(
        "write", "0", "0", "0xfffff000", "-i", "/dev/zero", "--port", "9",
        memory=MEMORY_CAP,
    )  # fmt: skip
    assert result.returncode == 2
    assert one_error_line(result) == usage(
        "write",
        "the input runs past the end of 32-bit memory: at most 4096 bytes fit "
        "from 0xfffff000",
    )


def test_a_host_name_the_resolver_cannot_take_is_a_usage_error() -> None:
    long = run("version", "--host", "a" * 64)
    assert long.returncode == 2
    assert one_error_line(long) == usage(
        "version", f"argument --host: {'a' * 64!r} is not a host name: label too long"
    )
    empty = run("version", "--host", "")
    assert empty.returncode == 2
    assert one_error_line(empty) == usage(
        "version", "argument --host: an empty host name"
    )


def test_a_capture_template_with_an_attribute_is_a_usage_error() -> None:
    result = run("version", "--port", "9", "--capture", "x{host.foo}.pcap")
    assert result.returncode == 2
    assert one_error_line(result) == usage(
        "version",
        "argument --capture: 'x{host.foo}.pcap': only {host} and {port} can be "
        "filled in ('str' object has no attribute 'foo')",
    )


# -- inputs without end, and memory ------------------------------------------


def test_replay_of_dev_zero_is_refused_at_its_header() -> None:
    # Capped so that a reader of the whole file fails fast, not the machine.
    result = run("replay", "/dev/zero", "--port", "9", memory=MEMORY_CAP)
    assert result.returncode == 1
    assert one_error_line(result).startswith(
        "spinnactors replay: error: not a classic pcap file (magic 0x00000000;"
    )


def test_write_of_dev_zero_without_enough_memory_is_one_line() -> None:
    result = run(
        "write", "0", "0", "0", "-i", "/dev/zero", "--port", "9", memory=MEMORY_CAP
    )
    assert result.returncode == 1
    assert one_error_line(result) == (
        "spinnactors write: error: out of memory holding the input: write it in parts"
    )


def test_a_4_gib_read_without_enough_memory_is_one_line(
    board_process: tuple[str, int], tmp_path: Path
) -> None:
    _, port = board_process
    out = tmp_path / "all.bin"
    link = ("--port", str(port), "-o", str(out))
    result = run("read", "0", "0", "0", "0x100000000", *link, memory=MEMORY_CAP)
    assert result.returncode == 1
    assert one_error_line(result) == (
        "spinnactors read: error: out of memory holding 4294967296 bytes: read "
        "less at a time"
    )
    assert not out.exists()
    # The same cap holds a small read: the message is about the size.
    small = run("read", "0", "0", "0x60000000", "16", *link, memory=MEMORY_CAP)
    assert small.returncode == 0, small.stderr
    assert out.stat().st_size == 16


def test_a_full_disk_names_the_output(board_process: tuple[str, int]) -> None:
    _, port = board_process
    result = run(
        "read", "0", "0", "0x60000000", "16", "--port", str(port), "-o", "/dev/full"
    )
    assert result.returncode == 1
    assert one_error_line(result) == (
        "spinnactors read: error: cannot write /dev/full: No space left on device"
    )


# -- a closed stdout -----------------------------------------------------------


def test_a_closed_stdout_is_one_line_for_whoever_needs_it(
    board_process: tuple[str, int], tmp_path: Path
) -> None:
    _, port = board_process
    read = run(
        "read", "0", "0", "0x60000000", "16", "--port", str(port), stdout_closed=True
    )
    assert read.returncode == 1
    assert one_error_line(read) == (
        "spinnactors read: error: standard output is closed: give -o FILE for the bytes"
    )
    version = run("version", "--port", str(port), stdout_closed=True)
    assert version.returncode == 1
    assert one_error_line(version) == (
        "spinnactors version: error: standard output is closed: nowhere to print"
    )
    # A read to a file does not need stdout.
    out = tmp_path / "out.bin"
    to_file = run(
        "read", "0", "0", "0x60000000", "16", "--port", str(port), "-o", str(out),
        stdout_closed=True,
    )  # fmt: skip
    assert to_file.returncode == 0, to_file.stderr
    assert out.stat().st_size == 16


# -- replay: what it cannot replay, and a closed port -------------------------


def frames_file(path: Path, *frames: bytes) -> Path:
    path.write_bytes(
        file_header() + b"".join(RECORD.pack(0, 0, len(f), len(f)) + f for f in frames)
    )
    return path


def test_replay_of_a_capture_without_scp_requests_fails(tmp_path: Path) -> None:
    ipv6 = bytes(12) + b"\x86\xdd" + bytes(60)  # an Ethernet frame of IPv6
    junk = b"\xa5" * 80
    for name, frames in (("ipv6", (ipv6, ipv6)), ("junk", (junk, junk[:10]))):
        path = frames_file(tmp_path / f"{name}.pcap", *frames)
        result = run("replay", str(path), "--port", "9")
        assert result.returncode == 1, name
        assert one_error_line(result) == (
            f"spinnactors replay: error: {path}: no SCP requests to replay (only "
            f"UDP over IPv4 is read: IPv6 and other frames are skipped)"
        )
        assert result.stdout == ""


def test_replay_refuses_a_record_longer_than_any_frame(tmp_path: Path) -> None:
    path = tmp_path / "huge.pcap"
    path.write_bytes(file_header() + RECORD.pack(0, 0, 0xFFFF_FFFF, 60) + bytes(60))
    result = run("replay", str(path), "--port", "9")
    assert result.returncode == 1
    assert one_error_line(result) == (
        "spinnactors replay: error: record 1 (at byte 24) is garbled: it says it "
        "holds 4294967295 bytes of a 60-byte frame (at most 262144): the file is "
        "damaged, nothing after it can be read"
    )


def test_replay_to_a_closed_port_says_refused_once(capture: Path) -> None:
    port = closed_port()
    result = run("replay", str(capture), "--port", str(port), "--timeout", "5")
    assert result.returncode == 1
    assert one_error_line(result) == (
        f"spinnactors replay: error: 127.0.0.1:{port} refused: nothing listens on "
        f"that port (ICMP port unreachable); check the address, or that a board "
        f"is there (spinnactors board serves a virtual one)"
    )
    assert result.stdout == f"replaying 4 requests from {capture} to 127.0.0.1:{port}\n"


# -- metrics ports, and the dissector's folder --------------------------------


def test_metrics_port_0_says_where_it_serves() -> None:
    process, _ = start_board("--metrics-port", "0")
    try:
        assert process.stderr is not None
        # Printed before "listening on", which start_board has read.
        ready, _, _ = select.select([process.stderr], [], [], 10)
        assert ready, "no metrics line on stderr"
        line = process.stderr.readline()
        found = re.fullmatch(r"metrics on (http://127\.0\.0\.1:\d+)\n", line)
        assert found, line
        try:
            with urllib.request.urlopen(f"{found[1]}/healthz", timeout=10) as answer:
                status = answer.status
        except urllib.error.HTTPError as error:  # 503: not serving
            status = error.code
        assert status in (200, 503)
    finally:
        assert stop_board(process) == 0


def test_a_busy_metrics_port_is_named(
    busy_tcp_port: int, board_process: tuple[str, int]
) -> None:
    _, port = board_process
    read = run(
        "read", "0", "0", "0x60000000", "16", "--port", str(port), "-o", "-",
        "--metrics-port", str(busy_tcp_port),
    )  # fmt: skip
    assert read.returncode == 1
    assert one_error_line(read) == (
        f"spinnactors read: error: cannot serve metrics on 127.0.0.1:{busy_tcp_port}: "
        f"Address already in use"
    )


def test_dissector_plugin_dir_must_be_a_folder(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    onto_file = run("dissector", "--install", "--plugin-dir", str(afile), home=tmp_path)
    assert onto_file.returncode == 2
    assert one_error_line(onto_file) == usage(
        "dissector", f"argument --plugin-dir: {afile} is a file, not a folder"
    )
    under_file = run(
        "dissector", "--install", "--plugin-dir", str(afile / "sub"), home=tmp_path
    )
    assert under_file.returncode == 1
    assert one_error_line(under_file) == (
        f"spinnactors dissector: error: cannot install the dissector as "
        f"{afile / 'sub' / 'spinnaker.lua'}: Not a directory"
    )
    empty = run("dissector", "--install", "--plugin-dir", "", home=tmp_path)
    assert empty.returncode == 2
    assert one_error_line(empty) == usage(
        "dissector", "argument --plugin-dir: an empty folder name"
    )
    assert not (tmp_path / ".local").exists()  # nothing went to the default
