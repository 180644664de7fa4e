"""The ``spinnactors`` command: a board to talk to, and ways to talk to it."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import stat
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO, TextIO, cast

from rich.console import Console

from actors.app import arguments, boards, cold, packets
from actors.app.demo import run_demo
from actors.app.parser import DEFAULT_HOST, DEFAULT_PORT, build_parser
from actors.app.plot import plot_bench
from actors.app.progress import read_with_progress, write_with_progress
from actors.app.terminal import ConsoleLines, make_console
from actors.app.watching import serving_metrics
from actors.board.client import Client
from actors.connecting import connect
from actors.errors import RequestTimeout
from actors.logs import configure_logging
from messages.errors import SpinnactorsError
from transport import FaultPlan, VirtualBoard
from transport.logs import get_logger
from transport.virtual.board import REALISTIC_SERVICE_TIME
from transport.virtual.process import BoardProcess

log = get_logger("spinnactors.cli")


def _host(args: argparse.Namespace) -> str:
    return DEFAULT_HOST if args.host is None else str(args.host)


def _port_of(args: argparse.Namespace) -> int:
    return DEFAULT_PORT if args.port is None else int(args.port)


def _board_given(args: argparse.Namespace) -> bool:
    """Whether --host or --port names a board (else bench and demo start
    their own)."""
    return args.host is not None or args.port is not None


def _serve_board(args: argparse.Namespace, out: TextIO) -> int:
    if boards.wanted(args):
        return boards.serve_frame(args, out)
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
    options = {
        "host": _host(args),
        "port": _port_of(args),
        "faults": faults,
        "service_time": service,
        "capture": args.capture,
    }
    board = (
        VirtualBoard.spinn5(**options)
        if args.spinn5
        else VirtualBoard(args.width or 8, args.height or 8, **options)
    )
    stop = boards.interruption()
    board.start()
    started = time.monotonic()
    host, port = board.address
    print(f"listening on {host}:{port}", file=out, flush=True)
    boards.wait_for(stop)
    board.stop()
    print(boards.board_summary(board, time.monotonic() - started), file=out, flush=True)
    return 0


def _resolved(args: argparse.Namespace) -> str:
    """--host as an address: a bad name is a plain error now."""
    name = _host(args)
    try:
        return socket.gethostbyname(name)
    except (OSError, UnicodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else None
        raise OSError(f"cannot resolve host {name!r}: {reason or error}") from None


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
        try:
            info = client.version(args.x, args.y, args.p)
        except RequestTimeout as error:
            # A board fresh from power-on is silent until booted: say how.
            port = "" if args.port is None else f" --port {args.port}"
            raise RequestTimeout(
                f"{error}; a board not booted yet is silent: boot it with "
                f"spinnactors boot {_host(args)}{port}"
            ) from None
    print(
        f"{info.name} {info.version_string} on {info.hardware} at "
        f"{info.x},{info.y},{info.p}",
        file=out,
    )
    return 0


def _rate_text(size: int, seconds: float) -> float:
    return round(size / seconds / 1e6, 3) if seconds > 0 else 0.0


def _read(args: argparse.Namespace, out: BinaryIO | None, bars: Console | None) -> int:
    """LENGTH bytes from ADDRESS on chip (X, Y) to a file or ``out``
    (default: stdout)."""
    path = None if args.output in (None, "-") else Path(args.output)
    created = False
    if path is None:
        target = out or _std_buffer(sys.stdout)
    else:
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
        _write_all(target, data, args.output or "standard output")
        ok = True
    finally:
        if path is not None:
            try:
                target.close()
            except OSError:
                if ok:
                    raise  # else the error that stopped the read is the one told
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


def _write_all(stream: BinaryIO, data: bytes | bytearray, name: str) -> None:
    """Write every byte of ``data``: a buffered write can stop short
    without an error (a pipe closed part way); the next try raises. An
    error (a full disk) names ``name``; a closed pipe stays one."""
    view = memoryview(data)
    try:
        while view:
            written = stream.write(view)
            if not written:  # None: a non-blocking stream that is full
                raise BlockingIOError("the output takes no more bytes")
            view = view[written:]
        stream.flush()
    except BrokenPipeError:
        raise
    except OSError as error:
        raise OSError(f"cannot write {name}: {_one_line(error)}") from None


def _write(
    args: argparse.Namespace, source: BinaryIO | None, bars: Console | None
) -> int:
    """Bytes from a file or ``source`` (default: stdin) to ADDRESS on chip
    (X, Y)."""
    if args.input in (None, "-"):
        data = _input(source or _std_buffer(sys.stdin), args.address)
    else:
        with open(args.input, "rb") as file:
            data = _input(file, args.address)
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


def _input(stream: BinaryIO, address: int) -> bytes:
    """All of ``stream``, if it fits from ``address`` to the end of 32-bit
    memory; else UsageError, having read at most one byte more than fits
    (an endless stdin or /dev/zero is not read to the end)."""
    room = (1 << 32) - address
    size = _size_left(stream)
    if size is None or size <= room:
        # A regular file says how big it is: then it is read in one piece.
        data = _at_most(stream, room + 1) if size is None else stream.read()
        if len(data) <= room:
            return data
    raise arguments.UsageError(
        f"the input runs past the end of 32-bit memory: at most {room} bytes "
        f"fit from 0x{address:08x}"
    )


#: How much of a pipe or device ``write`` reads at a time.
_CHUNK = 1 << 20


def _at_most(stream: BinaryIO, limit: int) -> bytes:
    """What ``stream`` holds, up to ``limit`` bytes."""
    chunks, taken = [], 0
    while taken < limit:
        chunk = stream.read(min(_CHUNK, limit - taken))
        if not chunk:
            break
        chunks.append(chunk)
        taken += len(chunk)
    return b"".join(chunks)


def _size_left(stream: BinaryIO) -> int | None:
    """The bytes left in ``stream`` if it is a regular file, else None (a
    pipe, a terminal, a device: only reading says how much there is)."""
    try:
        info = os.fstat(stream.fileno())
        if stat.S_ISREG(info.st_mode):
            return max(0, info.st_size - stream.tell())
    except (OSError, ValueError, AttributeError):
        pass  # no file behind it (an in-memory stream), or one closed
    return None


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
    "boot": lambda args, out: cold.run_boot(args, _host(args), out),
    "power": cold.run_power,
    "sensors": cold.run_sensors,
    "discover": cold.run_discover,
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
    """Run one command; its exit status: 0 done, 1 failed (one line on
    stderr says why), 2 a mistake in the command line, 130 interrupted.

    ``out`` takes text output (default stdout); ``binary_out`` and
    ``binary_in`` are where ``read`` and ``write`` stream bytes when no
    file is named (default: stdout's and stdin's binary buffers).
    """
    args = build_parser().parse_args(argv)
    where = f"spinnactors {args.command}"
    bars = _configure_logs(args)
    try:
        _check(args, out, binary_out)
        with serving_metrics(args, sys.stderr):
            return _run(args, out, binary_out, binary_in, bars)
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # every failure ends in one line, no traceback
        return _failed(error, args, where, binary_out)


def _configure_logs(args: argparse.Namespace) -> Console | None:
    """Logs to stderr as -v and --log-format say; the console to draw
    progress bars on, if stderr is a terminal."""
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
    return errors if on_terminal else None


def _check(
    args: argparse.Namespace, out: TextIO | None, binary_out: BinaryIO | None
) -> None:
    """What makes the command fail before it starts: UsageError (a bad
    command line) or OSError (nowhere to put its output)."""
    to_stdout = _stdout_is_output(args, binary_out)
    if args.command == "board" and args.spinn5 and (args.width or args.height):
        raise arguments.UsageError("--spinn5 has its own shape: no --width or --height")
    if args.command == "board" and args.spinn5 and boards.wanted(args):
        raise arguments.UsageError(
            "--spinn5 serves one booted board: not with --unbooted, --boards or --bmp"
        )
    if args.command == "read" and args.address + args.length > 1 << 32:
        raise arguments.UsageError(
            f"{args.length} bytes from 0x{args.address:08x} run past the end "
            f"of 32-bit memory"
        )
    prints = out is None and args.command not in ("read", "write")
    if sys.stdout is None and (to_stdout or prints):
        raise OSError(
            "standard output is closed: "
            + ("give -o FILE for the bytes" if to_stdout else "nowhere to print")
        )
    if to_stdout and args.output is None and sys.stdout.isatty():
        raise arguments.UsageError(
            "will not write binary data to a terminal: give -o FILE, pipe it "
            "on, or say -o - to write it here anyway"
        )


def _failed(
    error: Exception,
    args: argparse.Namespace,
    where: str,
    binary_out: BinaryIO | None,
) -> int:
    """Say in one line why the command failed (nothing for a reader of
    our output that went away); its exit status."""
    if isinstance(error, arguments.UsageError):
        return arguments.usage_error(where, str(error))
    if isinstance(error, BrokenPipeError) and _stdout_is_output(args, binary_out):
        # Whoever read our output went away (`| head`): not worth a word,
        # and nothing must try to flush into the closed pipe at exit.
        _silence_stdout()
        return arguments.FAILED
    if isinstance(error, MemoryError):
        message = _out_of_memory(args)
    elif isinstance(error, SpinnactorsError | OSError):
        message = _one_line(error)
    else:  # a bug of ours: still one line; -vv shows where it happened
        if args.verbose >= 2:
            traceback.print_exception(error)
        message = (
            f"unexpected {type(error).__name__}: {_one_line(error)} (a bug: "
            f"please report it; -vv shows where it happened)"
        )
    print(f"{where}: error: {message}", file=sys.stderr)
    return arguments.FAILED


def _out_of_memory(args: argparse.Namespace) -> str:
    if args.command == "read":
        return f"out of memory holding {args.length} bytes: read less at a time"
    if args.command == "write":
        return "out of memory holding the input: write it in parts"
    return "out of memory"


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
        return _read(args, binary_out, bars)
    if args.command == "write":
        return _write(args, binary_in, bars)
    if args.command in _SHOWN_COMMANDS:
        return _SHOWN_COMMANDS[args.command](args, out or sys.stdout, bars)
    return _TEXT_COMMANDS[args.command](args, out or sys.stdout)


def _std_buffer(stream: TextIO | None) -> BinaryIO:
    """The binary side of stdin or stdout (which may be closed)."""
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
    """An error's message on one line; an OSError's without "[Errno N]"."""
    text = str(error)
    if isinstance(error, OSError) and error.strerror and error.args[1:]:
        name = error.filename
        text = error.strerror if name is None else f"{name}: {error.strerror}"
    text = " ".join(text.split())
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
