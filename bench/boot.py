"""Booting cold virtual boards: one Machine booting many at once against
one board alone, and one board booted by spinnactors against SpiNNMan's
own boot of the same board.

The boards are served by processes of their own (``--per-process`` each),
every cold board on an address of its own in 127.2.0.0/16 (a boot ROM
listens on port 54321, so no two boards share an address), with a virtual
BMP for every 24; SC&MP says chip (255, 255) for 0.1 s after its image
runs (NETINIT), then where it is. Between rounds every board is powered
off and on through its BMP (one command per BMP), which puts it back in
its boot ROM, as on a real frame.

Many: a Machine of one board boots it (``Machine.boot()``: probe, 32
frames 10 ms apart, version until located); then one Machine (boards in
this process, each board's boot on a thread of its own) boots ``--boards``
(64; try 1024) at once. The median of ``--rounds`` for each, and the ratio.

One against SpiNNMan, on one board power-cycled between runs (rounds
interleaved): spinnactors' ``Client.boot()`` with its defaults (a 2 s
probe before a silent board is taken for unbooted), the same with a 0.05 s
probe (a board known to be cold: the frames and the wait for SC&MP), and
the same at SpiNNMan's pace (0.1 s between frames); then SpiNNMan's own
boot as tests/system/test_cold_board.py does it: its BootConnection sends
its SpinnakerBootMessages (sleeping 0.1 s after each frame) and its
SCAMPConnection asks GetVersion every 0.1 s until the chip is located.
(SpiNNMan's ensure_board_is_ready adds its own probe, GetVersion with 3
retries, and a 2 s sleep after the frames; neither is timed here.)

    python bench/boot.py [--boards 64] [--rounds 3] [--per-process 256]
                         [--spinnman-rounds 3]
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import multiprocessing
import statistics
import sys
import time
from collections.abc import Callable, Hashable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import structlog  # noqa: E402

from actors.board.client import Client  # noqa: E402
from actors.boot import BoardBMP, BootOptions, power_boards  # noqa: E402
from actors.placement.machine import Machine  # noqa: E402
from messages.bmp import MAX_BOARD  # noqa: E402

#: Where the boards' addresses start (and their BMPs', in 127.3.0.0/16).
FIRST_BOARD = ipaddress.IPv4Address("127.2.0.1")
FIRST_BMP = ipaddress.IPv4Address("127.3.0.1")
FRAME = MAX_BOARD + 1
NETINIT = 0.1
Address = tuple[str, int]


def quiet() -> None:
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL)
    )
    for name in ("pykka", "actors", "transport"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _serve(first: int, count: int, pipe: Connection) -> None:
    """Serve boards ``first`` .. ``first + count - 1`` (cold) and a BMP per
    24 of them until told to stop; send back their addresses."""
    quiet()
    from transport import ROMSettings, VirtualBMP, VirtualBoard

    settings = ROMSettings(hello_to=None, netinit=NETINIT)
    boards = [
        VirtualBoard(
            2, 2, host=str(FIRST_BOARD + first + n), booted=False, rom=settings
        ).start()
        for n in range(count)
    ]
    bmps = [
        VirtualBMP(
            boards[start : start + FRAME],
            host=str(FIRST_BMP + (first + start) // FRAME),
            power_on_delay=0.05,
        ).start()
        for start in range(0, count, FRAME)
    ]
    pipe.send(([board.address for board in boards], [bmp.address for bmp in bmps]))
    pipe.recv()  # stop
    for bmp in bmps:
        bmp.stop()
    for board in boards:
        board.stop()


class Frames:
    """Board processes serving ``count`` cold boards and their BMPs."""

    def __init__(self, count: int, per_process: int) -> None:
        context = multiprocessing.get_context("spawn")
        per_process = max(per_process - per_process % FRAME, FRAME)  # whole frames
        self._children: list[tuple[BaseProcess, Connection]] = []
        for first in range(0, count, per_process):
            ours, theirs = context.Pipe()
            process = context.Process(
                target=_serve,
                args=(first, min(per_process, count - first), theirs),
                daemon=True,
            )
            process.start()
            self._children.append((process, ours))
        self.boards: list[Address] = []
        self.bmps: dict[int, BoardBMP] = {}
        for _, pipe in self._children:
            boards, bmp_addresses = pipe.recv()
            for board in boards:
                number = len(self.boards)
                host, port = bmp_addresses[(number % per_process) // FRAME]
                self.bmps[number] = BoardBMP(host, number % per_process % FRAME, port)
                self.boards.append(tuple(board))

    @property
    def processes(self) -> list[BaseProcess]:
        return [process for process, _ in self._children]

    def power_cycle(self, names: list[int] | None = None) -> None:
        """Every board (or those named) off and on: back in its boot ROM."""
        chosen = {n: self.bmps[n] for n in (names or list(self.bmps))}
        power_boards(chosen, False)
        power_boards(chosen, True)

    def close(self) -> None:
        for process, pipe in self._children:
            pipe.send("stop")
            process.join(30)
            if process.is_alive():
                process.kill()


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def boot_machine(frames: Frames, names: list[int], options: BootOptions) -> float:
    """Seconds for one Machine of ``names`` to boot them all (cold)."""
    boards: dict[Hashable, Address] = {name: frames.boards[name] for name in names}
    with Machine(boards, workers=0) as machine:
        seconds = timed(lambda: machine.boot(options))
        # Every board answers: check one read per board.
        for name in names:
            assert machine.read(name, 0, 0, 0x6000_0000, 4) == bytes(4)
    return seconds


def many(frames: Frames, count: int, rounds: int, options: BootOptions) -> None:
    alone, together = [], []
    for round_ in range(rounds):
        frames.power_cycle()
        alone.append(boot_machine(frames, [0], options))
        frames.power_cycle([0])
        together.append(boot_machine(frames, list(range(count)), options))
        print(
            f"  round {round_ + 1}: one board {alone[-1]:.2f} s, {count} boards "
            f"{together[-1]:.2f} s",
            flush=True,
        )
    one, all_ = statistics.median(alone), statistics.median(together)
    print(
        f"one board alone: {one:.2f} s; {count} boards at once, one Machine: "
        f"{all_:.2f} s = {all_ / one:.2f}x one board's (medians of {rounds}; "
        f"one after another they would take about {count * one:.0f} s)"
    )


def spinnman_boot(address: Address) -> None:
    """SpiNNMan's boot of the board at ``address``, until located."""
    from spinnman.connections.udp_packet_connections import (
        BootConnection as TheirBootConnection,
    )
    from spinnman.connections.udp_packet_connections import (
        SCAMPConnection as TheirSCAMPConnection,
    )
    from spinnman.exceptions import SpinnmanTimeoutException
    from spinnman.messages.scp.impl import GetVersion as TheirGetVersion
    from spinnman.messages.spinnaker_boot import SpinnakerBootMessages

    host, port = address
    sender = TheirBootConnection(remote_host=host)
    try:
        for message in SpinnakerBootMessages().messages:
            sender.send_boot_message(message)  # sleeps 0.1 s after each
    finally:
        sender.close()
    scamp = TheirSCAMPConnection(remote_host=host, remote_port=port)
    try:
        for sequence in range(1, 1000):
            request = TheirGetVersion(0, 0, 0)
            request.scp_request_header.sequence = sequence
            scamp.send(scamp.get_scp_data(request))
            try:
                _, seen, data, offset = scamp.receive_scp_response(0.25)
            except SpinnmanTimeoutException:
                continue
            if seen != sequence:
                continue
            response = request.get_scp_response()
            response.read_bytestring(data, offset)
            info = response.version_info
            if info is not None and (info.x, info.y) != (255, 255):
                return
            time.sleep(0.1)  # SpiNNMan's pace while it waits
        raise AssertionError("SC&MP never located")
    finally:
        scamp.close()


def ours(address: Address, options: BootOptions) -> Callable[[], None]:
    def boot() -> None:
        with Client(*address) as client:
            report = client.boot(options)
            assert report.booted

    return boot


def against_spinnman(frames: Frames, rounds: int) -> None:
    from spinn_utilities.config_holder import set_config
    from spinnman.config_setup import unittest_setup

    unittest_setup()
    set_config("Machine", "version", "5")
    address = frames.boards[0]
    ways = {
        "spinnactors Client.boot(), defaults (2 s probe)": ours(address, BootOptions()),
        "spinnactors Client.boot(), 0.05 s probe": ours(
            address, BootOptions(probe_timeout=0.05)
        ),
        "spinnactors Client.boot(), 0.05 s probe, SpiNNMan's 0.1 s gap": ours(
            address, BootOptions(probe_timeout=0.05, gap=0.1)
        ),
        "SpiNNMan BootConnection + SpinnakerBootMessages + GetVersion": lambda: (
            spinnman_boot(address)
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(rounds):
        for name, way in ways.items():
            frames.power_cycle([0])
            times[name].append(timed(way))
    print(f"one board, power-cycled between runs (medians of {rounds}):")
    baseline = statistics.median(times[list(ways)[-1]])
    for name, seconds in times.items():
        median = statistics.median(seconds)
        print(f"  {name}: {median:.2f} s ({median / baseline:.2f}x SpiNNMan's)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--boards", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--per-process", type=int, default=256)
    parser.add_argument("--spinnman-rounds", type=int, default=3)
    parser.add_argument("--probe-timeout", type=float, default=2.0)
    args = parser.parse_args()
    quiet()
    started = time.perf_counter()
    frames = Frames(args.boards, args.per_process)
    bmps = len({bmp.address for bmp in frames.bmps.values()})
    print(
        f"{args.boards} cold boards on 127.2.x.x behind {bmps} BMPs, served by "
        f"{len(frames.processes)} processes (started in "
        f"{time.perf_counter() - started:.1f} s)",
        flush=True,
    )
    try:
        options = BootOptions(probe_timeout=args.probe_timeout, deadline=600)
        many(frames, args.boards, args.rounds, options)
        if args.spinnman_rounds:
            against_spinnman(frames, args.spinnman_rounds)
    finally:
        frames.close()


if __name__ == "__main__":
    main()
