"""The ``spinnactors`` command: a board to talk to, and ways to talk to it."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, BinaryIO, NoReturn, TextIO

from actors.app.demo import run_demo
from actors.app.progress import read_with_progress, write_with_progress
from actors.board.client import Client
from actors.connecting import connect
from actors.logs import configure_logging
from messages.errors import SpinnactorsError
from transport import FaultPlan, VirtualBoard
from transport.board import REALISTIC_SERVICE_TIME
from transport.board_process import BoardProcess
from transport.logs import get_logger

log = get_logger("spinnactors.cli")

#: Where the demo puts its data: the start of user SDRAM on each chip.
_DEMO_ADDRESS = 0x6000_0000


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line on stderr and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


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


def _common(parser: argparse.ArgumentParser, port_default: int) -> None:
    parser.add_argument(
        "--host", default="127.0.0.1", help="board address (default: %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=port_default,
        help="UDP port (default: %(default)s)",
    )
    parser.add_argument("--log-format", choices=("console", "json"), default="console")
    parser.add_argument("-v", "--verbose", action="count", default=0)


def _link(parser: argparse.ArgumentParser) -> None:
    """How a client talks to the board: window, patience and retries."""
    parser.add_argument(
        "--window",
        type=_ranged(int, 1, 65535, "a count"),
        default=8,
        help="requests on the wire at once (default: %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=_ranged(float, 0.001, 600, "seconds"),
        default=1.0,
        help="longest wait for one reply, in seconds (default: %(default)s)",
    )
    parser.add_argument(
        "--retries",
        type=_ranged(int, 0, 1000, "a count"),
        default=10,
        help="resends of one request (default: %(default)s)",
    )


def _transfer(commands: Any, name: str, summary: str) -> argparse.ArgumentParser:
    """A read or write command: X Y ADDRESS, -p, and the link options."""
    parser: argparse.ArgumentParser = commands.add_parser(name, help=summary)
    _common(parser, 17893)
    _link(parser)
    parser.add_argument("x", type=_chip_x)
    parser.add_argument("y", type=_chip_y)
    parser.add_argument(
        "address", type=_address, help="where to start (decimal or 0x-hex)"
    )
    parser.add_argument(
        "-p",
        "--core",
        dest="p",
        type=_core,
        default=0,
        help="core to ask (default: %(default)s)",
    )
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="spinnactors", description="Drive SpiNNaker boards over SCP/UDP."
    )
    commands = parser.add_subparsers(
        dest="command", required=True, parser_class=_Parser
    )

    board = commands.add_parser("board", help="serve a virtual board")
    _common(board, 17893)
    board.add_argument("--width", type=_side, default=8)
    board.add_argument("--height", type=_side, default=8)
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
        help="extra latency, uniform in 0..this",
    )
    board.add_argument("--seed", type=int, default=None)
    board.add_argument(
        "--service-us",
        type=_ranged(float, 0, 1e6, "a number"),
        default=0.0,
        help="time to serve one request",
    )
    board.add_argument(
        "--realistic",
        action="store_true",
        help="serve at a real board's pace (a few MB/s)",
    )

    version = commands.add_parser("version", help="ask a core who it is")
    _common(version, 17893)
    _link(version)
    version.add_argument("x", type=_chip_x, nargs="?", default=0)
    version.add_argument("y", type=_chip_y, nargs="?", default=0)
    version.add_argument("p", type=_core, nargs="?", default=0)

    read = _transfer(commands, "read", "read memory of a chip (to stdout, or -o FILE)")
    read.add_argument("length", type=_length, help="how many bytes (decimal or 0x-hex)")
    read.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        default=None,
        help="write the bytes to FILE (default: stdout)",
    )

    write = _transfer(
        commands, "write", "write memory of a chip (from stdin, or -i FILE)"
    )
    write.add_argument(
        "-i",
        "--input",
        metavar="FILE",
        default=None,
        help="read the bytes from FILE (default: stdin)",
    )

    demo = commands.add_parser(
        "demo", help="start a board in-process and move data through it"
    )
    demo.add_argument("--log-format", choices=("console", "json"), default="console")
    demo.add_argument("-v", "--verbose", action="count", default=0)
    demo.add_argument(
        "--kib",
        type=_ranged(int, 1, 1 << 20, "KiB"),
        default=1024,
        help="data per chip (default: %(default)s)",
    )
    demo.add_argument(
        "--host", default=None, help="a real board (default: a virtual one in-process)"
    )
    demo.add_argument("--port", type=_port, default=17893)

    bench = commands.add_parser(
        "bench",
        help="measure read throughput from a board (default: a "
        "virtual one in a process of its own)",
    )
    _common(bench, 17893)
    _link(bench)
    bench.set_defaults(host=None)
    for action in bench._actions:
        if action.dest == "host":
            action.help = (
                "board address (default: start a virtual board in a process of its own)"
            )
    bench.add_argument(
        "--mib",
        type=_ranged(float, 0.001, 4096, "MiB"),
        default=16.0,
        help="MiB read per round (default: %(default)s)",
    )
    bench.add_argument(
        "--rounds",
        type=_ranged(int, 1, 1000, "a count"),
        default=5,
        help="rounds (default: %(default)s)",
    )
    bench.add_argument("--chip", type=int, nargs=2, default=(0, 0), metavar=("X", "Y"))
    bench.add_argument("--address", type=_address, default=0x6000_0000)
    return parser


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
        host=args.host,
        port=args.port,
        faults=faults,
        service_time=service,
    )
    stop = threading.Event()

    def on_signal(number: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    board.start()
    host, port = board.address
    print(f"listening on {host}:{port}", file=out, flush=True)
    while not stop.wait(0.5):
        pass
    board.stop()
    return 0


def _client(args: argparse.Namespace) -> Client:
    """A client for ``--host:--port`` with the command's link options.

    The host is resolved here so that a bad name is a plain error now,
    not a connection actor that fails to start.
    """
    try:
        host = socket.gethostbyname(args.host)
    except OSError as error:
        raise OSError(
            f"cannot resolve host {args.host!r}: {error.strerror or error}"
        ) from None
    return connect(
        host, args.port, window=args.window, timeout=args.timeout, retries=args.retries
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


def _read(args: argparse.Namespace, out: BinaryIO) -> int:
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
                client, args.x, args.y, args.p, args.address, args.length, sys.stderr
            )
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
    )
    return 0


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


def _write(args: argparse.Namespace, source: BinaryIO) -> int:
    """Bytes from a file or ``source`` to ADDRESS on chip (X, Y)."""
    if args.input in (None, "-"):
        data = source.read()
    else:
        with open(args.input, "rb") as file:
            data = file.read()
    start = time.perf_counter()
    with _client(args) as client:
        write_with_progress(
            client, args.x, args.y, args.p, args.address, data, sys.stderr
        )
    elapsed = time.perf_counter() - start
    log.info(
        "cli.write",
        chip=f"{args.x},{args.y},{args.p}",
        address=f"0x{args.address:08x}",
        bytes=len(data),
        seconds=round(elapsed, 3),
        mb_per_s=_rate_text(len(data), elapsed),
    )
    return 0


def _demo(args: argparse.Namespace, out: TextIO) -> int:
    """A supervised transfer through a lossy board (see actors/demo.py)."""
    address = None if args.host is None else (args.host, args.port)
    return run_demo(out, sys.stderr, args.kib, address=address)


def _bench(args: argparse.Namespace, out: TextIO) -> int:
    """Read --mib MiB --rounds times; MB/s of each, the median, and what
    the connection saw (resends, timeouts, round trips)."""
    board = None
    if args.host is None:
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
    return 0


_TEXT_COMMANDS = {
    "board": _serve_board,
    "version": _version,
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
    if args.command == "read" and args.address + args.length > 0xFFFF_FFFF + 1:
        parser.error(
            f"read: {args.length} bytes from 0x{args.address:08x} "
            f"run past the end of 32-bit memory"
        )
    configure_logging(args.log_format, args.verbose)
    if args.verbose < 2:
        # pykka's own error lines repeat what our supervisor logs.
        _quiet_tracebacks(logging.getLogger("pykka"))
        logging.getLogger("pykka").setLevel(logging.CRITICAL)
    to_stdout = False
    try:
        if args.command == "read":
            to_stdout = binary_out is None and args.output in (None, "-")
            return _read(args, binary_out or _std_buffer(sys.stdout))
        if args.command == "write":
            return _write(args, binary_in or _std_buffer(sys.stdin))
        return _TEXT_COMMANDS[args.command](args, out or sys.stdout)
    except BrokenPipeError as error:
        if not to_stdout:
            print(
                f"spinnactors {args.command}: error: {_one_line(error)}",
                file=sys.stderr,
            )
            return 1
        # Whoever read our output went away (`| head`): not worth a word,
        # and nothing must try to flush into the closed pipe at exit.
        _silence_stdout()
        return 1
    except (SpinnactorsError, OSError) as error:
        print(f"spinnactors {args.command}: error: {_one_line(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


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
