"""Progress of a long transfer: a rich bar on a terminal, silence in a pipe.

A large read or write goes to the client as pieces (jobs of PIECE bytes,
pipelined together) so that their outcomes, as they come, can move a bar.
"""

from __future__ import annotations

from collections.abc import Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.progress import Progress as RichProgress

from actors.app.terminal import shows_bars
from actors.board.client import Client
from actors.protocol.jobs import Job, Outcome, ReadJob, WriteJob

#: Bytes a piece: small enough for a smooth bar, large enough to pipeline.
PIECE = 256 * 1024
#: Transfers smaller than this draw no bar: they are over before it shows.
MIN_BAR = 1 << 20


class Progress:
    """A bar (bytes, MB/s, time left, resends and restarts) on a terminal
    console; nothing on a pipe, with JSON logs, or for a small transfer."""

    def __init__(self, console: Console | None, total: int, label: str) -> None:
        self.done = 0
        self._bar: RichProgress | None = None
        if console is None or not shows_bars(console) or total < MIN_BAR:
            return
        self._bar = RichProgress(
            TextColumn("{task.description:<6}"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            TextColumn("resends {task.fields[resends]}"),
            TextColumn("restarts {task.fields[restarts]}"),
            console=console,
        )
        self._task = self._bar.add_task(label, total=total, resends=0, restarts=0)
        self._bar.start()

    def advance(self, count: int, client: Client) -> None:
        self.done += count
        if self._bar is not None:
            self._bar.update(
                self._task,
                advance=count,
                resends=client.stats().resent,
                restarts=client.supervision().restarts,
            )

    def finish(self, completed: bool = True) -> None:
        """Stop drawing; a bar that did not complete is taken off screen."""
        bar, self._bar = self._bar, None
        if bar is not None:
            bar.live.transient = not completed
            bar.stop()


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
    completed = False
    try:
        for outcome in client.stream(jobs):
            if outcome.error is not None:
                raise outcome.error
            bar.advance(sizes[outcome.key], client)
            yield outcome
        completed = True
    finally:
        bar.finish(completed)


def read_with_progress(
    client: Client,
    x: int,
    y: int,
    p: int,
    address: int,
    length: int,
    console: Console | None,
) -> bytearray:
    """client.read(), in pieces, with a bar on ``console``."""
    data = bytearray(length)
    bar = Progress(console, length, "read")
    for outcome in run_pieces(client, read_pieces(x, y, p, address, length), bar):
        start = piece_offset(outcome)
        data[start : start + len(outcome.value)] = outcome.value
    return data


def write_with_progress(
    client: Client,
    x: int,
    y: int,
    p: int,
    address: int,
    data: bytes,
    console: Console | None,
) -> None:
    """client.write(), in pieces, with a bar on ``console``."""
    bar = Progress(console, len(data), "write")
    for _ in run_pieces(client, write_pieces(x, y, p, address, data), bar):
        pass
