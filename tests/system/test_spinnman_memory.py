"""SpiNNMan's Transceiver.read_memory and write_memory after install(): a
transfer of more than one 256-byte piece runs whole, as one job on the
connection's shared actor, against the virtual board on 127.0.0.1 (real
UDP, SpiNNMan's Transceiver unmodified); what the board holds is checked,
and failures raise what plain SpiNNMan raises.
"""

from __future__ import annotations

import importlib
import io
import re
import socket
import struct
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import fields
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import spinnman.processes as processes
import spinnman.processes.load_routes_process as load_routes_process
import spinnman.processes.read_memory_process as read_memory_process
import spinnman.processes.write_memory_process as write_memory_process
import spinnman.transceiver.base_transceiver as base_transceiver
from spinnman.connections.udp_packet_connections import SCAMPConnection
from spinnman.exceptions import (
    SpinnmanGenericProcessException,
    SpinnmanGroupedProcessException,
)
from spinnman.processes import RoundRobinConnectionSelector

from actors.compat import Transfers, bridge, installed, transfers
from tests.system.spinnman_kit import transceiver
from transport import VirtualBoard

BASE = 0x6000_0000
KIB = 1024
MIB = 1 << 20
#: Where SpiNNMan binds its memory processes (each module's own copy);
#: loaded before install() (the Transceiver's import loads
#: ExtendedTransceiver's, which cannot be imported first).
HOMES = (
    base_transceiver,
    importlib.import_module("spinnman.extended.extended_transceiver"),
    load_routes_process,
    processes,
    read_memory_process,
    write_memory_process,
)

pytestmark = pytest.mark.usefixtures("spinnman_setup")


def since(before: Transfers) -> Transfers:
    now = transfers()
    return Transfers(
        **{f.name: getattr(now, f.name) - getattr(before, f.name) for f in fields(now)}
    )


def bound() -> set[tuple[type, type]]:
    """The (ReadMemoryProcess, WriteMemoryProcess) the homes bind (each
    binds one or both)."""
    read = {m.__dict__.get("ReadMemoryProcess") for m in HOMES} - {None}
    write = {m.__dict__.get("WriteMemoryProcess") for m in HOMES} - {None}
    return {(r, w) for r in read for w in write}  # type: ignore[misc]


def spinnmans_sum(data: bytes | bytearray) -> int:
    """SpiNNMan's checksum: the 32-bit words of all the data, summed."""
    words: tuple[int, ...] = struct.unpack(f"<{len(data) // 4}I", data)
    return sum(words) & 0xFFFFFFFF


@pytest.mark.timeout(60)
def test_transceiver_reads_and_writes_run_whole_and_hold_on_the_board(
    tmp_path: Path,
) -> None:
    data = bytes((i * 7 + i // 251) & 0xFF for i in range(300 * KIB + 12))
    from_file = data[::-1][: 200 * KIB + 4]
    path = tmp_path / "image.bin"
    path.write_bytes(from_file)
    elsewhere = bytes(range(256)) * 40 + b"tail"
    with VirtualBoard(2, 2) as board, installed():
        assert bound() == {(bridge.ReadMemoryProcess, bridge.WriteMemoryProcess)}
        with transceiver(board.address) as txrx:
            before = transfers()
            # Unaligned, not a whole number of pieces; part of a buffer.
            written = txrx.write_memory(1, 1, BASE + 2, data)
            # (SpiNNMan sums a bytearray: its sum of bytes raises)
            buffer: Any = bytearray(data)
            summed = txrx.write_memory(
                1, 1, BASE + MIB, buffer, offset=256, n_bytes=KIB, get_sum=True
            )
            from_path = txrx.write_memory(0, 1, BASE, str(path), get_sum=True)
            back = txrx.read_memory(1, 1, BASE + 2, len(data))
            part = txrx.read_memory(1, 1, BASE + MIB, KIB)
            # Written another way (the board's own memory), read through
            # SpiNNMan.
            board.monitor.memory.write(1, BASE + MIB, elsewhere)  # chip 0,1
            seen = txrx.read_memory(0, 1, BASE + MIB, len(elsewhere))
        held = board.monitor.memory.read((1 << 8) | 1, BASE + 2, len(data))
        held_file = board.monitor.memory.read(1, BASE, len(from_file))
    assert written == (len(data), 0)
    assert summed == (KIB, spinnmans_sum(data))
    assert from_path == (len(from_file), spinnmans_sum(from_file))
    assert isinstance(back, bytearray)
    assert back == data == held
    assert part == data[256 : 256 + KIB]
    assert held_file == from_file
    assert seen == elsewhere
    moved = since(before)
    assert (moved.reads, moved.writes, moved.failed, moved.handed_back) == (3, 3, 0, 0)
    assert moved.read_bytes == len(data) + KIB + len(elsewhere)
    assert moved.written_bytes == len(data) + KIB + len(from_file)


def test_uninstall_puts_spinnmans_memory_processes_back_everywhere() -> None:
    originals = {(bridge.ORIGINAL_READ, bridge.ORIGINAL_WRITE)}
    assert bound() == originals
    with installed():
        assert bound() == {(bridge.ReadMemoryProcess, bridge.WriteMemoryProcess)}
        assert issubclass(bridge.ReadMemoryProcess, bridge.ORIGINAL_READ)
        assert issubclass(bridge.WriteMemoryProcess, bridge.ORIGINAL_WRITE)
    assert bound() == originals


def silent_board() -> socket.socket:
    """A board that never answers: a socket that takes every datagram."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def reported(error: BaseException) -> list[tuple[str, str, str]]:
    """Each failed piece a SpiNNMan process exception reports: its
    exception's class, message and destination (stack traces differ)."""
    text = str(error)
    return re.findall(
        r"Received exception class: (\w+)\s*\n\s*With message:? (.*?)\s*\n"
        r"\s*When sending to (?:board \S+ with ethernet chip \S+ )?(\S+)",
        text,
    )


@pytest.mark.timeout(60)
@pytest.mark.parametrize("on", [False, True], ids=["spinnman", "installed"])
def test_a_dead_board_fails_each_piece_as_plain_spinnman(on: bool) -> None:
    """SpiNNMan's defaults (10 retries of 1 s): 11 s to give up either way
    (a read and a write, each from its own dead board, side by side).
    Every piece of a 1 KiB transfer fails with SpinnmanTimeoutException,
    grouped, as plain SpiNNMan reports it; installed, each transfer was
    tried whole, and its message says what was done (where, how many
    sends, how long: a wait there adapts, so packet_timeout says little)."""
    where: dict[str, str] = {}

    def fail(operation: str) -> SpinnmanGroupedProcessException:
        with silent_board() as sock, transceiver(sock.getsockname()) as txrx:
            where[operation] = "{}:{}".format(*sock.getsockname())
            transfer = (
                partial(txrx.read_memory, 0, 0, BASE, KIB)
                if operation == "read"
                else partial(txrx.write_memory, 0, 0, BASE, bytes(KIB))
            )
            with pytest.raises(SpinnmanGroupedProcessException) as raised:
                transfer()
            return raised.value

    with installed() if on else nullcontext():
        before = transfers()
        with ThreadPoolExecutor(2) as pool:
            operations = ("read", "write")
            errors = dict(zip(operations, pool.map(fail, operations), strict=True))
        moved = since(before)
    for operation, error in errors.items():
        command = "CMD_READ" if operation == "read" else "CMD_WRITE"
        pieces = reported(error)
        assert [(kind, core) for kind, _, core in pieces] == [
            ("SpinnmanTimeoutException", "[0:0:0()]")
        ] * 4
        texts = {text for _, text, _ in pieces}
        if not on:
            assert texts == {
                f"Operation SCPCommand.{command} timed out after 1.0 seconds"
            }
            continue
        (text,) = texts  # (the transfer's one error, for each of its pieces)
        assert re.fullmatch(
            rf"Operation SCPCommand\.{command} timed out: {operation} at 0x[0-9a-f]+ "
            rf"on 0,0,0 seq=\d+: no reply from {re.escape(where[operation])} after "
            r"11 tries in \d+\.\d s; check the address, or that a board answers "
            r"there \(spinnactors board serves a virtual one\)",
            text,
        ), text
    done = (moved.reads, moved.writes, moved.failed, moved.handed_back)
    assert done == ((1, 1, 2, 0) if on else (0, 0, 0, 0))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("size", [4, KIB])
@pytest.mark.parametrize("on", [False, True], ids=["spinnman", "installed"])
def test_a_read_the_board_refuses_raises_as_plain_spinnman(size: int, on: bool) -> None:
    """A chip the board has no route to: RC_ROUTE for every piece, each
    SpiNNMan's SpinnmanUnexpectedResponseCodeException, one piece's
    wrapped in SpinnmanGenericProcessException. Installed, a transfer of
    more pieces was tried whole, then read again SpiNNMan's way."""
    with VirtualBoard(2, 2) as board, installed() if on else nullcontext():
        with transceiver(board.address) as txrx:
            before = transfers()
            with pytest.raises(
                SpinnmanGenericProcessException
                if size == 4
                else SpinnmanGroupedProcessException
            ) as raised:
                txrx.read_memory(7, 7, BASE, size)
        moved = since(before)
    if size == 4:
        assert isinstance(raised.value, SpinnmanGenericProcessException)
        inner = raised.value.exception
        assert type(inner).__name__ == "SpinnmanUnexpectedResponseCodeException"
        assert "RC_ROUTE" in str(inner)
    else:
        assert [name for name, _, _ in reported(raised.value)] == [
            "SpinnmanUnexpectedResponseCodeException"
        ] * 4
    tried_whole = 1 if on and size > 256 else 0
    assert (moved.reads, moved.failed) == (tried_whole, tried_whole)
    assert moved.handed_back == (1 if on else 0)


class CountingConnection(SCAMPConnection):
    """A SpiNNMan connection that counts what it sends: its own send must
    be used, so it is driven through its methods, piece by piece."""

    sent = 0

    def send(self, data: bytes) -> None:
        CountingConnection.sent += 1
        super().send(data)


@pytest.mark.timeout(60)
def test_connections_and_selectors_spinnman_must_drive_get_its_own_pieces() -> None:
    data = bytes(range(256)) * 64
    with VirtualBoard(2, 2) as board, installed():
        host, port = board.address
        with transceiver(board.address, CountingConnection) as txrx:
            before, sent = transfers(), CountingConnection.sent
            txrx.write_memory(0, 0, BASE, data)
            back = txrx.read_memory(0, 0, BASE, len(data))
        through_methods = CountingConnection.sent - sent
        moved = since(before)
        # A selector that may choose per piece, on a plain connection.
        plain = SCAMPConnection(0, 0, remote_host=host, remote_port=port)
        try:
            process = processes.ReadMemoryProcess(RoundRobinConnectionSelector([plain]))
            spread = process.read_memory((0, 0, 0), BASE, len(data))
        finally:
            plain.close()
        moved_again = since(before)
    assert back == spread == data
    assert through_methods >= 2 * len(data) // 256
    assert (moved.reads, moved.writes, moved.handed_back) == (0, 0, 2)
    assert (moved_again.reads, moved_again.handed_back) == (0, 3)


class Trickle(io.RawIOBase):
    """A file-like reader that hands out at most 100 bytes a read (as a
    pipe or socket may): SpiNNMan writes what each read gave, where the
    last left off."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._at = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = min(len(buffer), 100, len(self._data) - self._at)
        buffer[:size] = self._data[self._at : self._at + size]
        self._at += size
        return size


@pytest.mark.timeout(60)
@pytest.mark.parametrize("on", [False, True], ids=["spinnman", "installed"])
def test_a_reader_giving_short_reads_is_written_as_spinnman_writes_it(
    on: bool,
) -> None:
    """More than a segment (1 MiB) from a reader, with its checksum: the
    board holds it all, and the call returns what plain SpiNNMan's does."""
    data = bytes((i * 13 + i // 997) & 0xFF for i in range(MIB + 300))
    with VirtualBoard(2, 2) as board, installed() if on else nullcontext():
        with transceiver(board.address) as txrx:
            before = transfers()
            reader: Any = Trickle(data)  # (SpiNNMan takes an io.RawIOBase)
            result = txrx.write_memory(
                1, 0, BASE, reader, n_bytes=len(data), get_sum=True
            )
        moved = since(before)
        held = board.monitor.memory.read(1 << 8, BASE, len(data))
    assert held == data
    assert result == (len(data), spinnmans_sum(data))
    assert (moved.writes, moved.written_bytes) == ((1, len(data)) if on else (0, 0))
