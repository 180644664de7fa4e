"""Loopback addresses for tests that need UDP port 54321.

Port 54321 is fixed by the boot protocol, so each test (and each helper
running the suite beside it) needs an address of its own: these bind the
first 127.0.0.x, from a given one, where the port is free.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import TypeVar

from transport.virtual.rom import first_free_loopback

T = TypeVar("T")
BOOT_PORT = 54321


def first_free(start: int, bind: Callable[[str], T]) -> T:
    """``bind(host)`` on the first 127.0.0.x from ``start`` where it works
    (the library's first_free_loopback, which cold boards use too)."""
    return first_free_loopback(bind, start)


def udp_socket(
    port: int = BOOT_PORT, timeout: float = 10.0
) -> Callable[[str], socket.socket]:
    """A binder of plain UDP sockets on ``port`` (a stand-in board or BMP)."""

    def bind(host: str) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
        sock.settimeout(timeout)
        return sock

    return bind
