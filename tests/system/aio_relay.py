"""A UDP relay between a client and a VirtualBoard, for tests that must
decide when a request reaches the board: real sockets on 127.0.0.1.

While ``held`` it keeps the client's datagrams back (counting them);
``release()`` forwards what it kept and everything after. Replies go back
to the client as they come. Tests wait on its counts through a Condition,
never on sleep.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from collections.abc import Callable

from transport.links.endpoint import Address


class Relay:
    def __init__(self, board: Address, *, held: bool = True) -> None:
        self._board = board
        self._front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._front.bind(("127.0.0.1", 0))
        self._back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._back.bind(("127.0.0.1", 0))
        self.address: Address = self._front.getsockname()
        self._client: Address | None = None
        self._held = held
        self._kept: list[bytes] = []
        self._changed = threading.Condition()
        #: Datagrams from the client, forwarded to the board, and replies
        #: sent back to the client.
        self.received = 0
        self.forwarded = 0
        self.replied = 0
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="test-relay")
        self._thread.start()

    def release(self) -> None:
        """Forward what was kept, and everything from now on."""
        with self._changed:
            self._held = False
            kept, self._kept = self._kept, []
        for datagram in kept:
            self._forward(datagram)

    def hold(self) -> None:
        with self._changed:
            self._held = True

    def wait_for(self, condition: Callable[[Relay], bool], timeout: float = 20) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: condition(self), timeout), (
                f"relay: received {self.received}, forwarded {self.forwarded}, "
                f"replied {self.replied}"
            )

    def close(self) -> None:
        self._stop = True
        self._thread.join(10)
        self._front.close()
        self._back.close()

    def _forward(self, datagram: bytes) -> None:
        self._back.sendto(datagram, self._board)
        with self._changed:
            self.forwarded += 1
            self._changed.notify_all()

    def _run(self) -> None:
        while not self._stop:
            readable, _, _ = select.select([self._front, self._back], [], [], 0.05)
            for sock in readable:
                with contextlib.suppress(OSError):
                    data, sender = sock.recvfrom(65536)
                    if sock is self._front:
                        self._client = sender
                        with self._changed:
                            self.received += 1
                            keep = self._held
                            if keep:
                                self._kept.append(data)
                            self._changed.notify_all()
                        if not keep:
                            self._forward(data)
                    elif self._client is not None:
                        self._front.sendto(data, self._client)
                        with self._changed:
                            self.replied += 1
                            self._changed.notify_all()
