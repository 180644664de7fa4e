"""The children of bench/cpu.py: each reads ``size`` bytes from a board (or
from every board it is given) and prints its MB/s and the CPU seconds of
the read (process_time: every thread of the child, around the read only,
so that the interpreter's start, the imports and the connecting, which
vary by tens of milliseconds a run, are not in it), and perhaps more.

They import this project only when they run, so that a child started with
SPINNACTORS_TREE (cpu.py's ``--against``) imports that tree's.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transport.links.endpoint import Address

BASE = 0x6000_0000
#: How often the latency child asks for a version during its read.
VERSION_EVERY = 0.005


def bare_loop(host: str, port: int, size: int, window: int) -> str:
    """The practical limit: a plain socket keeping ``window`` reads in
    flight, resending everything outstanding after 0.2 s of silence."""
    from messages.scp.bulk import ChunkBuilder
    from messages.scp.layout import REPLY_DATA_OFFSET, SEQUENCE, SEQUENCE_OFFSET

    builder = ChunkBuilder(0, 0, 0)
    sequence_of, at, full = SEQUENCE, SEQUENCE_OFFSET, REPLY_DATA_OFFSET + 256
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect((host, port))
    sock.settimeout(0.2)
    requests = size // 256
    outstanding: dict[int, bytes] = {}
    sent = done = 0
    cpu = time.process_time()
    start = time.perf_counter()
    while done < requests:
        while len(outstanding) < window and sent < requests:
            seq = sent & 0xFFFF
            datagram = builder.read(BASE + 256 * (sent % 4096), 256)
            sequence_of.pack_into(datagram, at, seq)
            sock.send(datagram)
            outstanding[seq] = bytes(datagram)
            sent += 1
        try:
            reply = sock.recv(1024)
        except TimeoutError:
            for copy in outstanding.values():
                sock.send(copy)
            continue
        seq = sequence_of.unpack_from(reply, at)[0]
        if seq in outstanding and len(reply) == full:
            del outstanding[seq]
            done += 1
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu
    sock.close()
    return f"{size / max(elapsed, 1e-9) / 1e6} {cpu}"


def spinnactors_read(host: str, port: int, size: int, window: int) -> str:
    from actors import connect

    with connect(host, port, window=window) as client:
        cpu = time.process_time()
        start = time.perf_counter()
        data = client.read(0, 0, BASE, size) if size else b""
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu
    assert len(data) == size
    return f"{size / max(elapsed, 1e-9) / 1e6} {cpu}"


def spinnman_read(host: str, port: int, size: int, window: int) -> str:
    from spinnman.connections.scp_request_pipeline import SCPRequestPipeLine
    from spinnman.connections.udp_packet_connections import SCAMPConnection
    from spinnman.messages.scp.impl import ReadMemory
    from spinnman.messages.scp.impl.read_memory import Response

    connection = SCAMPConnection(remote_host=host, remote_port=port)
    errors: list[Exception] = []

    def failed(request: object, error: Exception, *_: object) -> None:
        errors.append(error)

    cpu = time.process_time()
    start = time.perf_counter()
    try:
        pipeline: SCPRequestPipeLine[Response] = SCPRequestPipeLine(
            connection, n_channels=window
        )
        for offset in range(0, size, 256):
            pipeline.send_request(
                ReadMemory((0, 0, 0), BASE + offset, 256), lambda _: None, failed
            )
        pipeline.finish()
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu
    finally:
        connection.close()
    if errors:
        raise RuntimeError(f"SpiNNMan failed: {errors[0]}")
    return f"{size / max(elapsed, 1e-9) / 1e6} {cpu}"


def bare_boards(addresses: list[Address], size: int, window: int) -> str:
    """The practical limit for many boards in one process: one thread and
    a select() over their sockets, each board kept ``window`` reads in
    flight as bare_loop keeps one; everything outstanding is resent after
    0.2 s of silence. Aggregate MB/s, and the CPU seconds of the reads."""
    from messages.scp.bulk import ChunkBuilder
    from messages.scp.layout import REPLY_DATA_OFFSET, SEQUENCE, SEQUENCE_OFFSET

    builder = ChunkBuilder(0, 0, 0)
    sequence_of, at, full = SEQUENCE, SEQUENCE_OFFSET, REPLY_DATA_OFFSET + 256
    requests = size // 256
    sockets = []
    for address in addresses:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.connect(address)
        sock.setblocking(False)
        sockets.append(sock)
    outstanding: list[dict[int, bytes]] = [{} for _ in sockets]
    sent, done = [0] * len(sockets), [0] * len(sockets)
    cpu = time.process_time()
    start = time.perf_counter()
    while sum(done) < requests * len(sockets):
        for index, sock in enumerate(sockets):
            mine = outstanding[index]
            while len(mine) < window and sent[index] < requests:
                seq = sent[index] & 0xFFFF
                datagram = builder.read(BASE + 256 * (sent[index] % 4096), 256)
                sequence_of.pack_into(datagram, at, seq)
                sock.send(datagram)
                mine[seq] = bytes(datagram)
                sent[index] += 1
        readable, _, _ = select.select(sockets, [], [], 0.2)
        if not readable:
            for sock, mine in zip(sockets, outstanding, strict=True):
                for copy in mine.values():
                    sock.send(copy)
            continue
        for sock in readable:
            index = sockets.index(sock)
            mine = outstanding[index]
            while True:
                try:
                    reply = sock.recv(1024)
                except BlockingIOError:
                    break
                seq = sequence_of.unpack_from(reply, at)[0]
                if seq in mine and len(reply) == full:
                    del mine[seq]
                    done[index] += 1
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu
    for sock in sockets:
        sock.close()
    return f"{len(sockets) * size / max(elapsed, 1e-9) / 1e6} {cpu}"


def spinnactors_boards(
    addresses: list[Address], size: int, window: int, workers: int
) -> str:
    """Every board read at once through one Machine with ``workers``
    worker processes (0: all in this one). Aggregate MB/s, and the CPU
    seconds of the reads here and in the workers."""
    from actors.placement.machine import Machine
    from actors.protocol.jobs import ReadJob

    with Machine(addresses, window=window, workers=workers) as machine:
        jobs = [
            (board, ReadJob((board, index), 0, 0, 0, BASE, size))
            for index, board in enumerate(machine.boards)
        ]
        machine.submit(jobs[:1])  # the workers are up and connected
        pids = [pid for pid in machine.worker_pids if pid is not None]
        cpu = time.process_time() + sum(map(_thread_seconds, pids))
        start = time.perf_counter()
        outcomes = machine.submit(jobs)
        elapsed = time.perf_counter() - start
        cpu = time.process_time() + sum(map(_thread_seconds, pids)) - cpu
    for outcome in outcomes:
        if outcome.error is not None:
            raise outcome.error
        assert len(outcome.value) == size
    return f"{len(addresses) * size / max(elapsed, 1e-9) / 1e6} {cpu}"


def _thread_seconds(pid: int) -> float:
    """CPU seconds of every thread of ``pid`` so far (Linux schedstat)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


def spinnactors_version_latency(host: str, port: int, size: int, window: int) -> str:
    """spinnactors_read, while another thread asks for the board's version
    every VERSION_EVERY: the MB/s and CPU seconds, then the wall-clock time
    each version() returned (matched by the parent to the board's
    capture)."""
    from actors import connect

    returned: list[float] = []
    reading = threading.Event()
    with connect(host, port, window=window) as client:

        def ask() -> None:
            pause = threading.Event()  # never set: a wait nothing cuts short
            while reading.is_set():
                client.version()
                returned.append(time.time())
                pause.wait(VERSION_EVERY)

        asker = threading.Thread(target=ask)
        reading.set()
        asker.start()
        cpu = time.process_time()
        start = time.perf_counter()
        data = client.read(0, 0, BASE, size) if size else b""
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu
        reading.clear()
        asker.join()
    assert len(data) == size
    mb_per_s = size / max(elapsed, 1e-9) / 1e6
    return " ".join(map(str, [mb_per_s, cpu, *returned]))


def bare_version_latency(host: str, port: int, size: int, window: int) -> str:
    """bare_loop's read, asking for the board's version every VERSION_EVERY
    on the same socket, in the window's next free place: the floor for what
    spinnactors_version_latency measures, one thread and no actors, so
    what it shows of a version's return is the host's own (a wake-up, a
    stall). The same output as spinnactors_version_latency."""
    from messages.scp import GetVersion
    from messages.scp.bulk import ChunkBuilder
    from messages.scp.layout import (
        REPLY_DATA_OFFSET,
        SEQUENCE,
        SEQUENCE_OFFSET,
        request_datagram,
    )

    builder = ChunkBuilder(0, 0, 0)
    sequence_of, at, full = SEQUENCE, SEQUENCE_OFFSET, REPLY_DATA_OFFSET + 256
    version = bytearray(request_datagram(GetVersion(0, 0, 0), 255, 255))
    asking = 0x8000  # (reads count up from 0: a version's numbers never meet them)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect((host, port))
    sock.settimeout(0.2)
    requests = size // 256
    outstanding: dict[int, bytes] = {}
    returned: list[float] = []
    sent = done = 0
    cpu = time.process_time()
    start = time.perf_counter()
    ask_at = start
    while done < requests:
        if (
            len(outstanding) < window
            and asking not in outstanding
            and time.perf_counter() >= ask_at
        ):
            asking = 0x8000 | ((asking + 1) & 0x7FFF)
            sequence_of.pack_into(version, at, asking)
            sock.send(version)
            outstanding[asking] = bytes(version)
        while len(outstanding) < window and sent < requests:
            seq = sent & 0x7FFF
            datagram = builder.read(BASE + 256 * (sent % 4096), 256)
            sequence_of.pack_into(datagram, at, seq)
            sock.send(datagram)
            outstanding[seq] = bytes(datagram)
            sent += 1
        try:
            reply = sock.recv(1024)
        except TimeoutError:
            for copy in outstanding.values():
                sock.send(copy)
            continue
        seq = sequence_of.unpack_from(reply, at)[0]
        if seq not in outstanding:
            continue
        if seq == asking:
            returned.append(time.time())
            del outstanding[seq]
            ask_at = time.perf_counter() + VERSION_EVERY
        elif len(reply) == full:
            del outstanding[seq]
            done += 1
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu
    sock.close()
    mb_per_s = size / max(elapsed, 1e-9) / 1e6
    return " ".join(map(str, [mb_per_s, cpu, *returned]))


def spinnactors_captured_read(host: str, port: int, size: int, window: int) -> str:
    """spinnactors_read with ``capture=`` a pcap file (in a folder removed
    after): the capture's close, which writes what is left, is timed (and
    its CPU taken) too. Also printed: datagrams written and dropped, the
    writer's CPU seconds."""
    import tempfile

    from actors import connect
    from transport.capture.writer import PacketCapture

    with tempfile.TemporaryDirectory() as folder:
        capture = PacketCapture(Path(folder) / "read.pcap")
        with connect(host, port, window=window, capture=capture) as client:
            cpu = time.process_time()
            start = time.perf_counter()
            data = client.read(0, 0, BASE, size) if size else b""
            elapsed = time.perf_counter() - start
            cpu = time.process_time() - cpu
        cpu -= time.process_time()
        start = time.perf_counter()
        capture.close()
        elapsed += time.perf_counter() - start
        cpu += time.process_time()
    assert len(data) == size
    mb_per_s = size / max(elapsed, 1e-9) / 1e6
    return (
        f"{mb_per_s} {cpu} {capture.written} {capture.dropped} {capture.writer_seconds}"
    )


CHILDREN: dict[str, Callable[[str, int, int, int], str]] = {
    "bare": bare_loop,
    "bare-latency": bare_version_latency,
    "spinnactors": spinnactors_read,
    "spinnactors-capture": spinnactors_captured_read,
    "spinnactors-latency": spinnactors_version_latency,
    "spinnman": spinnman_read,
}
#: Children that read every board they are given at once, and say the CPU
#: seconds their reads took (a Machine's workers' too).
MANY: dict[str, Callable[[list[Address], int, int], str]] = {
    "bare-boards": bare_boards,
    "machine-0": lambda boards, size, window: spinnactors_boards(
        boards, size, window, 0
    ),
    "machine-2": lambda boards, size, window: spinnactors_boards(
        boards, size, window, 2
    ),
}
