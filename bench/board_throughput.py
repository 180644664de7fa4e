"""How many 256-byte reads per second a `spinnactors board` process serves.

A bare socket client keeps WINDOW read requests outstanding against a board
running in its own process and counts replies. This is the fastest a client
can go, so it is the figure the board must keep above: issue 2 asks for at
least 50,000 reads/s with a window of 8.

    python bench/board_throughput.py [--requests N] [--runs R] [--window W]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import struct
import subprocess
import sys
import time

from messages.scp import ReadMemory

TARGET = 50_000


def start_board() -> tuple[subprocess.Popen[str], tuple[str, int]]:
    board = subprocess.Popen(
        [sys.executable, "-m", "actors.cli", "board", "--port", "0"],
        stdout=subprocess.PIPE, text=True)
    assert board.stdout is not None
    line = board.stdout.readline().strip()
    if not line.startswith("listening on "):
        board.kill()
        raise SystemExit(f"board did not start: {line!r}")
    host, port = line.removeprefix("listening on ").rsplit(":", 1)
    return board, (host, int(port))


def read_datagrams(count: int) -> list[bytes]:
    """One ReadMemory datagram per 16-bit sequence number."""
    out = []
    for sequence in range(count):
        request = ReadMemory((0, 0, 0), 0x6000_0000 + 256 * sequence, 256)
        request.scp_request_header.sequence = sequence
        request.sdp_header.update_for_send(0, 0)
        out.append(b"\0\0" + request.bytestring)
    return out


def bare_loop(address: tuple[str, int], requests: int, window: int) -> float:
    """Reads per second with ``window`` outstanding; resends on a stall."""
    datagrams = read_datagrams(1 << 16)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    sequence_of = struct.Struct("<H")
    outstanding: set[int] = set()
    sent = done = 0
    start = time.perf_counter()
    while done < requests:
        while len(outstanding) < window and sent < requests:
            seq = sent & 0xFFFF
            sock.sendto(datagrams[seq], address)
            outstanding.add(seq)
            sent += 1
        try:
            reply = sock.recv(1024)
        except TimeoutError:
            for seq in outstanding:
                sock.sendto(datagrams[seq], address)
            continue
        seq = sequence_of.unpack_from(reply, 12)[0]
        if seq in outstanding and len(reply) == 14 + 256:
            outstanding.discard(seq)
            done += 1
    elapsed = time.perf_counter() - start
    sock.close()
    return requests / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--window", type=int, default=8)
    args = parser.parse_args()
    board, address = start_board()
    try:
        bare_loop(address, 5_000, args.window)  # warm up
        rates = [bare_loop(address, args.requests, args.window)
                 for _ in range(args.runs)]
    finally:
        board.terminate()
        board.wait(10)
    median = statistics.median(rates)
    print(f"board at {address[0]}:{address[1]}, window {args.window}, "
          f"{args.requests} reads of 256 bytes per run, {args.runs} runs")
    print("runs (reads/s): " + ", ".join(f"{rate:,.0f}" for rate in rates))
    print(f"median: {median:,.0f} reads/s = "
          f"{median * 256 / 1e6:.1f} MB/s of payload; "
          f"{median / TARGET:.2f}x the {TARGET:,} reads/s target")
    return 0 if median >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
