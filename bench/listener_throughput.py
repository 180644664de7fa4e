"""How many messages a second a ConnectionListener delivers to callbacks.

A virtual board in its own process streams SDP datagrams to an IP tag at a
fixed rate; a ConnectionListener with 4 callback actors (one callback each,
which keeps up: it only counts) receives them for a few seconds. Reported:
the rate offered, the rate delivered to each callback, and the loss.
Target (issue 4): at least 50,000 messages a second without loss.

    python bench/listener_throughput.py [--rate 60000] [--seconds 3]
"""

from __future__ import annotations

import argparse
import multiprocessing
import struct
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from actors.compat.connection_listener import ConnectionListener  # noqa: E402
from actors.listening.listener import ListenerStats  # noqa: E402
from messages.scp import IPTagSet  # noqa: E402
from messages.sdp import SDPMessage  # noqa: E402
from transport import SCAMPConnection, SDPConnection, VirtualBoard  # noqa: E402
from transport.connections.call import call  # noqa: E402
from transport.virtual.traffic import TagTraffic  # noqa: E402

TARGET = 50_000


def _serve(rate: float, pipe: Connection) -> None:
    board = VirtualBoard(2, 2, traffic=TagTraffic(rate, 16))
    pipe.send(board.address)
    board.start()
    pipe.recv()
    sent = dict(board.traffic.sent) if board.traffic else {}
    board.stop()
    pipe.send(sent)


class Counter:
    """A callback that keeps up: counts, and checks the order."""

    def __init__(self) -> None:
        self.count = 0
        self.last = -1
        self.out_of_order = 0

    def __call__(self, message: SDPMessage) -> None:
        assert message.data is not None
        (number,) = struct.unpack_from("<I", message.data, message.offset)
        if number <= self.last:
            self.out_of_order += 1
        self.last = number
        self.count += 1


def _settled(listener: ConnectionListener[SDPMessage]) -> ListenerStats | None:
    """The listener's counts once it has read what the board sent and the
    callbacks have caught up (close() drops what is still queued), or
    after 5 s."""
    deadline = time.monotonic() + 5.0
    last = listener.stats()
    while time.monotonic() < deadline:
        time.sleep(0.01)
        stats = listener.stats()
        if (
            stats is not None
            and last is not None
            and stats.received == last.received
            and not any(stats.backlogs)
        ):
            return stats
        last = stats
    return last


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=60_000)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    pipe, child = context.Pipe()
    process = context.Process(target=_serve, args=(args.rate, child))
    process.start()
    host, port = pipe.recv()
    listen = SDPConnection(local_host="127.0.0.1")
    listener: ConnectionListener[SDPMessage] = ConnectionListener(listen, n_processes=4)
    counters = [Counter() for _ in range(4)]
    for counter in counters:
        listener.add_callback(counter)
    listener.start()
    with SCAMPConnection(remote_host=host, remote_port=port) as scamp:
        call(scamp, IPTagSet(0, 0, "127.0.0.1", listen.local_port, 1))
    start = time.monotonic()
    time.sleep(args.seconds)
    pipe.send("stop")
    sent = pipe.recv().get(1, 0)
    elapsed = time.monotonic() - start
    stats = _settled(listener)
    done = threading.Event()
    listener.close()
    done.set()
    listen.close()
    process.join(10)
    offered = sent / elapsed
    delivered = [counter.count for counter in counters]
    print(
        f"board sent {sent} datagrams in {elapsed:.2f} s "
        f"({offered:,.0f}/s) to one IP tag"
    )
    print(
        f"delivered to each of 4 callbacks: {delivered} "
        f"(out of order: {[c.out_of_order for c in counters]})"
    )
    print(f"listener: {stats}; dropped on close: {listener.dropped_on_close}")
    rate = min(delivered) / elapsed
    lost = sent - min(delivered)
    print(
        f"delivered {rate:,.0f} messages/s per callback, lost {lost} "
        f"({lost / max(sent, 1):.2%}); target >= {TARGET:,}/s without "
        f"loss: {'met' if rate >= TARGET and lost == 0 else 'MISSED'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
