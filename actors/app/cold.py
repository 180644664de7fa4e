"""The command line's cold boards: `boot`, `power`, `sensors`, `discover`.

Kept apart from cli.py, as the packet tools are: each command's options
(a table parser.py adds, actors/app/options.py) and what it does, over
actors.boot (boots and BMPs) and transport's IPAddressesConnection
(hellos).
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Hashable, Iterable
from dataclasses import replace
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

from actors.app import arguments
from actors.app.options import Command, count, delay, option, seconds
from actors.app.packets import CAPTURE, capture_for, capture_of
from actors.app.watching import METRICS_PORT
from actors.board.client import Client
from actors.boot import (
    DEFAULT_DEADLINE,
    BoardBMP,
    BootOptions,
    BootReport,
    boards_text,
    frame_boards,
    parse_bmp,
    parse_boards,
    read_sensors,
    set_power,
    watch_bmp,
)
from actors.boot.options import BMPGiven
from actors.placement.machine import Machine
from messages.bmp import ADCInfo
from messages.boot import BOOT_PORT, DEFAULT_FRAME_GAP
from messages.errors import InvalidArgumentError, SpinnactorsError
from messages.scp.layout import SCP_SCAMP_PORT
from transport import IPAddressesConnection

#: How long `discover` listens unless told: a board in its boot ROM says
#: hello about every 4.1 s.
DISCOVER_TIMEOUT = 5.0

Target = tuple[str, int | None, tuple[int, ...] | None]


class NoHello(SpinnactorsError):
    """`discover` heard no board."""


def bmp_target(text: str) -> Target:
    """--bmp HOST[:PORT][/BOARDS]."""
    try:
        host, port, boards = parse_bmp(text, port=-1)
    except InvalidArgumentError as error:
        raise argparse.ArgumentTypeError(f"{text!r}: {_why(error)}") from None
    arguments.host(host)
    return host, None if port == -1 else port, boards


def board_numbers(text: str) -> tuple[int, ...]:
    """--boards 0-23, 0,2,5 or 3."""
    try:
        return parse_boards(text)
    except InvalidArgumentError as error:
        raise argparse.ArgumentTypeError(f"{text!r}: {_why(error)}") from None


def _why(error: InvalidArgumentError) -> str:
    """What is wrong with a part of an argument (the reason alone when the
    error names the whole argument)."""
    return error.reason if error.name in ("boards", "bmp") else str(error)


#: --bmp and --boards of a command that asks a frame's BMP.
_BMP_OPTIONS = (
    option(
        "--bmp",
        metavar="HOST[:PORT]",
        type=bmp_target,
        required=True,
        help=f"the frame's BMP (port: --port's, or {SCP_SCAMP_PORT})",
    ),
    option(
        "--boards",
        type=board_numbers,
        default=None,
        help="the boards: 3, 0-23 or 0,2,5 (default: every board on the "
        "frame's CAN bus)",
    ),
)

BOOT = Command(
    "boot",
    "boot boards that are not booted (never one that answers)",
    "Bring boards up, as SpiNNMan's ensure_board_is_ready does, within "
    "--deadline: ask each its version; one that answers is not booted "
    "again. A silent one is sent the SC&MP image (--image, or the one an "
    "installed SpiNNMan ships) on UDP 54321, again if it stays silent, "
    "and, with --bmp, powered on and booted once more. Several HOSTs "
    "boot at once; --bmp then names a board of the frame for each.",
    (
        "spinnactors boot 192.168.240.253",
        "spinnactors boot 192.168.240.253 --bmp 192.168.240.0/0",
        "spinnactors boot 127.0.0.11 127.0.0.12 --bmp 127.0.0.10/0-1",
    ),
    (
        option(
            "hosts",
            metavar="HOST[:PORT]",
            nargs="*",
            type=arguments.host_port,
            help="a board's address and SCP port (default: --host and --port)",
        ),
        option(
            "--image",
            metavar="FILE",
            default=None,
            help="the SC&MP boot image (default: the scamp.boot of an installed "
            "SpiNNMan)",
        ),
        option(
            "--bmp",
            metavar="HOST[:PORT][/BOARDS]",
            type=bmp_target,
            default=None,
            help=f"the boards' BMP (port {SCP_SCAMP_PORT} unless given) and their "
            "numbers in its frame, one per HOST (default: board 0; no BMP)",
        ),
        seconds("--deadline", DEFAULT_DEADLINE, "seconds for the whole of it"),
        seconds(
            "--probe-timeout",
            2.0,
            "seconds the first version may go unanswered before a board is "
            "taken for unbooted",
        ),
        seconds(
            "--pass-timeout",
            3.0,
            "seconds of silence after sending the image before sending it again",
        ),
        count(
            "--passes",
            100,
            3,
            "times the image is sent before giving up (or powering on)",
        ),
        delay("--gap", 1, DEFAULT_FRAME_GAP, "seconds between boot frames"),
        delay(
            "--power-settle",
            600,
            5.0,
            "seconds to wait after a power-on before booting",
        ),
        CAPTURE,
        METRICS_PORT,
    ),
)

POWER = Command(
    "power",
    "power boards on or off through their BMP",
    "Power boards of a frame on or off through its BMP (SCP on --bmp's "
    "address, port --port's unless given), in one command. A board "
    "powered on is back in its boot ROM: boot it next. Default: every "
    "board the BMP reaches on its frame's CAN bus.",
    (
        "spinnactors power on --bmp 192.168.240.0",
        "spinnactors power off --bmp 192.168.240.0 --boards 0-23",
    ),
    (
        option("action", choices=("on", "off"), help="on or off"),
        *_BMP_OPTIONS,
        seconds(
            "--timeout",
            None,
            "longest wait for the BMP's reply (default: 10 s for on, the "
            "FPGAs loading; 1 s for off)",
        ),
        CAPTURE,
    ),
)

SENSORS = Command(
    "sensors",
    "read boards' voltages, temperatures and fans",
    "Read the sensors of boards of a frame through its BMP: each rail's "
    "voltage, the temperatures, the fans, and the BMP's warning and "
    "shutdown bits, as a table. Default: every board on its CAN bus.",
    (
        "spinnactors sensors --bmp 192.168.240.0",
        "spinnactors sensors --bmp 192.168.240.0 --boards 0-2",
    ),
    (*_BMP_OPTIONS, CAPTURE),
)

DISCOVER = Command(
    "discover",
    "list the boards saying hello (unbooted)",
    f"Listen on UDP port {BOOT_PORT} for the hellos a board in its boot "
    "ROM sends about every 4 s, for --timeout seconds, and list each "
    "board heard (boot it next). Exit status 1 if none was.",
    (
        "spinnactors discover",
        "spinnactors discover --timeout 10 --listen 192.168.240.254",
    ),
    (
        seconds("--timeout", DISCOVER_TIMEOUT, "seconds to listen"),
        option(
            "--listen",
            metavar="HOST",
            type=arguments.host,
            default="0.0.0.0",
            help=f"the local address to listen on (port {BOOT_PORT})",
        ),
        CAPTURE,
    ),
)

#: `boot`, `power`, `sensors` and `discover`, in the order --help lists them.
COMMANDS = (BOOT, POWER, SENSORS, DISCOVER)


# -- running them ------------------------------------------------------------------


def _bmp_address(args: argparse.Namespace) -> tuple[str, int]:
    host, port, _ = args.bmp
    if port is None:
        port = SCP_SCAMP_PORT if args.port is None else int(args.port)
    return host, port


def _named(args: argparse.Namespace) -> tuple[int, ...] | None:
    """--boards, or /BOARDS of --bmp (None: every board the BMP reaches)."""
    given = args.bmp[2]
    if given is not None and args.boards is not None:
        raise arguments.UsageError(
            "name the boards once: --bmp HOST/BOARDS or --boards"
        )
    boards: tuple[int, ...] | None = args.boards if given is None else given
    return boards


def _boards_named(boards: tuple[int, ...]) -> str:
    return f"board{'s' * (len(boards) > 1)} {boards_text(boards)}"


def run_power(args: argparse.Namespace, out: TextIO) -> int:
    address, named = _bmp_address(args), _named(args)
    with capture_of(args.capture, *address) as capture:
        # Without --boards the frame's are asked once: set_power checks
        # what was learnt rather than asking again.
        there = None if named is not None else frame_boards(address, capture=capture)
        boards = named if named is not None else there or ()
        started = time.monotonic()
        on = args.action == "on"
        set_power(
            address, boards, on, timeout=args.timeout, capture=capture, there=there
        )
    print(
        f"powered {args.action} {_boards_named(boards)} through BMP "
        f"{address[0]}:{address[1]} in {time.monotonic() - started:.1f} s",
        file=out,
    )
    return 0


def run_sensors(args: argparse.Namespace, out: TextIO) -> int:
    address, named = _bmp_address(args), _named(args)
    table = sensor_table(f"sensors of BMP {address[0]}:{address[1]}")
    with capture_of(args.capture, *address) as capture:
        there = frame_boards(address, capture=capture)
        boards = named if named is not None else there
        absent = [board for board in boards if board not in there]
        if absent:
            raise InvalidArgumentError(
                "boards",
                boards_text(absent),
                f"the BMP at {address[0]}:{address[1]} has no such board (its "
                f"CAN bus reaches boards {boards_text(there) or 'none'})",
            )
        for board in boards:
            info = read_sensors(address, board, capture=capture)
            table.add_row(*sensor_row(board, info))
    width = None if out.isatty() else 160
    Console(file=out, highlight=False, width=width).print(table)
    return 0


def run_discover(args: argparse.Namespace, out: TextIO) -> int:
    seen: list[str] = []
    with (
        capture_of(args.capture, args.listen, BOOT_PORT) as capture,
        IPAddressesConnection(args.listen, capture=capture) as listener,
    ):
        deadline = time.monotonic() + args.timeout
        while (left := deadline - time.monotonic()) > 0:
            host = listener.receive_ip_address(left)
            if host is not None and host not in seen:
                seen.append(host)
                print(
                    f"{host} says hello: a board in its boot ROM (boot it: "
                    f"spinnactors boot {host})",
                    file=out,
                    flush=True,
                )
    if not seen:
        raise NoHello(
            f"no board said hello to {args.listen}:{BOOT_PORT} within "
            f"{args.timeout:g} s (a board in its boot ROM says hello about "
            f"every 4 s; a booted or powered-off one does not)"
        )
    print(f"{len(seen)} board{'s' * (len(seen) > 1)} said hello", file=out)
    return 0


def _boot_options(args: argparse.Namespace, hosts: list[Any]) -> BootOptions:
    bmps: dict[Hashable, BMPGiven] = {}
    if args.bmp is not None:
        host, port, numbers = args.bmp
        numbers = numbers if numbers is not None else tuple(range(len(hosts)))
        if len(numbers) != len(hosts):
            raise arguments.UsageError(
                f"--bmp names {len(numbers)} board{'s' * (len(numbers) > 1)} for "
                f"{len(hosts)} host{'s' * (len(hosts) > 1)}: one per host, in order "
                f"(e.g. {host}/0-{len(hosts) - 1})"
            )
        bmp_port = SCP_SCAMP_PORT if port is None else port
        bmps = {n: BoardBMP(host, board, bmp_port) for n, board in enumerate(numbers)}
    return BootOptions(
        image=args.image,
        deadline=args.deadline,
        bmp=bmps or None,
        probe_timeout=args.probe_timeout,
        pass_timeout=args.pass_timeout,
        passes=args.passes,
        gap=args.gap,
        power_settle=args.power_settle,
    )


def run_boot(args: argparse.Namespace, default_host: str, out: TextIO) -> int:
    port = SCP_SCAMP_PORT if args.port is None else int(args.port)
    hosts = list(args.hosts) or [(default_host, None)]
    boards = [(host, port if given is None else given) for host, given in hosts]
    options = _boot_options(args, hosts)
    options = options.with_image(options.load_image())  # checked first
    reports: list[BootReport]
    with contextlib.ExitStack() as stack:
        # A file they share is opened here, else by each client as it starts:
        # either way a bad path fails before anything is sent.
        capture = stack.enter_context(capture_for(args.capture, len(boards)))
        if getattr(args, "metrics_port", None) is not None:
            bmps = options.bmp.values() if isinstance(options.bmp, dict) else ()
            for host, bmp_port in {bmp.address for bmp in bmps if bmp}:
                stack.enter_context(watch_bmp(host, bmp_port))
        if len(boards) == 1:
            with Client(*boards[0], capture=capture) as client:
                reports = [client.boot(replace(options, bmp=options.bmp_of(0)))]
        else:
            with Machine(boards, workers=0, capture=capture) as machine:
                reports = list(machine.boot(options).values())
    for report in reports:
        print(report, file=out)
    return 0


# -- the sensors' table ------------------------------------------------------------


def sensor_table(title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("board", justify="right")
    for rail in ("1.2 V a", "1.2 V b", "1.2 V c", "1.8 V", "3.3 V", "supply V"):
        table.add_column(rail, justify="right")
    for heading in ("top °C", "bottom °C", "external °C", "fans rpm", "status"):
        table.add_column(heading, justify="left" if heading == "status" else "right")
    return table


def _numbers(values: Iterable[float | None]) -> str:
    present = [
        f"{value:.1f}" if value % 1 else f"{value:.0f}"
        for value in values
        if value is not None
    ]
    return ", ".join(present) or "-"


def sensor_row(board: int, info: ADCInfo) -> list[str]:
    """One board's readings as the table shows them."""
    rails = [
        info.voltage_1_2a,
        info.voltage_1_2b,
        info.voltage_1_2c,
        info.voltage_1_8,
        info.voltage_3_3,
        info.voltage_supply,
    ]
    top, bottom = info.temperatures_internal[:2]
    if info.shutdown:
        status = f"shut down (bits {info.shutdown:#x})"
    elif not any(rails[:4]):
        status = "off (its rails read 0 V)"
    elif info.warning:
        status = f"warning (bits {info.warning:#x})"
    else:
        status = "ok"
    return [
        str(board),
        *(f"{volts:.2f}" for volts in rails),
        "-" if top is None else f"{top:.1f}",
        "-" if bottom is None else f"{bottom:.1f}",
        _numbers(info.temperatures_external),
        _numbers(info.fans),
        status,
    ]
