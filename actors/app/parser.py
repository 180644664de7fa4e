"""The ``spinnactors`` command line: its commands, options and help.

What each argument accepts lives in actors/app/arguments.py; what each
command does, in actors/app/cli.py.
"""

from __future__ import annotations

import argparse
import textwrap
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from actors.app import arguments, cold, packets
from actors.app.watching import WATCHED, add_metrics_port
from messages.scp.layout import SCP_SCAMP_PORT

#: The defaults of the options common to every command.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = SCP_SCAMP_PORT


def _common(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    """The options every command takes, before or after its name: given
    on the top parser they are defaults, after the command they win."""
    unset: Any = None if top else argparse.SUPPRESS
    parser.add_argument(
        "--host",
        type=arguments.host,
        default=unset,
        help=f"the board's address (default: {DEFAULT_HOST})",
    )
    parser.add_argument(
        "--port",
        type=arguments.port,
        default=unset,
        help=f"the board's UDP port (default: {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--log-format",
        choices=("console", "json"),
        default="console" if top else argparse.SUPPRESS,
        help="log lines for people, or one JSON object per line and no "
        "bars (default: console)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0 if top else argparse.SUPPRESS,
        help="-v: what happens (info), -vv: our debug events, "
        "-vvv: third-party libraries' too (default: warnings only)",
    )


def _link(parser: argparse.ArgumentParser) -> None:
    """How a client talks to the board: window, patience and retries."""
    parser.add_argument(
        "--window",
        type=arguments.ranged(int, 1, 65535, "a count"),
        default=8,
        help="requests on the wire at once (a board holds 8)",
    )
    parser.add_argument(
        "--timeout",
        type=arguments.seconds,
        default=1.0,
        help="longest wait for one reply, in seconds",
    )
    parser.add_argument(
        "--retries",
        type=arguments.retries,
        default=10,
        help="resends of one request",
    )


def _command(
    commands: Any, name: str, summary: str, description: str, *examples: str
) -> argparse.ArgumentParser:
    """A subcommand with its one-line summary, description and examples."""
    epilog = "examples:\n" + "\n".join(f"  {example}" for example in examples)
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=summary, description=textwrap.fill(description, 78), epilog=epilog
    )
    _common(parser)
    return parser


def _transfer(
    commands: Any, name: str, summary: str, description: str, *examples: str
) -> argparse.ArgumentParser:
    """A read or write command: X Y ADDRESS, -p, and the link options."""
    parser = _command(commands, name, summary, description, *examples)
    _link(parser)
    parser.add_argument(
        "x", type=arguments.chip_x, help="the chip's x (decimal or 0x-hex)"
    )
    parser.add_argument(
        "y", type=arguments.chip_y, help="the chip's y (decimal or 0x-hex)"
    )
    parser.add_argument(
        "address", type=arguments.address, help="where to start (decimal or 0x-hex)"
    )
    parser.add_argument(
        "-p", "--core", dest="p", type=arguments.core, default=0, help="the core to ask"
    )
    packets.add_capture(parser)
    return parser


def _cold(board: argparse.ArgumentParser) -> None:
    """Cold boards, several boards, and the BMP that powers them."""
    cold = board.add_argument_group(
        "cold boards and their BMP",
        "Boards with a boot ROM listen on UDP 54321 of their own address, so "
        "several run side by side on 127.0.0.x. With --bmp, board N is at the "
        "BMP's address + 1 + N (or --host + N), each on --port.",
    )
    cold.add_argument(
        "--unbooted",
        action="store_true",
        help="start in the boot ROM: silent on --port until booted over "
        "port 54321, saying hello meanwhile",
    )
    cold.add_argument(
        "--boards",
        type=arguments.ranged(int, 1, 24, "a count"),
        default=1,
        help="boards to serve, on consecutive addresses",
    )
    cold.add_argument(
        "--bmp",
        metavar="HOST[:PORT]",
        type=arguments.host_port,
        default=None,
        help="serve a BMP there that powers the boards, resets them and "
        "reads their sensors (port: --port's unless given; default: no BMP)",
    )
    cold.add_argument(
        "--hello",
        metavar="HOST",
        type=arguments.host,
        default="127.0.0.1",
        help="where boards in their boot ROM say hello (port 54321)",
    )
    cold.add_argument(
        "--hello-interval",
        type=arguments.seconds,
        default=4.1,
        help="seconds between hellos",
    )
    cold.add_argument(
        "--min-frame-gap",
        type=arguments.ranged(float, 0, 10, "seconds"),
        default=0.0,
        help="boot frames closer than this (seconds) are lost, as a busy "
        "ROM loses them (default: none are)",
    )
    cold.add_argument(
        "--netinit",
        type=arguments.ranged(float, 0, 60, "seconds"),
        default=0.1,
        help="seconds SC&MP says chip (255, 255) after a boot (a real "
        "board's: a second or two)",
    )
    cold.add_argument(
        "--power-on-delay",
        type=arguments.ranged(float, 0, 60, "seconds"),
        default=0.05,
        help="seconds the BMP takes to answer a power-on (a real one's: "
        "seconds, loading the FPGAs)",
    )


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
        "--version",
        action="version",
        version=f"spinnactors {_package_version()}",
    )
    _common(parser, top=True)
    commands = parser.add_subparsers(
        dest="command", required=True, parser_class=arguments.Parser, metavar="COMMAND"
    )

    board = _command(
        commands,
        "board",
        "serve a virtual board",
        "Serve a virtual SpiNNaker board (its monitor's SCP: memory, version, "
        "IP tags...) on UDP until interrupted (Ctrl-C or SIGTERM). It prints "
        "'listening on HOST:PORT' first and a one-line summary when it stops. "
        "Port 0 picks a free port.",
        "spinnactors board",
        "spinnactors board --port 0 --drop 0.01 --dup 0.01 --seed 7",
        "spinnactors board --realistic",
        f"spinnactors board --spinn5 --host 127.0.0.2 --port {SCP_SCAMP_PORT}",
        "spinnactors board --host 127.0.0.11 --unbooted",
        "spinnactors board --bmp 127.0.0.10 --boards 3 --unbooted",
    )
    board.add_argument("--width", type=arguments.side, help="chips across (default: 8)")
    board.add_argument("--height", type=arguments.side, help="chips down (default: 8)")
    board.add_argument(
        "--spinn5",
        action="store_true",
        help="serve a booted 48-chip SpiNN-5 board, as SpiNNMan's Transceiver "
        f"expects one (it talks to port {SCP_SCAMP_PORT} only); not with "
        "--width/--height",
    )
    board.add_argument(
        "--drop",
        type=arguments.rate,
        default=0.0,
        help="chance to drop each datagram, each way",
    )
    board.add_argument(
        "--dup",
        type=arguments.rate,
        default=0.0,
        help="chance to duplicate each datagram, each way",
    )
    board.add_argument(
        "--reorder",
        type=arguments.rate,
        default=0.0,
        help="chance to hold a datagram back behind the next",
    )
    board.add_argument(
        "--corrupt",
        type=arguments.rate,
        default=0.0,
        help="chance to corrupt each datagram, each way",
    )
    board.add_argument(
        "--busy",
        type=arguments.rate,
        default=0.0,
        help="chance to answer a request with a busy code",
    )
    board.add_argument(
        "--delay-ms",
        type=arguments.millis,
        default=0.0,
        help="extra latency in milliseconds, uniform in 0..this",
    )
    board.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of the faults' random choices, to replay a run (default: "
        "a new one each run)",
    )
    board.add_argument(
        "--service-us",
        type=arguments.ranged(float, 0, 1e6, "a number"),
        default=0.0,
        help="time to serve one request, in microseconds",
    )
    board.add_argument(
        "--realistic",
        action="store_true",
        help="serve at a real board's pace (a few MB/s)",
    )
    packets.add_capture(board)
    _cold(board)

    version_ = _command(
        commands,
        "version",
        "ask a core who it is",
        "Ask core X,Y,P of a board for its software version (SC&MP on the "
        "monitor core 0,0,0, SARK on the others).",
        "spinnactors version",
        "spinnactors version 1 0 3 --host 192.168.240.253",
    )
    _link(version_)
    version_.add_argument(
        "x", type=arguments.chip_x, nargs="?", default=0, help="the chip's x"
    )
    version_.add_argument(
        "y", type=arguments.chip_y, nargs="?", default=0, help="the chip's y"
    )
    version_.add_argument(
        "p", type=arguments.core, nargs="?", default=0, help="the core"
    )
    packets.add_capture(version_)

    read = _transfer(
        commands,
        "read",
        "read memory of a chip (to a file or a pipe)",
        "Read LENGTH bytes of chip X,Y's memory from ADDRESS, pipelined in "
        "256-byte SCP requests, to -o FILE or to stdout when it is a pipe "
        "(to write binary to a terminal, say -o -).",
        "spinnactors read 0 0 0x60000000 1024 -o data.bin",
        "spinnactors read 0 0 0x60000000 0x100000 | xxd | head",
    )
    read.add_argument(
        "length", type=arguments.length, help="how many bytes (decimal or 0x-hex)"
    )
    read.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        default=None,
        help="write the bytes to FILE; - for stdout even on a terminal "
        "(default: stdout, if it is not a terminal)",
    )

    write = _transfer(
        commands,
        "write",
        "write memory of a chip (from a file or stdin)",
        "Write the bytes of -i FILE (or stdin) to chip X,Y's memory from "
        "ADDRESS, pipelined in 256-byte SCP requests.",
        "spinnactors write 0 0 0x60000000 -i data.bin",
        "head -c 4096 /dev/urandom | spinnactors write 1 0 0x60000000",
    )
    write.add_argument(
        "-i",
        "--input",
        metavar="FILE",
        default=None,
        help="read the bytes from FILE (default: stdin)",
    )

    demo = _command(
        commands,
        "demo",
        "a supervised transfer through a lossy board, explained",
        "Start a virtual board in this process that drops and duplicates 1% "
        "of the datagrams each way; write a pattern over 4 chips, kill the "
        "connection actor half-way on purpose, read everything back and "
        "verify every byte; then explain the figures. With --host or --port, "
        "talk to that board instead.",
        "spinnactors demo",
        "spinnactors demo --kib 4096",
    )
    demo.add_argument(
        "--kib",
        type=arguments.ranged(int, 1, 1 << 20, "KiB"),
        default=1024,
        help="data per chip, in KiB",
    )
    packets.add_capture(demo)

    bench = _command(
        commands,
        "bench",
        "measure read throughput from a board",
        "Read --mib MiB --rounds times from a board and report MB/s of each "
        "round, the median, resends and round trips. With neither --host nor "
        "--port, it starts a virtual board in a process of its own.",
        "spinnactors bench",
        "spinnactors bench --host 192.168.240.253 --mib 64 --window 8",
    )
    _link(bench)
    bench.add_argument(
        "--mib",
        type=arguments.ranged(float, 0.001, 4096, "MiB"),
        default=16.0,
        help="MiB read per round",
    )
    bench.add_argument(
        "--rounds",
        type=arguments.ranged(int, 1, 1000, "a count"),
        default=5,
        help="rounds",
    )
    bench.add_argument(
        "--chip",
        type=arguments.chip,
        nargs=2,
        default=(0, 0),
        metavar=("X", "Y"),
        help="the chip to read from",
    )
    bench.add_argument(
        "--address",
        type=arguments.address,
        default=0x6000_0000,
        help="where to read from (default: 0x60000000, user SDRAM)",
    )
    bench.add_argument(
        "--plot",
        metavar="FILE.png",
        default=None,
        help="draw MB/s per round and the round-trip distribution into FILE "
        "(needs matplotlib: the bench extra; default: no picture)",
    )
    cold.add_commands(commands, _command)
    for name in WATCHED:
        add_metrics_port(commands.choices[name], arguments.port)
    packets.add_capture(bench)
    packets.add_commands(commands, _command)
    return parser
