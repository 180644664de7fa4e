"""``spinnactors board`` with boot ROMs, several boards or a BMP: a frame
of virtual boards, cold if asked, on consecutive loopback addresses (each
boot ROM needs port 54321 of an address of its own), and the BMP that
powers them."""

from __future__ import annotations

import argparse
import ipaddress
import signal
import socket
import threading
import time
from types import FrameType
from typing import TextIO

from actors.app.arguments import UsageError
from actors.app.packets import capture_for
from actors.app.parser import DEFAULT_HOST, DEFAULT_PORT
from actors.boot.sensors import BMPWatch, watch_bmp
from messages.boot import BOOT_PORT
from transport import FaultPlan, ROMSettings, VirtualBMP, VirtualBoard
from transport.virtual.board import REALISTIC_SERVICE_TIME


def wanted(args: argparse.Namespace) -> bool:
    """Whether the command asks for more than one plain booted board."""
    return bool(args.unbooted or args.bmp or args.boards > 1)


def interruption() -> threading.Event:
    """An event that Ctrl-C or SIGTERM sets, from now on: take it before
    saying "listening on", which a caller may answer with a signal."""
    stop = threading.Event()

    def on_signal(number: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    return stop


def wait_for(stop: threading.Event) -> None:
    """Wait until ``stop`` is set (waking now and then, so that the main
    thread runs its signal handlers)."""
    while not stop.wait(0.5):
        pass


def board_summary(board: VirtualBoard, seconds: float) -> str:
    """The one line a board says when it stops."""
    stats = board.stats
    host, port = board.address
    errors = sum(stats.errors.values())
    line = (
        f"stopped {host}:{port} after {seconds:.1f} s: {stats.received} "
        f"requests, {stats.replies} replies ({errors} with an error code), "
        f"{stats.malformed} malformed, {stats.tag_drops + stats.queue_drops} "
        f"dropped when full, {stats.busy} busy answers"
    )
    rom = stats.rom
    if rom is None:
        return line
    return (
        f"{line}; boot ROM: {rom.boots} boots, {rom.frames} frames, "
        f"{rom.garbage} garbage, {rom.gap_drops + rom.off_drops} lost, "
        f"{rom.hellos} hellos, {stats.silent_drops} requests while not booted"
    )


def _resolved(name: str) -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(socket.gethostbyname(name))
    except (OSError, UnicodeError) as error:
        raise OSError(f"cannot resolve host {name!r}: {error}") from None


def addresses(
    args: argparse.Namespace,
) -> tuple[list[str], tuple[str, int] | None]:
    """The boards' hosts, and the BMP's address if there is one."""
    port = DEFAULT_PORT if args.port is None else int(args.port)
    bmp = None
    if args.host is not None:
        first = _resolved(args.host)
    elif args.bmp is not None:
        first = _resolved(args.bmp[0]) + 1
    else:
        first = _resolved(DEFAULT_HOST)
    if args.bmp is not None:
        bmp_port = port if args.bmp[1] is None else args.bmp[1]
        bmp = (str(_resolved(args.bmp[0])), bmp_port)
    last = int(first) + args.boards - 1
    if last >> 8 != int(first) >> 8 or last & 0xFF == 0xFF:
        raise UsageError(
            f"{args.boards} boards from {first} run past {first}'s /24: "
            f"start them lower (--host)"
        )
    return [str(first + n) for n in range(args.boards)], bmp


def _faults(args: argparse.Namespace, board: int) -> FaultPlan:
    seed = None if args.seed is None else args.seed + board
    return FaultPlan(
        drop=args.drop,
        duplicate=args.dup,
        reorder=args.reorder,
        corrupt=args.corrupt,
        busy=args.busy,
        delay=args.delay_ms / 1000.0,
        seed=seed,
    )


def _rom(args: argparse.Namespace, board: int) -> ROMSettings:
    lossy = args.drop or args.dup or args.reorder
    seed = None if args.seed is None else args.seed + 1000 + board
    return ROMSettings(
        hello_to=args.hello,
        hello_interval=args.hello_interval,
        min_gap=args.min_frame_gap,
        netinit=args.netinit,
        faults=(
            FaultPlan(
                drop=args.drop, duplicate=args.dup, reorder=args.reorder, seed=seed
            )
            if lossy
            else None
        ),
    )


def serve_frame(args: argparse.Namespace, out: TextIO) -> int:
    """Serve the boards (and the BMP) until interrupted."""
    hosts, bmp_address = addresses(args)
    port = DEFAULT_PORT if args.port is None else int(args.port)
    service = REALISTIC_SERVICE_TIME if args.realistic else args.service_us / 1e6
    # Each board's file, or one they share (closed once they have stopped).
    with capture_for(args.capture, args.boards) as capture:
        stop = interruption()
        boards: list[VirtualBoard] = []
        bmp = None
        watch: BMPWatch | None = None
        try:
            for number, host in enumerate(hosts):
                boards.append(
                    VirtualBoard(
                        args.width or 8,
                        args.height or 8,
                        host=host,
                        port=port,
                        faults=_faults(args, number),
                        service_time=service,
                        capture=capture,
                        booted=not args.unbooted,
                        rom=_rom(args, number),
                    )
                )
            if bmp_address is not None:
                host, bmp_port = bmp_address
                bmp = VirtualBMP(
                    boards, host=host, port=bmp_port, power_on_delay=args.power_on_delay
                )
            started = time.monotonic()
            for board in boards:
                board.start()
            if bmp is not None:
                bmp.start()
                if getattr(args, "metrics_port", None) is not None:
                    watch = watch_bmp(*bmp.address)  # its boards' sensors
            _say_where(args, boards, bmp, out)
            wait_for(stop)
            seconds = time.monotonic() - started
        finally:
            if watch is not None:
                watch.close()
            if bmp is not None:
                bmp.stop()
            for board in boards:
                board.stop()
    for board in boards:
        print(board_summary(board, seconds), file=out, flush=True)
    if bmp is not None:
        stats = bmp.stats
        print(
            f"stopped BMP {bmp.address_text} after {seconds:.1f} s: "
            f"{stats.received} requests, {stats.power_ons} power-ons, "
            f"{stats.power_offs} power-offs, {stats.resets} resets, "
            f"{stats.shutdowns} over-temperature shutdowns",
            file=out,
            flush=True,
        )
    return 0


def _say_where(
    args: argparse.Namespace,
    boards: list[VirtualBoard],
    bmp: VirtualBMP | None,
    out: TextIO,
) -> None:
    """``listening on`` the first board, as every board command says, then
    a line per board and one for the BMP."""
    print(f"listening on {boards[0].address_text}", file=out)
    state = "unbooted" if args.unbooted else "booted"
    for number, board in enumerate(boards):
        print(
            f"board {number} on {board.address_text}, {state}, boot ROM on "
            f"{board.address[0]}:{BOOT_PORT}",
            file=out,
        )
    print(
        f"boot ROMs say hello to {args.hello}:{BOOT_PORT} every "
        f"{args.hello_interval:g} s",
        file=out,
    )
    if bmp is not None:
        print(
            f"BMP on {bmp.address_text} for boards 0-{len(boards) - 1}",
            file=out,
        )
    out.flush()
