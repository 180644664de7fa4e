"""The ``spinnactors`` command: a board to talk to, and ways to talk to it."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import NoReturn, TextIO

from messages.errors import SpinnactorsError
from messages.scp import GetVersion, ReadMemory, WriteMemory
from transport import FaultPlan, SCAMPConnection, VirtualBoard
from transport.board import REALISTIC_SERVICE_TIME
from transport.call import call
from actors.logs import configure_logging

#: Where the demo puts its data: the start of user SDRAM on each chip.
_DEMO_ADDRESS = 0x6000_0000


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line on stderr and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _ranged(kind: Callable[[str], float | int], low: float, high: float,
            what: str) -> Callable[[str], float | int]:
    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not {what}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"{text} is out of range {low:g}..{high:g}")
        return value
    return parse


def _integer(text: str) -> int:
    """Decimal or 0x-hex."""
    return int(text, 0)


_port = _ranged(int, 0, 65535, "a port number")
_side = _ranged(int, 1, 256, "a whole number")
_rate = _ranged(float, 0.0, 1.0, "a probability")
_millis = _ranged(float, 0.0, 60_000.0, "a number of milliseconds")


def _common(parser: argparse.ArgumentParser, port_default: int) -> None:
    parser.add_argument("--host", default="127.0.0.1",
                        help="board address (default: %(default)s)")
    parser.add_argument("--port", type=_port, default=port_default,
                        help="UDP port (default: %(default)s)")
    parser.add_argument("--log-format", choices=("console", "json"),
                        default="console")
    parser.add_argument("-v", "--verbose", action="count", default=0)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="spinnactors",
                     description="Drive SpiNNaker boards over SCP/UDP.")
    commands = parser.add_subparsers(dest="command", required=True,
                                     parser_class=_Parser)

    board = commands.add_parser("board", help="serve a virtual board")
    _common(board, 17893)
    board.add_argument("--width", type=_side, default=8)
    board.add_argument("--height", type=_side, default=8)
    board.add_argument("--drop", type=_rate, default=0.0,
                       help="chance to drop each datagram, each way")
    board.add_argument("--dup", type=_rate, default=0.0,
                       help="chance to duplicate each datagram, each way")
    board.add_argument("--reorder", type=_rate, default=0.0,
                       help="chance to hold a datagram back behind the next")
    board.add_argument("--corrupt", type=_rate, default=0.0,
                       help="chance to corrupt each datagram, each way")
    board.add_argument("--busy", type=_rate, default=0.0,
                       help="chance to answer a request with a busy code")
    board.add_argument("--delay-ms", type=_millis, default=0.0,
                       help="extra latency, uniform in 0..this")
    board.add_argument("--seed", type=int, default=None)
    board.add_argument("--service-us", type=_ranged(float, 0, 1e6, "a number"),
                       default=0.0, help="time to serve one request")
    board.add_argument("--realistic", action="store_true",
                       help="serve at a real board's pace (a few MB/s)")

    version = commands.add_parser("version", help="ask a core who it is")
    _common(version, 17893)
    version.add_argument("x", type=_ranged(_integer, 0, 255, "a chip x"),
                         nargs="?", default=0)
    version.add_argument("y", type=_ranged(_integer, 0, 255, "a chip y"),
                         nargs="?", default=0)
    version.add_argument("p", type=_ranged(_integer, 0, 17, "a core"),
                         nargs="?", default=0)
    version.add_argument("--timeout", type=_ranged(float, 0.001, 600,
                                                   "seconds"), default=1.0)
    version.add_argument("--retries", type=_ranged(int, 0, 100, "a count"),
                         default=3)

    demo = commands.add_parser(
        "demo", help="start a board in-process and move data through it")
    demo.add_argument("--log-format", choices=("console", "json"),
                      default="console")
    demo.add_argument("-v", "--verbose", action="count", default=0)
    demo.add_argument("--kib", type=_ranged(int, 1, 1 << 20, "KiB"),
                      default=256, help="data per chip (default: %(default)s)")
    return parser


def _serve_board(args: argparse.Namespace, out: TextIO) -> int:
    faults = FaultPlan(drop=args.drop, duplicate=args.dup,
                       reorder=args.reorder, corrupt=args.corrupt,
                       busy=args.busy, delay=args.delay_ms / 1000.0,
                       seed=args.seed)
    service = REALISTIC_SERVICE_TIME if args.realistic else args.service_us / 1e6
    board = VirtualBoard(args.width, args.height, host=args.host,
                         port=args.port, faults=faults, service_time=service)
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


def _version(args: argparse.Namespace, out: TextIO) -> int:
    with SCAMPConnection(remote_host=args.host, remote_port=args.port) as conn:
        response = call(conn, GetVersion(args.x, args.y, args.p),
                        timeout=args.timeout, retries=args.retries)
    info = response.version_info
    assert info is not None
    print(f"{info.name} {info.version_string} on {info.hardware} at "
          f"{info.x},{info.y},{info.p}", file=out)
    return 0


def _demo(args: argparse.Namespace, out: TextIO) -> int:
    """Write and read back data over a few chips of an in-process board."""
    chips = [(0, 0), (1, 0), (0, 1), (1, 1)]
    size = args.kib * 1024
    pattern = bytes(range(256)) * (size // 256) + bytes(size % 256)
    with VirtualBoard(2, 2) as board, SCAMPConnection(
            remote_host=board.address[0], remote_port=board.address[1]) as conn:
        info = call(conn, GetVersion(0, 0, 0)).version_info
        assert info is not None
        print(f"board {board.address_text}: {info.name} {info.version_string}"
              f" on {info.hardware}", file=out)
        start = time.perf_counter()
        for x, y in chips:
            for offset in range(0, size, 256):
                call(conn, WriteMemory((x, y, 0), _DEMO_ADDRESS + offset,
                                       pattern[offset:offset + 256]))
        verified = 0
        for x, y in chips:
            for offset in range(0, size, 256):
                length = min(256, size - offset)
                got = call(conn, ReadMemory((x, y, 0), _DEMO_ADDRESS + offset,
                                            length)).payload
                if got != pattern[offset:offset + length]:
                    print(f"MISMATCH at chip {x},{y} offset {offset}",
                          file=out)
                    return 1
                verified += length
        elapsed = time.perf_counter() - start
    moved = 2 * verified
    print(f"wrote and read back {verified} bytes over {len(chips)} chips, "
          f"one request at a time: {moved / elapsed / 1e6:.2f} MB/s, "
          f"all verified", file=out)
    return 0


_COMMANDS = {"board": _serve_board, "version": _version, "demo": _demo}


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_format, args.verbose)
    try:
        return _COMMANDS[args.command](args, out or sys.stdout)
    except (SpinnactorsError, OSError) as error:
        print(f"spinnactors {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
