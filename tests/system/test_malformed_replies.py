"""A malformed reply with the right sequence number is a loss, not an
answer: the request is sent again within its budget, and only when every
try was answered badly does the caller get MalformedReply (a
MalformedDatagramError) naming the sequence number and the tries."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable

import pytest

import actors
from actors.errors import MalformedReply
from messages.errors import MalformedDatagramError
from transport import VirtualBoard

#: Each test fails if it leaves an actor or a thread running.
pytestmark = pytest.mark.usefixtures("actor_system")


class Spoiler:
    """A UDP proxy in front of a board that spoils the replies ``spoil``
    picks (by their number, from 0) by cutting them short."""

    def __init__(self, board: tuple[str, int], spoil: Callable[[int], bool]) -> None:
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind(("127.0.0.1", 0))
        self.front.settimeout(0.05)
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.connect(board)
        self.back.settimeout(1.0)
        self.address = self.front.getsockname()
        self.spoil = spoil
        self.replies = 0
        #: The sequence numbers of the requests that came, in order.
        self.sequences: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                request, client = self.front.recvfrom(1024)
            except TimeoutError:
                continue
            self.sequences.append(int.from_bytes(request[12:14], "little"))
            self.back.send(request)
            reply = self.back.recv(1024)
            if self.spoil(self.replies):
                reply = reply[:-3]
            self.replies += 1
            self.front.sendto(reply, client)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.front.close()
        self.back.close()


@pytest.mark.timeout(30)
def test_a_truncated_version_reply_is_resent_and_the_second_answer_taken() -> None:
    with VirtualBoard(2, 2) as board:
        spoiler = Spoiler(board.address, lambda n: n % 2 == 0)
        try:
            with actors.connect(*spoiler.address) as client:
                for _ in range(5):
                    assert client.version(1, 1, 0).name == "SC&MP"
                stats = client.stats()
        finally:
            spoiler.close()
    assert stats.malformed == 5 and stats.resent == 5
    assert stats.failed == 0


@pytest.mark.timeout(30)
def test_only_malformed_replies_end_in_malformed_reply_after_every_try() -> None:
    with VirtualBoard(2, 2) as board:
        # Every reply is cut short: the read's too (4 tries, then its own
        # MalformedReply), so the version goes with another sequence.
        spoiler = Spoiler(board.address, lambda n: True)
        try:
            with actors.connect(*spoiler.address, retries=3) as client:
                with pytest.raises(MalformedReply, match="after 4 tries"):
                    client.read(0, 0, 0x6000_0000, 8)
                with pytest.raises(MalformedReply) as caught:
                    client.version(0, 0, 0)
                stats = client.stats()
        finally:
            spoiler.close()
    assert isinstance(caught.value, MalformedDatagramError)
    message = str(caught.value)
    assert "after 4 tries" in message
    seq = int(re.search(r"seq=(\d+)", message).group(1))  # type: ignore[union-attr]
    assert seq != 0 and spoiler.sequences[-4:] == [seq] * 4
    assert stats.malformed == 8
