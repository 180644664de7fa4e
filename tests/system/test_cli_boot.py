"""``spinnactors boot | power | sensors | discover``, each run as a process
of its own against cold virtual boards and a virtual BMP on 127.0.0.x:
what they print, their one-line errors, and their exit statuses (0 done,
1 failed, 2 a mistake in the command line)."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.system.cold import cold_board, cold_boards, rom_of
from tests.system.conftest import run_cli
from tests.transport.loopback import BOOT_PORT, first_free, udp_socket
from transport import FaultPlan, VirtualBMP, VirtualBoard
from transport.capture.pcap import Packet, read_packets
from transport.capture.replay import exchanges

pytestmark = pytest.mark.timeout(60)
#: Quick to take a silent board for unbooted.
QUICK = ("--probe-timeout", "0.3", "--pass-timeout", "0.5")
Frame = tuple[VirtualBMP, list[VirtualBoard]]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    result: subprocess.CompletedProcess[str] = run_cli(*args, text=True, timeout=50)
    return result


def where(board: VirtualBoard | VirtualBMP) -> str:
    return "{}:{}".format(*board.address)


@pytest.fixture
def frame() -> Iterator[Frame]:
    """Two cold boards and their BMP."""
    boards = cold_boards(60, 2, netinit=0.2)
    bmp = VirtualBMP(boards, power_on_delay=0.05).start()
    try:
        yield bmp, boards
    finally:
        bmp.stop()
        for board in boards:
            board.stop()


# -- boot ----------------------------------------------------------------------------


def test_boot_brings_boards_up_at_once_and_never_again(frame: Frame) -> None:
    bmp, boards = frame
    first, second = (where(board) for board in boards)
    result = run("boot", first, second, "--bmp", f"{where(bmp)}/0-1", *QUICK)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and result.stderr == ""
    for n, (line, board) in enumerate(zip(lines, (first, second), strict=True)):
        assert re.fullmatch(
            rf"board {n} at {board} booted in \d+\.\d s \(1 pass\): SC&MP 4\.0\.0 "
            rf"at 0,0",
            line,
        ), line
    again = run("boot", second, *QUICK)
    assert again.returncode == 0, again.stderr
    assert again.stdout == (
        f"board {second} was up already: SC&MP 4.0.0 at 0,0 (not booted again)\n"
    )
    assert [rom_of(board).stats.datagrams for board in boards] == [32, 32]


def test_boot_powers_a_board_on_through_its_bmp(frame: Frame) -> None:
    bmp, boards = frame
    bmp.set_temperature(1, 95.0)  # shut down: powered off
    bmp.set_temperature(1, 40.0)
    args = ("--passes", "1", "--power-settle", "0.2", *QUICK)
    result = run("boot", where(boards[1]), "--bmp", f"{where(bmp)}/1", *args)
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(
        rf"board {where(boards[1])} booted in \d+\.\d s \(2 passes, powered on "
        rf"through its BMP\): SC&MP 4\.0\.0 at 0,0\n",
        result.stdout,
    ), result.stdout
    assert bmp.powered(1)


def test_boot_of_a_board_that_never_comes_up_names_the_stage() -> None:
    with cold_board(66, faults=FaultPlan(drop=1.0)) as board:
        result = run("boot", where(board), "--deadline", "1.5", *QUICK)
    assert result.returncode == 1 and result.stdout == ""
    assert re.fullmatch(
        rf"spinnactors boot: error: board {where(board)}: no answer to boot "
        rf"within the deadline of 1\.5 s: SC&MP did not come up after \d pass(es)? "
        rf"of the image \(stage: boot, 1\.\d s\)\n",
        result.stderr,
    ), result.stderr


def test_boot_of_a_bmp_says_it_is_one(frame: Frame) -> None:
    bmp, _ = frame
    result = run("boot", where(bmp), *QUICK)
    assert result.returncode == 1
    assert result.stderr == (
        f"spinnactors boot: error: board {where(bmp)}: the host is a BMP, not a "
        f"board: it answers version as BC&MP/Spin5-BMP 2.1.2; give the board's own "
        f"address, and this one as its BMP (stage: probe, 0.0 s)\n"
    )


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (
            ("127.0.0.5", "127.0.0.6", "--bmp", "127.0.0.4/3"),
            2,
            "--bmp names 1 board for 2 hosts: one per host, in order (e.g. "
            "127.0.0.4/0-1) (see: spinnactors boot --help)",
        ),
        (
            ("127.0.0.5", "--bmp", "127.0.0.4/24"),
            2,
            "argument --bmp: '127.0.0.4/24': board=24: must be in 0..23 (see: "
            "spinnactors boot --help)",
        ),
        (
            ("127.0.0.5", "--deadline", "0"),
            2,
            "argument --deadline: 0 is too small: it must be >= 0.001 (see: "
            "spinnactors boot --help)",
        ),
        (
            ("127.0.0.5", "--image", "/nonexistent/scamp.boot"),
            1,
            "image='/nonexistent/scamp.boot': no such file",
        ),
    ],
)
def test_boot_refuses_a_bad_command_line_or_image(
    args: tuple[str, ...], status: int, message: str
) -> None:
    result = run("boot", *args)
    assert result.returncode == status
    assert result.stderr == f"spinnactors boot: error: {message}\n"


def test_boot_refuses_an_image_too_big_before_sending_anything(tmp_path: Any) -> None:
    image = tmp_path / "big.boot"
    image.write_bytes(bytes(32 * 1024 + 4))
    with cold_board(68) as board:
        result = run("boot", where(board), "--image", str(image))
        assert rom_of(board).stats.datagrams == 0 and board.stats.received == 0
    assert result.returncode == 1
    assert result.stderr == (
        f"spinnactors boot: error: image='{image}': is 32772 bytes; a boot image "
        f"is at most 32768 bytes (32 blocks of 1024)\n"
    )


# -- power ---------------------------------------------------------------------------


def test_power_off_and_on_through_the_bmp(frame: Frame) -> None:
    bmp, boards = frame
    off = run("power", "off", "--bmp", where(bmp), "--boards", "1")
    assert off.returncode == 0, off.stderr
    assert re.fullmatch(
        rf"powered off board 1 through BMP {where(bmp)} in \d+\.\d s\n", off.stdout
    )
    assert not bmp.powered(1) and bmp.powered(0)
    on = run("power", "on", "--bmp", where(bmp))  # every board of the frame
    assert on.returncode == 0, on.stderr
    assert re.fullmatch(
        rf"powered on boards 0-1 through BMP {where(bmp)} in \d+\.\d s\n", on.stdout
    )
    assert bmp.powered(1) and bmp.stats.power_ons == 2
    assert rom_of(boards[1]).stats.power_ons == 2  # back in its ROM


def test_power_of_every_board_asks_the_bmp_which_once(frame: Frame) -> None:
    """Without --boards, the frame's boards are asked once: set_power
    checks what was learnt rather than asking again (two requests in all,
    each answered; three before)."""
    bmp, _ = frame
    result = run("power", "off", "--bmp", where(bmp))
    assert result.returncode == 0, result.stderr
    assert bmp.stats.power_offs == 2
    assert (bmp.stats.received, bmp.stats.replies) == (2, 2)


def test_power_of_boards_the_frame_lacks_switches_nothing(frame: Frame) -> None:
    bmp, _ = frame
    result = run("power", "off", "--bmp", f"{where(bmp)}/0-3")
    assert result.returncode == 1
    assert result.stderr == (
        f"spinnactors power: error: BMP {where(bmp)} has no board 2-3 in its "
        f"frame (its CAN bus reaches boards 0-1)\n"
    )
    assert bmp.stats.power_offs == 0


def test_power_through_a_silent_bmp_names_it() -> None:
    silent = first_free(70, udp_socket(0))
    try:
        host, port = silent.getsockname()
        result = run("power", "on", "--bmp", f"{host}:{port}", "--boards", "0")
    finally:
        silent.close()
    assert result.returncode == 1
    assert result.stderr == (
        f"spinnactors power: error: BMP {host}:{port} not answering: no reply to "
        f"which boards it has after 3 tries of 0.5 s\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("on",), "the following arguments are required: --bmp"),
        (("up", "--bmp", "127.0.0.4"), "argument action: invalid choice: 'up'"),
        (
            ("on", "--bmp", "127.0.0.4", "--boards", "3-1"),
            "argument --boards: '3-1': 3-1 is empty",
        ),
    ],
)
def test_power_usage_errors(args: tuple[str, ...], message: str) -> None:
    result = run("power", *args)
    assert result.returncode == 2
    assert result.stderr.startswith(f"spinnactors power: error: {message}")
    assert result.stderr.endswith("(see: spinnactors power --help)\n")


# -- sensors -------------------------------------------------------------------------


def test_sensors_are_a_table_per_board(frame: Frame) -> None:
    bmp, _ = frame
    bmp.set_temperature(1, 75.5)
    result = run("sensors", "--bmp", where(bmp))
    assert result.returncode == 0, result.stderr
    lines = [line.rstrip() for line in result.stdout.splitlines()]
    assert lines[0] == f"sensors of BMP {where(bmp)}"
    cells = [
        [cell.strip() for cell in line.strip("│").split("│")]
        for line in lines
        if line.startswith("│")
    ]
    assert cells == [
        ["0", "1.20", "1.20", "1.20", "1.80", "3.30", "12.00", "40.0", "38.0"]
        + ["-", "-", "ok"],
        ["1", "1.20", "1.20", "1.20", "1.80", "3.30", "12.00", "75.5", "38.0"]
        + ["-", "-", "warning (bits 0x100)"],
    ]
    header = next(line for line in lines if line.startswith("┃"))
    assert [cell.strip() for cell in header.strip("┃").split("┃")] == [
        "board",
        "1.2 V a",
        "1.2 V b",
        "1.2 V c",
        "1.8 V",
        "3.3 V",
        "supply V",
        "top °C",
        "bottom °C",
        "external °C",
        "fans rpm",
        "status",
    ]


def test_sensors_of_a_board_powered_off_and_of_one_absent(frame: Frame) -> None:
    bmp, _ = frame
    bmp.set_temperature(0, 95.0)  # shut down
    result = run("sensors", "--bmp", where(bmp), "--boards", "0")
    assert result.returncode == 0, result.stderr
    assert "│ 0 │ 0.00 │ 0.00 │ 0.00 │ 0.00 │ 3.30 │ 12.00 │ 95.0 │" in re.sub(
        r" +", " ", result.stdout
    )
    assert "shut down (bits 0x100)" in result.stdout
    absent = run("sensors", "--bmp", where(bmp), "--boards", "1,5")
    assert absent.returncode == 1 and absent.stdout == ""
    assert absent.stderr == (
        f"spinnactors sensors: error: boards='5': the BMP at {where(bmp)} has no "
        f"such board (its CAN bus reaches boards 0-1)\n"
    )


# -- discover ------------------------------------------------------------------------


def discover_against(
    count: int, start: int, *args: str, booted: bool = False
) -> tuple[Any, list[str]]:
    """Run ``discover`` listening on a free 127.0.0.x while ``count`` cold
    boards say hello to it (and, if ``booted``, a booted board with a ROM
    told to say hello there too); its result and the cold boards'
    addresses. (The address is checked free, then let go for the process
    to bind: if another test takes it meanwhile, the next one is tried.)"""
    for _ in range(5):
        probe = first_free(start, udp_socket(BOOT_PORT))
        here = probe.getsockname()[0]
        probe.close()
        last = int(here.rsplit(".", 1)[1])
        rom = {"hello_to": here, "hello_interval": 0.1}
        boards = cold_boards(last + 1, count, **rom)
        if booted:
            after = int(boards[-1].address[0].rsplit(".", 1)[1]) if boards else last
            boards.append(cold_board(after + 1, booted=True, **rom))
        try:
            result = run("discover", "--listen", here, *args)
        finally:
            for board in boards:
                board.stop()
        if "Address already in use" not in result.stderr:
            return result, [board.address[0] for board in boards[:count]]
        start = last + count + 1
    raise AssertionError("no loopback address stayed free for discover")


def test_discover_lists_each_board_saying_hello_once() -> None:
    result, hosts = discover_against(2, 100, "--timeout", "1")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert sorted(lines[:2]) == sorted(
        f"{host} says hello: a board in its boot ROM (boot it: spinnactors boot {host})"
        for host in hosts
    )
    assert lines[2:] == ["2 boards said hello"]


def test_discover_hearing_no_board_fails_saying_so() -> None:
    result, _ = discover_against(0, 110, "--timeout", "0.3")
    assert result.returncode == 1 and result.stdout == ""
    assert re.fullmatch(
        r"spinnactors discover: error: no board said hello to 127\.0\.0\.\d+:54321 "
        r"within 0\.3 s \(a board in its boot ROM says hello about every 4 s; a "
        r"booted or powered-off one does not\)\n",
        result.stderr,
    ), result.stderr


def test_discover_does_not_list_a_booted_board() -> None:
    result, hosts = discover_against(1, 120, "--timeout", "1", booted=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"{hosts[0]} says hello: a board in its boot ROM (boot it: spinnactors "
        f"boot {hosts[0]})\n1 board said hello\n"
    )


def test_discover_capture_holds_the_hellos(tmp_path: Path) -> None:
    """Each hello heard, from its board to the address listened on (port
    54321), as it came; {host} and {port} are the listening address's."""
    target = str(tmp_path / "{host}-{port}.pcap")
    result, hosts = discover_against(2, 140, "--timeout", "1", "--capture", target)
    assert result.returncode == 0, result.stderr
    (path,) = tmp_path.iterdir()
    here = path.name.removesuffix(f"-{BOOT_PORT}.pcap")
    packets = list(read_packets(path.read_bytes()))
    assert packets and all(p.destination == (here, BOOT_PORT) for p in packets)
    assert {p.source[0] for p in packets} == set(hosts)


def test_discover_on_a_taken_port_is_one_line() -> None:
    taken = first_free(130, udp_socket(BOOT_PORT))
    try:
        here = taken.getsockname()[0]
        result = run("discover", "--listen", here, "--timeout", "0.1")
    finally:
        taken.close()
    assert result.returncode == 1
    assert result.stderr.startswith("spinnactors discover: error: ")
    assert f"{here}:{BOOT_PORT}" in result.stderr and "in use" in result.stderr
    assert result.stderr.count("\n") == 1


# -- --capture -----------------------------------------------------------------------


def passes(line: str) -> int:
    """The passes of the image a ``boot`` line says it sent."""
    found = re.search(r"\((\d+) pass", line)
    assert found is not None, line
    return int(found[1])


def boot_frames(path: Path, host: str) -> list[Packet]:
    """The boot frames (UDP 54321) to ``host`` in capture ``path``."""
    packets = read_packets(path.read_bytes())
    return [packet for packet in packets if packet.destination == (host, BOOT_PORT)]


def asked(path: Path, peer: VirtualBoard | VirtualBMP) -> list[tuple[str, bool]]:
    """The SCP commands capture ``path`` shows sent to ``peer`` (a resent
    copy counted once), each with whether an answer is there too."""
    packets = read_packets(path.read_bytes())
    return [
        (exchange.command, exchange.answer is not None)
        for exchange in exchanges(packets)
        if exchange.destination == peer.address
    ]


def probed_until_up(path: Path, board: VirtualBoard) -> bool:
    """Whether ``path`` shows ``board`` asked its version, silent at first
    (cold), answering at last (booted)."""
    probes = asked(path, board)
    commands = {command for command, _ in probes}
    return commands == {"CMD_VER"} and not probes[0][1] and probes[-1][1]


def test_boot_capture_holds_the_boot_frames_and_the_bmps_exchanges(
    frame: Frame, tmp_path: Path
) -> None:
    """What a boot sent and got: the version probes and their answers, the
    boot frames of each pass (before the power-on and after), and the
    power-on's exchanges with the BMP (its CAN status, then the command)."""
    bmp, boards = frame
    board = boards[1]
    bmp.set_temperature(1, 95.0)  # shut down: powered off
    bmp.set_temperature(1, 40.0)
    path = tmp_path / "boot.pcap"
    args = ("--passes", "1", "--power-settle", "0.2", "--capture", str(path), *QUICK)
    result = run("boot", where(board), "--bmp", f"{where(bmp)}/1", *args)
    assert result.returncode == 0, result.stderr
    assert passes(result.stdout) == 2
    assert len(boot_frames(path, board.address[0])) == 2 * 32
    assert asked(path, bmp) == [("CMD_BMP_INFO", True), ("CMD_BMP_POWER", True)]
    assert probed_until_up(path, board)


@pytest.mark.parametrize("name", ["boot.pcap", "{host}-{port}.pcap"])
def test_boot_capture_of_several_boards_holds_each_boards_frames(
    frame: Frame, tmp_path: Path, name: str
) -> None:
    """One file they share, or one each when the name says {host} and
    {port}: each board's boot frames and probes are there."""
    bmp, boards = frame
    hosts = [where(board) for board in boards]
    target = str(tmp_path / name)
    result = run(
        "boot", *hosts, "--bmp", f"{where(bmp)}/0-1", "--capture", target, *QUICK
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for board, line in zip(boards, lines, strict=True):
        host, port = board.address
        path = Path(target.format(host=host, port=port))
        assert len(boot_frames(path, host)) == 32 * passes(line)
        assert probed_until_up(path, board)
    files = sorted(tmp_path.iterdir())
    assert len(files) == (1 if name == "boot.pcap" else 2), files


def test_power_capture_holds_the_bmps_requests_and_replies(
    frame: Frame, tmp_path: Path
) -> None:
    """The frame's boards asked first (once, with --boards or without:
    whether it has them, or which to switch), then the power command."""
    bmp, _ = frame
    off, on = tmp_path / "off.pcap", tmp_path / "on.pcap"
    result = run(
        "power", "off", "--bmp", where(bmp), "--boards", "1", "--capture", str(off)
    )
    assert result.returncode == 0, result.stderr
    result = run("power", "on", "--bmp", where(bmp), "--capture", str(on))
    assert result.returncode == 0, result.stderr
    info, power = ("CMD_BMP_INFO", True), ("CMD_BMP_POWER", True)  # answered
    assert asked(off, bmp) == [info, power]
    assert asked(on, bmp) == [info, power]
    assert (bmp.stats.power_offs, bmp.stats.power_ons) == (1, 2)  # one board, two


def test_sensors_capture_holds_the_bmps_requests_and_replies(
    frame: Frame, tmp_path: Path
) -> None:
    """Which boards the BMP has (asked once), then each board's sensors:
    each a CMD_BMP_INFO, answered."""
    bmp, _ = frame
    path = tmp_path / "sensors.pcap"
    result = run("sensors", "--bmp", where(bmp), "--capture", str(path))
    assert result.returncode == 0, result.stderr
    assert asked(path, bmp) == [("CMD_BMP_INFO", True)] * 3
    packets = list(read_packets(path.read_bytes()))
    assert all(bmp.address in (p.source, p.destination) for p in packets)


@pytest.mark.parametrize(
    "command", ["boot", "boot several", "power", "sensors", "discover"]
)
def test_a_capture_that_cannot_be_written_is_one_line_and_sends_nothing(
    frame: Frame, tmp_path: Path, command: str
) -> None:
    """The capture is opened before anything is sent: a path that cannot
    be written ends the command there, as it does `version`'s."""
    bmp, boards = frame
    blocker = tmp_path / "file"
    blocker.write_text("")
    target = blocker / "x.pcap"
    given = {
        "boot": (where(boards[0]), *QUICK),
        "boot several": (*map(where, boards), "--bmp", f"{where(bmp)}/0-1", *QUICK),
        "power": ("off", "--bmp", where(bmp)),
        "sensors": ("--bmp", where(bmp)),
        "discover": ("--listen", "127.0.0.1", "--timeout", "0.1"),
    }[command]
    name = command.split()[0]
    result = run(name, *given, "--capture", str(target))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == f"spinnactors {name}: error: {target}: Not a directory\n"
    assert bmp.stats.received == 0
    assert [board.stats.received for board in boards] == [0, 0]
    assert [rom_of(board).stats.datagrams for board in boards] == [0, 0]
