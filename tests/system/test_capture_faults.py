"""A capture fails without harm: a full disk (a real 1 MiB tmpfs, filled
and freed), a FIFO, a pipe's /dev/fd/N, a device node, a link and a
parent directory replaced by a file. The writer thread lives on, what it
could not write is counted and logged once, every file holds whole
records only (read_packets and tshark read each to its end), and only
the regular files the capture made are ever renamed."""

from __future__ import annotations

import errno
import itertools
import logging
import os
import shutil
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from messages.errors import InvalidArgumentError
from transport.capture.file import WARN_INTERVAL
from transport.capture.pcap import Link, read_packets
from transport.capture.writer import PacketCapture

ONE_WAY = Link(("10.0.0.1", 17893), ("10.0.0.2", 40000))
TSHARK = shutil.which("tshark")
#: What the capture logs a failure as (rate-limited).
FAILURES = {
    "capture.open_failed",
    "capture.write_failed",
    "capture.rotate_failed",
    "capture.writer_failed",
}

pytestmark = pytest.mark.timeout(60)


def writer_alive(capture: PacketCapture) -> bool:
    return any(
        t.name == f"capture-{capture.path.name}" and t.is_alive()
        for t in threading.enumerate()
    )


class Sender:
    """Numbered 1000-byte datagrams into a capture whose writer runs only
    when asked (flush), so each step's outcome is known."""

    def __init__(self, capture: PacketCapture) -> None:
        self.capture = capture
        self.sent = 0
        self._numbers = itertools.count()

    def send(self, count: int) -> None:
        for _ in range(count):
            self.capture.add(ONE_WAY, next(self._numbers).to_bytes(4, "big") * 250)
        self.sent += count
        assert self.capture.flush(timeout=20)


def numbers(path: Path) -> list[int]:
    """The datagrams' numbers in a capture file, which must be whole."""
    return [
        int.from_bytes(p.payload[:4], "big") for p in read_packets(path.read_bytes())
    ]


def tshark_reads(path: Path) -> None:
    if TSHARK is None:
        return
    result = subprocess.run(
        [TSHARK, "-r", str(path)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr


def failures(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.levelno == logging.WARNING and r.msg in FAILURES
    ]


def fill(folder: Path) -> Path:
    """A file that takes every byte left on ``folder``'s filesystem."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as file:
        while True:
            try:
                file.write(bytes(4096))
            except OSError as error:
                if error.errno != errno.ENOSPC:
                    raise
                return filler


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs of its own (mounting needs root)."""
    folder = tmp_path / "small"
    folder.mkdir()
    command = ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)]
    try:
        mounted = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        pytest.skip("no mount command here: a small tmpfs cannot be made")
    if mounted.returncode != 0:
        pytest.skip(
            f"cannot mount a 1 MiB tmpfs ({mounted.stderr.strip()}): needs root "
            f"(CAP_SYS_ADMIN); the full-disk test does not run"
        )
    try:
        yield folder
    finally:
        done = subprocess.run(["umount", str(folder)], capture_output=True, timeout=30)
        if done.returncode != 0:  # still busy (a failed test's open file)
            subprocess.run(["umount", "-l", str(folder)], check=True, timeout=30)


def test_a_full_disk_is_counted_logged_once_and_the_capture_resumes_whole(
    small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="transport.capture.writer")
    path = small_disk / "x.pcap"
    capture = PacketCapture(path, max_packets=40, files=3, flush_interval=60)
    sender = Sender(capture)
    sender.send(40)  # x.pcap is full
    filler = fill(small_disk)
    started = time.monotonic()
    # The rotation comes with the disk full: x.pcap becomes x.pcap.1, the
    # new file finds no room for its header (and is not left behind).
    sender.send(10)
    assert capture.written == 40 and capture.dropped == 10
    assert capture.write_errors >= 1
    assert not path.exists()
    for _ in range(20):  # still full: counted, not logged again
        sender.send(5)
    failing = time.monotonic() - started
    assert writer_alive(capture)
    assert capture.write_errors >= 21
    assert capture.dropped == 110 and capture.pending_bytes == 0
    assert 1 <= len(failures(caplog)) <= 1 + failing / WARN_INTERVAL
    # Two pages of room: a new file, and the whole records of a batch that
    # fit before the disk filled again (the rest of it cut back off).
    os.truncate(filler, filler.stat().st_size - 8192)
    sender.send(20)
    gained = capture.written - 40
    assert 0 < gained < 20
    assert numbers(path) == list(range(150, 150 + gained))
    filler.unlink()
    sender.send(30)
    assert writer_alive(capture)
    capture.close()
    assert capture.written + capture.dropped == sender.sent
    assert numbers(Path(f"{path}.1")) == list(range(40))
    assert numbers(path) == [*range(150, 150 + gained), *range(170, 200)]
    assert capture.written == 40 + gained + 30
    for file in (path, Path(f"{path}.1")):
        tshark_reads(file)
    assert [r.msg for r in caplog.records if r.msg == "capture.resumed"] == [
        "capture.resumed"
    ]
    closing = [r for r in caplog.records if r.msg == "capture.closed"]
    assert closing[0].levelno == logging.WARNING
    assert closing[0].__dict__["write_errors"] == capture.write_errors


def drain(fd: int) -> tuple[threading.Thread, list[bytes]]:
    """A thread that reads ``fd`` to its end."""
    chunks: list[bytes] = []

    def run() -> None:
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)

    thread = threading.Thread(target=run, name="drain", daemon=True)
    thread.start()
    return thread, chunks


def test_a_fifo_is_a_stream_never_renamed_whole_across_rotations(
    tmp_path: Path,
) -> None:
    fifo = tmp_path / "live.pcap"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        with PacketCapture(fifo, max_packets=10, files=3) as capture:
            os.set_blocking(reader, True)
            thread, chunks = drain(reader)
            sender = Sender(capture)
            sender.send(45)  # four rotations, were it a file
            assert capture.stream
        thread.join(timeout=20)
        assert not thread.is_alive()
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["live.pcap"]
    stream = b"".join(chunks)
    assert [int.from_bytes(p.payload[:4], "big") for p in read_packets(stream)] == list(
        range(45)
    )
    assert capture.written == 45 and capture.write_errors == 0


@pytest.mark.timeout(20)
def test_a_fifo_s_readers_may_come_late_and_go_each_gets_a_whole_stream(
    tmp_path: Path,
) -> None:
    """No reader yet: the capture opens without waiting (it used to block
    its caller for good) and counts what it cannot write; a reader that
    goes away is counted too, and the next one gets a stream of its own,
    header first."""
    fifo = tmp_path / "live.pcap"
    os.mkfifo(fifo)
    capture = PacketCapture(fifo, flush_interval=60)
    sender = Sender(capture)
    sender.send(5)  # nobody reads
    assert capture.written == 0 and capture.dropped == 5
    first = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    sender.send(5)
    early = os.read(first, 1 << 16)
    os.close(first)
    sender.send(5)  # the reader went away
    assert capture.written == 5 and capture.dropped == 10
    second = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        sender.send(5)
        capture.close()
        late = os.read(second, 1 << 16)
    finally:
        os.close(second)
    assert [int.from_bytes(p.payload[:4], "big") for p in read_packets(early)] == list(
        range(5, 10)
    )
    assert [int.from_bytes(p.payload[:4], "big") for p in read_packets(late)] == list(
        range(15, 20)
    )
    assert capture.write_errors >= 3 and capture.opened == 2
    assert not writer_alive(capture)


def test_a_pipe_s_dev_fd_path_is_written_as_a_stream(tmp_path: Path) -> None:
    """``--capture >(tshark -i -)`` hands the capture /dev/fd/N of a pipe:
    nothing of it can be renamed, and its first rotation killed the writer."""
    read_end, write_end = os.pipe()
    try:
        thread, chunks = drain(read_end)
        with PacketCapture(f"/dev/fd/{write_end}", max_packets=10) as capture:
            Sender(capture).send(45)
        os.close(write_end)
        thread.join(timeout=20)
        assert not thread.is_alive()
    finally:
        os.close(read_end)
    stream = b"".join(chunks)
    assert len(list(read_packets(stream))) == 45
    assert capture.written == 45 and capture.write_errors == 0


def test_a_device_node_is_never_renamed_or_replaced(tmp_path: Path) -> None:
    node = tmp_path / "null"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("making a device node needs root (CAP_MKNOD)")
    link = tmp_path / "to-null"
    link.symlink_to(node)
    for path in (node, link):
        with PacketCapture(path, max_packets=10, files=3) as capture:
            Sender(capture).send(45)
        assert capture.stream and capture.opened == 1
        assert capture.written == 45 and capture.write_errors == 0
    info = os.lstat(node)
    assert stat.S_ISCHR(info.st_mode) and info.st_rdev == os.makedev(1, 3)
    assert link.is_symlink() and link.resolve() == node
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null", "to-null"]


def test_a_link_to_someone_else_s_file_is_refused_and_the_file_untouched(
    tmp_path: Path,
) -> None:
    precious = tmp_path / "someone-else.txt"
    precious.write_bytes(b"not the capture's")
    link = tmp_path / "x.pcap"
    link.symlink_to(precious)
    with pytest.raises(InvalidArgumentError, match="link to the regular file"):
        PacketCapture(link, max_packets=10)
    assert precious.read_bytes() == b"not the capture's"
    assert link.is_symlink()
    assert not [t for t in threading.enumerate() if t.name == "capture-x.pcap"]


def test_a_parent_folder_replaced_by_a_file_is_counted_and_outlived(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "run"
    path = folder / "x.pcap"
    capture = PacketCapture(path, max_packets=10, files=3, flush_interval=60)
    sender = Sender(capture)
    sender.send(5)
    started = time.monotonic()
    folder.rename(tmp_path / "moved")
    folder.write_bytes(b"a file where the folder was")
    # 5 more fill the open file (where it went); its rotation fails.
    sender.send(20)
    assert capture.written == 10 and capture.dropped == 15
    for _ in range(10):
        sender.send(3)
    assert writer_alive(capture)
    assert capture.write_errors >= 11 and capture.dropped == 45
    assert (
        1 <= len(failures(caplog)) <= 1 + (time.monotonic() - started) / WARN_INTERVAL
    )
    folder.unlink()
    (tmp_path / "moved").rename(folder)
    sender.send(10)  # the rotation goes through now
    capture.close()
    assert numbers(Path(f"{path}.1")) == list(range(10))
    assert numbers(path) == list(range(55, 65))
    assert capture.written + capture.dropped == sender.sent


def test_an_error_nobody_foresaw_does_not_end_the_writer(tmp_path: Path) -> None:
    capture = PacketCapture(tmp_path / "x.pcap", flush_interval=60)
    sender = Sender(capture)

    def broken(chunk: list[bytes]) -> None:
        raise RuntimeError("a bug in the writer")

    put = capture._file._put
    capture._file._put = broken  # type: ignore[method-assign]
    sender.send(3)
    assert writer_alive(capture)
    assert capture.dropped == 3 and capture.write_errors == 1
    capture._file._put = put  # type: ignore[method-assign]
    sender.send(4)
    capture.close()
    assert numbers(tmp_path / "x.pcap") == [3, 4, 5, 6]
