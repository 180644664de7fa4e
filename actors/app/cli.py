"""The ``spinnactors`` command: a board to talk to, and ways to talk to it."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import statistics
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import FrameType
from typing import Any, BinaryIO, NoReturn, TextIO, cast

from rich.console import Console

from actors.app import packets
from actors.app.demo import run_demo
from actors.app.plot import plot_bench
from actors.app.progress import read_with_progress, write_with_progress
from actors.app.terminal import ConsoleLines, make_console
from actors.app.watching import WATCHED, add_metrics_port, serving_metrics
from actors.board.client import Client
from actors.connecting import connect
from actors.logs import configure_logging
from messages.errors import SpinnactorsError
from messages.scp.layout import SCP_SCAMP_PORT
from transport import FaultPlan, VirtualBoard
from transport.board import REALISTIC_SERVICE_TIME
from transport.board_process import BoardProcess
from transport.logs import get_logger

log = get_logger("spinnactors.cli")

#: Where the demo puts its data: the start of user SDRAM on each chip.
_DEMO_ADDRESS = 0x6000_0000


#: The defaults of the options common to every command.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = SCP_SCAMP_PORT


class _Help(
    argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter
):
    """Shows each option's default (once), and keeps the examples' layout."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "(default" in text or action.default is None or action.default is False:
            return text
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line on stderr, with where to
    look, and exit 2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Help)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see: {self.prog} --help)\n")


def _ranged(
    kind: Callable[[str], float | int], low: float, high: float, what: str
) -> Callable[[str], float | int]:
    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"{text} is out of range {_number(low)}..{_number(high)}"
            )
        return value

    return parse


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def _integer(text: str) -> int:
    """Decimal or 0x-hex."""
    return int(text, 0)


_port = _ranged(int, 0, 65535, "a port number")
_side = _ranged(int, 1, 256, "a whole number")
_rate = _ranged(float, 0.0, 1.0, "a probability")
_millis = _ranged(float, 0.0, 60_000.0, "a number of milliseconds")
_chip_x = _ranged(_integer, 0, 255, "a chip x")
_chip_y = _ranged(_integer, 0, 255, "a chip y")
_core = _ranged(_integer, 0, 17, "a core")
_address = _ranged(_integer, 0, 0xFFFF_FFFF, "an address")
_length = _ranged(_integer, 0, 1 << 32, "a length in bytes")


def _common(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    """The options every command takes, before or after its name: given
    on the top parser they are defaults, after the command they win."""
    unset: Any = None if top else argparse.SUPPRESS
    parser.add_argument(
        "--host",
        default=unset,
        help=f"the board's address (default: {DEFAULT_HOST})",
    )
    parser.add_argument(
        "--port",
        type=_port,
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
        type=_ranged(int, 1, 65535, "a count"),
        default=8,
        help="requests on the wire at once (a board holds 8)",
    )
    parser.add_argument(
        "--timeout",
        type=_ranged(float, 0.001, 600, "seconds"),
        default=1.0,
        help="longest wait for one reply, in seconds",
    )
    parser.add_argument(
        "--retries",
        type=_ranged(int, 0, 1000, "a count"),
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
    parser.add_argument("x", type=_chip_x, help="the chip's x (decimal or 0x-hex)")
    parser.add_argument("y", type=_chip_y, help="the chip's y (decimal or 0x-hex)")
    parser.add_argument(
        "address", type=_address, help="where to start (decimal or 0x-hex)"
    )
    parser.add_argument(
        "-p", "--core", dest="p", type=_core, default=0, help="the core to ask"
    )
    packets.add_capture(parser)
    return parser


def _package_version() -> str:
    try:
        return version("spinnactors")
    except PackageNotFoundError:  # run from a source tree, not installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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
        dest="command", required=True, parser_class=_Parser, metavar="COMMAND"
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
    )
    board.add_argument("--width", type=_side, default=8, help="chips across")
    board.add_argument("--height", type=_side, default=8, help="chips down")
    board.add_argument(
        "--drop", type=_rate, default=0.0, help="chance to drop each datagram, each way"
    )
    board.add_argument(
        "--dup",
        type=_rate,
        default=0.0,
        help="chance to duplicate each datagram, each way",
    )
    board.add_argument(
        "--reorder",
        type=_rate,
        default=0.0,
        help="chance to hold a datagram back behind the next",
    )
    board.add_argument(
        "--corrupt",
        type=_rate,
        default=0.0,
        help="chance to corrupt each datagram, each way",
    )
    board.add_argument(
        "--busy",
        type=_rate,
        default=0.0,
        help="chance to answer a request with a busy code",
    )
    board.add_argument(
        "--delay-ms",
        type=_millis,
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
        type=_ranged(float, 0, 1e6, "a number"),
        default=0.0,
        help="time to serve one request, in microseconds",
    )
    board.add_argument(
        "--realistic",
        action="store_true",
        help="serve at a real board's pace (a few MB/s)",
    )
    packets.add_capture(board)

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
    version_.add_argument("x", type=_chip_x, nargs="?", default=0, help="the chip's x")
    version_.add_argument("y", type=_chip_y, nargs="?", default=0, help="the chip's y")
    version_.add_argument("p", type=_core, nargs="?", default=0, help="the core")
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
    read.add_argument("length", type=_length, help="how many bytes (decimal or 0x-hex)")
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
        type=_ranged(int, 1, 1 << 20, "KiB"),
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
        type=_ranged(float, 0.001, 4096, "MiB"),
        default=16.0,
        help="MiB read per round",
    )
    bench.add_argument(
        "--rounds",
        type=_ranged(int, 1, 1000, "a count"),
        default=5,
        help="rounds",
    )
    bench.add_argument(
        "--chip",
        type=int,
        nargs=2,
        default=(0, 0),
        metavar=("X", "Y"),
        help="the chip to read from",
    )
    bench.add_argument(
        "--address",
        type=_address,
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
    for name in WATCHED:
        add_metrics_port(commands.choices[name], _port)
    packets.add_capture(bench)
    packets.add_commands(commands, _command)
    return parser


def _host(args: argparse.Namespace) -> str:
    return DEFAULT_HOST if args.host is None else str(args.host)


def _port_of(args: argparse.Namespace) -> int:
    return DEFAULT_PORT if args.port is None else int(args.port)


def _board_given(args: argparse.Namespace) -> bool:
    """Whether --host or --port names a board (else bench and demo start
    their own)."""
    return args.host is not None or args.port is not None


def _serve_board(args: argparse.Namespace, out: TextIO) -> int:
    faults = FaultPlan(
        drop=args.drop,
        duplicate=args.dup,
        reorder=args.reorder,
        corrupt=args.corrupt,
        busy=args.busy,
        delay=args.delay_ms / 1000.0,
        seed=args.seed,
    )
    service = REALISTIC_SERVICE_TIME if args.realistic else args.service_us / 1e6
    board = VirtualBoard(
        args.width,
        args.height,
        host=_host(args),
        port=_port_of(args),
        faults=faults,
        service_time=service,
        capture=args.capture,
    )
    stop = threading.Event()

    def on_signal(number: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    board.start()
    started = time.monotonic()
    host, port = board.address
    print(f"listening on {host}:{port}", file=out, flush=True)
    while not stop.wait(0.5):
        pass
    board.stop()
    print(_board_summary(board, time.monotonic() - started), file=out, flush=True)
    return 0


def _board_summary(board: VirtualBoard, seconds: float) -> str:
    """The one line a board says when it stops."""
    stats = board.stats
    host, port = board.address
    errors = sum(stats.errors.values())
    return (
        f"stopped {host}:{port} after {seconds:.1f} s: {stats.received} "
        f"requests, {stats.replies} replies ({errors} with an error code), "
        f"{stats.malformed} malformed, {stats.tag_drops + stats.queue_drops} "
        f"dropped when full, {stats.busy} busy answers"
    )


def _resolved(args: argparse.Namespace) -> str:
    """--host as an address: a bad name is a plain error now."""
    name = _host(args)
    try:
        return socket.gethostbyname(name)
    except OSError as error:
        raise OSError(
            f"cannot resolve host {name!r}: {error.strerror or error}"
        ) from None


def _client(args: argparse.Namespace) -> Client:
    """A client for ``--host:--port`` with the command's link options.

    The host is resolved here so that a bad name is a plain error now,
    not a connection actor that fails to start. A closed port ends the
    command at once (fail_refused), rather than after every retry.
    """
    return connect(
        _resolved(args),
        _port_of(args),
        window=args.window,
        timeout=args.timeout,
        retries=args.retries,
        fail_refused=True,
        capture=getattr(args, "capture", None),
    )


def _version(args: argparse.Namespace, out: TextIO) -> int:
    with _client(args) as client:
        info = client.version(args.x, args.y, args.p)
    print(
        f"{info.name} {info.version_string} on {info.hardware} at "
        f"{info.x},{info.y},{info.p}",
        file=out,
    )
    return 0


def _rate_text(size: int, seconds: float) -> float:
    return round(size / seconds / 1e6, 3) if seconds > 0 else 0.0


def _read(args: argparse.Namespace, out: BinaryIO, bars: Console | None) -> int:
    """LENGTH bytes from ADDRESS on chip (X, Y) to a file or ``out``."""
    target: BinaryIO = out
    path = None if args.output in (None, "-") else Path(args.output)
    created = False
    if path is not None:
        # Opened first: a bad path fails before a long transfer. A file
        # made here is removed again if the read fails.
        created = not path.exists()
        target = open(path, "wb")  # noqa: SIM115 - closed below
    ok = False
    try:
        start = time.perf_counter()
        with _client(args) as client:
            data = read_with_progress(
                client, args.x, args.y, args.p, args.address, args.length, bars
            )
            link = _link_counts(client)
        elapsed = time.perf_counter() - start
        _write_all(target, data)
        ok = True
    finally:
        if path is not None:
            target.close()
            if not ok and created:
                path.unlink(missing_ok=True)
    log.info(
        "cli.read",
        chip=f"{args.x},{args.y},{args.p}",
        address=f"0x{args.address:08x}",
        bytes=len(data),
        seconds=round(elapsed, 3),
        mb_per_s=_rate_text(len(data), elapsed),
        **link,
    )
    return 0


def _link_counts(client: Client) -> dict[str, int]:
    """What went over the link, for the command's closing log line."""
    stats = client.stats()
    return {
        "sent": stats.sent,
        "resent": stats.resent,
        "completed": stats.completed,
        "duplicates": stats.duplicates,
        "timeouts": stats.timeouts,
        "late": stats.late,
    }


def _write_all(stream: BinaryIO, data: bytes | bytearray) -> None:
    """Write every byte of ``data``: a buffered write can stop short
    without an error (a pipe closed part way); the next try raises."""
    view = memoryview(data)
    while view:
        written = stream.write(view)
        if not written:  # None: a non-blocking stream that is full
            raise BlockingIOError("the output takes no more bytes")
        view = view[written:]
    stream.flush()


def _write(args: argparse.Namespace, source: BinaryIO, bars: Console | None) -> int:
    """Bytes from a file or ``source`` to ADDRESS on chip (X, Y)."""
    if args.input in (None, "-"):
        data = source.read()
    else:
        with open(args.input, "rb") as file:
            data = file.read()
    start = time.perf_counter()
    with _client(args) as client:
        write_with_progress(client, args.x, args.y, args.p, args.address, data, bars)
        link = _link_counts(client)
    elapsed = time.perf_counter() - start
    log.info(
        "cli.write",
        chip=f"{args.x},{args.y},{args.p}",
        address=f"0x{args.address:08x}",
        bytes=len(data),
        seconds=round(elapsed, 3),
        mb_per_s=_rate_text(len(data), elapsed),
        **link,
    )
    return 0


def _demo(args: argparse.Namespace, out: TextIO, bars: Console | None) -> int:
    """A supervised transfer through a lossy board (see actors/app/demo.py)."""
    address = (_host(args), _port_of(args)) if _board_given(args) else None
    return run_demo(out, bars, args.kib, address=address, capture=args.capture)


def _bench(args: argparse.Namespace, out: TextIO, bars: Console | None) -> int:
    """Read --mib MiB --rounds times; MB/s of each, the median, and what
    the connection saw (resends, timeouts, round trips)."""
    board = None
    if not _board_given(args):
        board = BoardProcess(8, 8)
        args.host, args.port = board.address
        print(
            f"a virtual board at {args.host}:{args.port}, in a process of its own",
            file=out,
        )
    size = int(args.mib * (1 << 20))
    x, y = args.chip
    try:
        with _client(args) as client:
            client.read(x, y, args.address, min(size, 1 << 16))  # warm up
            rates = []
            for round_ in range(1, args.rounds + 1):
                start = time.perf_counter()
                client.read_buffer(x, y, args.address, size)
                rates.append(_rate_text(size, time.perf_counter() - start))
                print(f"round {round_}: {rates[-1]:.1f} MB/s", file=out)
            stats = client.stats()
    finally:
        if board is not None:
            board.stop()
    rtt = stats.rtt
    print(
        f"median {statistics.median(rates):.1f} MB/s reading {args.mib:g} "
        f"MiB from {x},{y} with window {args.window}; resent "
        f"{stats.resent}, timeouts {stats.timeouts}; round trip p50 "
        f"{rtt.p50 * 1e6:.0f} us, p99 {rtt.p99 * 1e6:.0f} us",
        file=out,
    )
    if args.plot is not None:
        title = (
            f"{args.mib:g} MiB reads from {args.host}:{args.port}, window {args.window}"
        )
        plot_bench(args.plot, rates, rtt, title)
        print(f"plot written to {args.plot}", file=out)
    return 0


_TEXT_COMMANDS: dict[str, Callable[[argparse.Namespace, TextIO], int]] = {
    "board": _serve_board,
    "version": _version,
    "dissector": packets.run_dissector,
    "replay": lambda args, out: packets.run_replay(
        args, _resolved(args), _port_of(args), out
    ),
}
_SHOWN_COMMANDS: dict[
    str, Callable[[argparse.Namespace, TextIO, Console | None], int]
] = {
    "demo": _demo,
    "bench": _bench,
}


def main(
    argv: Sequence[str] | None = None,
    out: TextIO | None = None,
    binary_out: BinaryIO | None = None,
    binary_in: BinaryIO | None = None,
) -> int:
    """Run one command; its exit status.

    ``out`` takes text output (default stdout); ``binary_out`` and
    ``binary_in`` are where ``read`` and ``write`` stream bytes when no
    file is named (default: stdout's and stdin's binary buffers).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    where = f"spinnactors {args.command}"
    if args.command == "read":
        if args.address + args.length > 0xFFFF_FFFF + 1:
            return _usage_error(
                where,
                f"{args.length} bytes from 0x{args.address:08x} run past the "
                f"end of 32-bit memory",
            )
        if binary_out is None and args.output is None and sys.stdout.isatty():
            return _usage_error(
                where,
                "will not write binary data to a terminal: give -o FILE, "
                "pipe it on, or say -o - to write it here anyway",
            )
    plain = args.log_format == "json"
    errors = make_console(sys.stderr, plain=plain)
    on_terminal = not plain and errors.is_terminal
    configure_logging(
        args.log_format,
        args.verbose,
        cast(TextIO, ConsoleLines(errors)) if on_terminal else sys.stderr,
        colors=on_terminal,
    )
    if args.verbose < 3:
        # pykka's own error lines repeat what our supervisor logs.
        _quiet_tracebacks(logging.getLogger("pykka"))
        logging.getLogger("pykka").setLevel(logging.CRITICAL)
    bars = errors if on_terminal else None
    try:
        with serving_metrics(args):
            return _run(args, out, binary_out, binary_in, bars)
    except BrokenPipeError as error:
        if not _stdout_is_output(args, binary_out):
            print(f"{where}: error: {_one_line(error)}", file=sys.stderr)
            return 1
        # Whoever read our output went away (`| head`): not worth a word,
        # and nothing must try to flush into the closed pipe at exit.
        _silence_stdout()
        return 1
    except (SpinnactorsError, OSError) as error:
        print(f"{where}: error: {_one_line(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _stdout_is_output(args: argparse.Namespace, binary_out: BinaryIO | None) -> bool:
    """Whether ``read`` writes its bytes to stdout."""
    return args.command == "read" and binary_out is None and args.output in (None, "-")


def _run(
    args: argparse.Namespace,
    out: TextIO | None,
    binary_out: BinaryIO | None,
    binary_in: BinaryIO | None,
    bars: Console | None,
) -> int:
    """Run the command itself."""
    if args.command == "read":
        return _read(args, binary_out or _std_buffer(sys.stdout), bars)
    if args.command == "write":
        return _write(args, binary_in or _std_buffer(sys.stdin), bars)
    if args.command in _SHOWN_COMMANDS:
        return _SHOWN_COMMANDS[args.command](args, out or sys.stdout, bars)
    return _TEXT_COMMANDS[args.command](args, out or sys.stdout)


def _usage_error(where: str, message: str) -> int:
    """A mistake in the command line: one line, where to look, exit 2."""
    print(f"{where}: error: {message} (see: {where} --help)", file=sys.stderr)
    return 2


def _std_buffer(stream: TextIO | None) -> BinaryIO:
    """The binary side of stdin or stdout (which may be missing)."""
    buffer = getattr(stream, "buffer", None)
    if buffer is None:
        raise OSError("no standard input or output to stream bytes through")
    return buffer  # type: ignore[no-any-return]


class _NoTraceback(logging.Filter):
    """Keeps a record's message, drops its traceback (shown with -vv)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        return True


def _quiet_tracebacks(logger: logging.Logger) -> None:
    if not any(isinstance(f, _NoTraceback) for f in logger.filters):
        logger.addFilter(_NoTraceback())


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


if __name__ == "__main__":
    sys.exit(main())
