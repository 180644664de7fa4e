"""The ``spinnactors`` command line: its commands, options and help.

Each command is a table (actors/app/options.py): its help, then its
options in the order ``--help`` lists them, the shared ones (the link's,
--capture, --metrics-port) one entry each. What each argument accepts
lives in actors/app/arguments.py; what each command does, in
actors/app/cli.py.
"""

from __future__ import annotations

import argparse
import textwrap
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from actors.app import arguments, cold, packets
from actors.app.options import (
    Command,
    Group,
    add,
    add_command,
    count,
    delay,
    option,
    rate,
    seconds,
)
from actors.app.packets import CAPTURE
from actors.app.watching import METRICS_PORT
from messages.scp.layout import SCP_SCAMP_PORT

#: The defaults of the options common to every command.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = SCP_SCAMP_PORT


def _common(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    """The options every command takes, before or after its name: given
    on the top parser they are defaults, after the command they win."""
    unset: Any = None if top else argparse.SUPPRESS
    add(
        parser,
        (
            option(
                "--host",
                type=arguments.host,
                default=unset,
                help=f"the board's address (default: {DEFAULT_HOST})",
            ),
            option(
                "--port",
                type=arguments.port,
                default=unset,
                help=f"the board's UDP port (default: {DEFAULT_PORT})",
            ),
            option(
                "--log-format",
                choices=("console", "json"),
                default="console" if top else argparse.SUPPRESS,
                help="log lines for people, or one JSON object per line and no "
                "bars (default: console)",
            ),
            option(
                "-v",
                "--verbose",
                action="count",
                default=0 if top else argparse.SUPPRESS,
                help="-v: what happens (info), -vv: our debug events, "
                "-vvv: third-party libraries' too (default: warnings only)",
            ),
        ),
    )


#: How a client talks to the board: window, patience and retries.
LINK = (
    count("--window", 65535, 8, "requests on the wire at once (a board holds 8)"),
    seconds("--timeout", 1.0, "longest wait for one reply, in seconds"),
    option(
        "--retries", type=arguments.retries, default=10, help="resends of one request"
    ),
)

#: A read's or write's place (X Y ADDRESS, -p) and its link, as they come.
_TRANSFER = (
    *LINK,
    option("x", type=arguments.chip_x, help="the chip's x (decimal or 0x-hex)"),
    option("y", type=arguments.chip_y, help="the chip's y (decimal or 0x-hex)"),
    option(
        "address", type=arguments.address, help="where to start (decimal or 0x-hex)"
    ),
    option(
        "-p", "--core", dest="p", type=arguments.core, default=0, help="the core to ask"
    ),
    CAPTURE,
)

#: Cold boards, several boards, and the BMP that powers them.
_COLD = Group(
    "cold boards and their BMP",
    "Boards with a boot ROM listen on UDP 54321 of their own address, so "
    "several run side by side on 127.0.0.x. With --bmp, board N is at the "
    "BMP's address + 1 + N (or --host + N), each on --port.",
    (
        option(
            "--unbooted",
            action="store_true",
            help="start in the boot ROM: silent on --port until booted over "
            "port 54321, saying hello meanwhile",
        ),
        count("--boards", 24, 1, "boards to serve, on consecutive addresses"),
        option(
            "--bmp",
            metavar="HOST[:PORT]",
            type=arguments.host_port,
            default=None,
            help="serve a BMP there that powers the boards, resets them and "
            "reads their sensors (port: --port's unless given; default: no BMP)",
        ),
        option(
            "--hello",
            metavar="HOST",
            type=arguments.host,
            default="127.0.0.1",
            help="where boards in their boot ROM say hello (port 54321)",
        ),
        seconds("--hello-interval", 4.1, "seconds between hellos"),
        delay(
            "--min-frame-gap",
            10,
            0.0,
            "boot frames closer than this (seconds) are lost, as a busy "
            "ROM loses them (default: none are)",
        ),
        delay(
            "--netinit",
            60,
            0.1,
            "seconds SC&MP says chip (255, 255) after a boot (a real "
            "board's: a second or two)",
        ),
        delay(
            "--power-on-delay",
            60,
            0.05,
            "seconds the BMP takes to answer a power-on (a real one's: "
            "seconds, loading the FPGAs)",
        ),
    ),
)

BOARD = Command(
    "board",
    "serve a virtual board",
    "Serve a virtual SpiNNaker board (its monitor's SCP: memory, version, "
    "IP tags...) on UDP until interrupted (Ctrl-C or SIGTERM). It prints "
    "'listening on HOST:PORT' first and a one-line summary when it stops. "
    "Port 0 picks a free port.",
    (
        "spinnactors board",
        "spinnactors board --port 0 --drop 0.01 --dup 0.01 --seed 7",
        "spinnactors board --realistic",
        f"spinnactors board --spinn5 --host 127.0.0.2 --port {SCP_SCAMP_PORT}",
        "spinnactors board --host 127.0.0.11 --unbooted",
        "spinnactors board --bmp 127.0.0.10 --boards 3 --unbooted",
    ),
    (
        option("--width", type=arguments.side, help="chips across (default: 8)"),
        option("--height", type=arguments.side, help="chips down (default: 8)"),
        option(
            "--spinn5",
            action="store_true",
            help="serve a booted 48-chip SpiNN-5 board, as SpiNNMan's Transceiver "
            f"expects one (it talks to port {SCP_SCAMP_PORT} only); not with "
            "--width/--height",
        ),
        rate("--drop", "chance to drop each datagram, each way"),
        rate("--dup", "chance to duplicate each datagram, each way"),
        rate("--reorder", "chance to hold a datagram back behind the next"),
        rate("--corrupt", "chance to corrupt each datagram, each way"),
        rate("--busy", "chance to answer a request with a busy code"),
        option(
            "--delay-ms",
            type=arguments.millis,
            default=0.0,
            help="extra latency in milliseconds, uniform in 0..this",
        ),
        option(
            "--seed",
            type=int,
            default=None,
            help="seed of the faults' random choices, to replay a run (default: "
            "a new one each run)",
        ),
        option(
            "--service-us",
            type=arguments.ranged(float, 0, 1e6, "a number"),
            default=0.0,
            help="time to serve one request, in microseconds",
        ),
        option(
            "--realistic",
            action="store_true",
            help="serve at a real board's pace (a few MB/s)",
        ),
        CAPTURE,
        _COLD,
        METRICS_PORT,
    ),
)

VERSION = Command(
    "version",
    "ask a core who it is",
    "Ask core X,Y,P of a board for its software version (SC&MP on the "
    "monitor core 0,0,0, SARK on the others).",
    ("spinnactors version", "spinnactors version 1 0 3 --host 192.168.240.253"),
    (
        *LINK,
        option("x", type=arguments.chip_x, nargs="?", default=0, help="the chip's x"),
        option("y", type=arguments.chip_y, nargs="?", default=0, help="the chip's y"),
        option("p", type=arguments.core, nargs="?", default=0, help="the core"),
        CAPTURE,
    ),
)

READ = Command(
    "read",
    "read memory of a chip (to a file or a pipe)",
    "Read LENGTH bytes of chip X,Y's memory from ADDRESS, pipelined in "
    "256-byte SCP requests, to -o FILE or to stdout when it is a pipe "
    "(to write binary to a terminal, say -o -).",
    (
        "spinnactors read 0 0 0x60000000 1024 -o data.bin",
        "spinnactors read 0 0 0x60000000 0x100000 | xxd | head",
    ),
    (
        *_TRANSFER,
        option(
            "length", type=arguments.length, help="how many bytes (decimal or 0x-hex)"
        ),
        option(
            "-o",
            "--output",
            metavar="FILE",
            default=None,
            help="write the bytes to FILE; - for stdout even on a terminal "
            "(default: stdout, if it is not a terminal)",
        ),
        METRICS_PORT,
    ),
)

WRITE = Command(
    "write",
    "write memory of a chip (from a file or stdin)",
    "Write the bytes of -i FILE (or stdin) to chip X,Y's memory from "
    "ADDRESS, pipelined in 256-byte SCP requests.",
    (
        "spinnactors write 0 0 0x60000000 -i data.bin",
        "head -c 4096 /dev/urandom | spinnactors write 1 0 0x60000000",
    ),
    (
        *_TRANSFER,
        option(
            "-i",
            "--input",
            metavar="FILE",
            default=None,
            help="read the bytes from FILE (default: stdin)",
        ),
        METRICS_PORT,
    ),
)

DEMO = Command(
    "demo",
    "a supervised transfer through a lossy board, explained",
    "Start a virtual board in this process that drops and duplicates 1% "
    "of the datagrams each way; write a pattern over 4 chips, kill the "
    "connection actor half-way on purpose, read everything back and "
    "verify every byte; then explain the figures. With --host or --port, "
    "talk to that board instead.",
    ("spinnactors demo", "spinnactors demo --kib 4096"),
    (
        option(
            "--kib",
            type=arguments.ranged(int, 1, 1 << 20, "KiB"),
            default=1024,
            help="data per chip, in KiB",
        ),
        CAPTURE,
        METRICS_PORT,
    ),
)

BENCH = Command(
    "bench",
    "measure read throughput from a board",
    "Read --mib MiB --rounds times from a board and report MB/s of each "
    "round, the median, resends and round trips. With neither --host nor "
    "--port, it starts a virtual board in a process of its own.",
    (
        "spinnactors bench",
        "spinnactors bench --host 192.168.240.253 --mib 64 --window 8",
    ),
    (
        *LINK,
        option(
            "--mib",
            type=arguments.ranged(float, 0.001, 4096, "MiB"),
            default=16.0,
            help="MiB read per round",
        ),
        count("--rounds", 1000, 5, "rounds"),
        option(
            "--chip",
            type=arguments.chip,
            nargs=2,
            default=(0, 0),
            metavar=("X", "Y"),
            help="the chip to read from",
        ),
        option(
            "--address",
            type=arguments.address,
            default=0x6000_0000,
            help="where to read from (default: 0x60000000, user SDRAM)",
        ),
        option(
            "--plot",
            metavar="FILE.png",
            default=None,
            help="draw MB/s per round and the round-trip distribution into FILE "
            "(needs matplotlib: the bench extra; default: no picture)",
        ),
        METRICS_PORT,
        CAPTURE,
    ),
)

#: The commands in the order ``--help`` lists them.
COMMANDS = (BOARD, VERSION, READ, WRITE, DEMO, BENCH, *cold.COMMANDS, *packets.COMMANDS)


def _package_version() -> str:
    try:
        return version("spinnactors")
    except PackageNotFoundError:  # run from a source tree, not installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = arguments.Parser(
        prog="spinnactors",
        description=textwrap.fill(
            "Drive SpiNNaker boards over SCP/UDP, or serve a virtual one. "
            "Options common to every command (--host, --port, --log-format, "
            "-v) may come before or after the command's name.",
            78,
        ),
        epilog="examples:\n  spinnactors demo\n"
        f"  spinnactors board --port {SCP_SCAMP_PORT}"
        "\n  spinnactors version --host 192.168.240.253\n"
        "  spinnactors read 0 0 0x60000000 1024 -o data.bin",
    )
    parser.add_argument(
        "--version", action="version", version=f"spinnactors {_package_version()}"
    )
    _common(parser, top=True)
    commands = parser.add_subparsers(
        dest="command", required=True, parser_class=arguments.Parser, metavar="COMMAND"
    )
    for command in COMMANDS:
        add_command(commands, command, _common)
    return parser
