"""Progress of a long transfer: a bar on a terminal, silence in a pipe.

A large read or write goes to the client as pieces (jobs of PIECE bytes,
pipelined together) so that their outcomes, as they come, can move a bar.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TextIO

from actors.board.client import Client
from actors.protocol.jobs import Job, Outcome, ReadJob, WriteJob

#: Bytes a piece: small enough for a smooth bar, large enough to pipeline.
PIECE = 256 * 1024


class Progress:
    """A one-line bar (bytes, MB/s, resends) when ``stream`` is a
    terminal; nothing otherwise."""

    def __init__(self, stream: TextIO, total: int, label: str) -> None:
        self._stream = stream
        self._live = stream.isatty()
        self._total = total
        self._label = label
        self._start = time.perf_counter()
        self.done = 0

    def advance(self, count: int, client: Client) -> None:
        self.done += count
        if not self._live:
            return
        elapsed = max(time.perf_counter() - self._start, 1e-9)
        resent = client.stats().resent
        filled = int(30 * self.done / max(self._total, 1))
        self._stream.write(
            f"\r{self._label:<6}[{'#' * filled}{'.' * (30 - filled)}] "
            f"{self.done / 2**20:6.2f}/{self._total / 2**20:.2f} MiB "
            f"{self.done / elapsed / 1e6:6.2f} MB/s  resends {resent}"
        )
        self._stream.flush()

    def finish(self) -> None:
        if self._live:
            self._stream.write("\n")
            self._stream.flush()


def read_pieces(
    x: int, y: int, p: int, address: int, length: int, key: object = None
) -> list[Job]:
    """ReadJobs covering ``length`` bytes; keys (key, offset)."""
    return [
        ReadJob((key, start), x, y, p, address + start, min(PIECE, length - start))
        for start in range(0, length, PIECE)
    ]


def write_pieces(
    x: int, y: int, p: int, address: int, data: bytes, key: object = None
) -> list[Job]:
    """WriteJobs covering ``data``; keys (key, offset)."""
    return [
        WriteJob((key, start), x, y, p, address + start, data[start : start + PIECE])
        for start in range(0, len(data), PIECE)
    ]


def piece_offset(outcome: Outcome) -> int:
    """Where a piece made by read_pieces/write_pieces starts."""
    key = outcome.key
    assert isinstance(key, tuple)
    assert len(key) == 2
    return int(key[1])


def run_pieces(client: Client, jobs: list[Job], bar: Progress) -> Iterator[Outcome]:
    """Each piece's outcome as it ends, moving the bar; raises the first
    error."""
    sizes = {
        job.key: (
            job.length
            if isinstance(job, ReadJob)
            else len(job.data)
            if isinstance(job, WriteJob)
            else 0
        )
        for job in jobs
    }
    try:
        for outcome in client.stream(jobs):
            if outcome.error is not None:
                raise outcome.error
            bar.advance(sizes[outcome.key], client)
            yield outcome
    finally:
        bar.finish()


def read_with_progress(
    client: Client, x: int, y: int, p: int, address: int, length: int, stream: TextIO
) -> bytearray:
    """client.read(), in pieces, with a bar on ``stream``."""
    data = bytearray(length)
    bar = Progress(stream, length, "read")
    for outcome in run_pieces(client, read_pieces(x, y, p, address, length), bar):
        start = piece_offset(outcome)
        data[start : start + len(outcome.value)] = outcome.value
    return data


def write_with_progress(
    client: Client, x: int, y: int, p: int, address: int, data: bytes, stream: TextIO
) -> None:
    """client.write(), in pieces, with a bar on ``stream``."""
    bar = Progress(stream, len(data), "write")
    for _ in run_pieces(client, write_pieces(x, y, p, address, data), bar):
        pass
