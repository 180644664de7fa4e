"""What an operator's scrape shows at awkward moments: a virtual board
whose thread has not run yet is in the scrape as soon as start() returns,
and a board whose connection does not answer in time stays in it, down."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from actors.metrics import serve
from tests.system.test_metrics import scrape
from transport import VirtualBoard


@contextmanager
def thread_held(name: str) -> Iterator[threading.Event]:
    """The thread called ``name``, once started, waits before it runs
    anything until the event is set (as a loaded machine may schedule a
    new thread late); other threads run as usual."""
    release = threading.Event()
    previous = threading.gettrace()

    def hold(frame: FrameType, event: str, arg: Any) -> None:
        sys.settrace(None)  # (for this thread: once is enough)
        if threading.current_thread().name == name:
            release.wait(20)

    threading.settrace(hold)
    try:
        yield release
    finally:
        threading.settrace(previous)  # type: ignore[arg-type]
        release.set()


@pytest.mark.timeout(60)
def test_a_board_is_in_the_scrape_as_soon_as_start_returns() -> None:
    with serve(0, registry=CollectorRegistry()) as server:
        board = VirtualBoard(2, 2)
        label = board.address_text
        try:
            with thread_held(f"board-{label}"):
                board.start()  # its thread has not run a line yet
                samples = scrape(server)
            assert ("spinnactors_board_requests_total", (("board", label),)) in samples
        finally:
            board.stop()
