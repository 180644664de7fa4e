"""actors.aio.listen against real UDP sockets on 127.0.0.1: messages in
order, a bounded backlog with counted drops, and an ``async for`` that
ends with the error when its connection is closed under it."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Iterator
from typing import cast

import pytest

from actors import aio
from messages import SDPMessage
from transport import UDPConnection
from transport.errors import ConnectionClosed


@pytest.fixture
def sender() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        yield sock


async def until(condition: object, what: str, limit: float = 20.0) -> None:
    """Wait (yielding to the loop) until ``condition()`` holds: a wait on
    a count, bounded by ``limit``."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while not condition():  # type: ignore[operator]
        assert loop.time() < end, f"never: {what}"
        await asyncio.sleep(0.005)


def test_messages_come_in_arrival_order(
    sender: socket.socket, actor_system: object
) -> None:
    async def main() -> None:
        connection = UDPConnection(local_host="127.0.0.1")
        address = (connection.local_ip_address, connection.local_port)
        try:
            async with aio.listen(connection) as messages:
                for number in range(2000):
                    sender.sendto(b"msg-%d" % number, address)
                got = []
                async for message in messages:
                    got.append(message)
                    if len(got) == 2000:
                        break
                assert got == [b"msg-%d" % n for n in range(2000)]
                stats = messages.stats()
                assert stats is not None and stats.dropped == 0
        finally:
            connection.close()

    asyncio.run(main())


def test_a_full_backlog_drops_and_counts(
    sender: socket.socket, actor_system: object
) -> None:
    async def main() -> None:
        connection = UDPConnection(local_host="127.0.0.1")
        address = (connection.local_ip_address, connection.local_port)
        try:
            async with aio.listen(connection, backlog=10) as messages:
                for number in range(200):
                    sender.sendto(b"msg-%d" % number, address)

                def all_read() -> bool:
                    stats = messages.stats()
                    return stats is not None and stats.received == 200

                await until(all_read, "the listener read all 200")
                await until(lambda: messages.waiting == 10, "10 on the loop")
                got = [await messages.__anext__() for _ in range(10)]
                assert got == [b"msg-%d" % n for n in range(10)]
                stats = messages.stats()
                assert stats is not None
                assert stats.delivered == 10 and stats.dropped == 190
            # Closed by the async with: iterating ends, it does not wait.
            with pytest.raises(StopAsyncIteration):
                await messages.__anext__()
        finally:
            connection.close()

    asyncio.run(main())


def test_a_connection_closed_under_it_ends_the_iteration_with_the_error(
    sender: socket.socket, actor_system: object
) -> None:
    async def main() -> None:
        connection = UDPConnection(local_host="127.0.0.1")
        address = (connection.local_ip_address, connection.local_port)
        async with aio.listen(connection) as messages:
            for number in range(3):
                sender.sendto(b"msg-%d" % number, address)
            got = [await messages.__anext__() for _ in range(3)]
            assert got == [b"msg-0", b"msg-1", b"msg-2"]
            connection.close()  # under the listener

            async def rest() -> list[bytes]:
                return [message async for message in messages]

            with pytest.raises(ConnectionClosed):
                await rest()

    asyncio.run(main())


def test_a_port_number_opens_and_closes_its_own_sdp_connection(
    sender: socket.socket, actor_system: object
) -> None:
    header = struct.pack("<2x8B", 0x07, 0xFF, 0xFF, (1 << 5) | 1, 0, 0, 0, 0)

    async def main() -> None:
        async with aio.listen(0, kind="sdp", local_host="127.0.0.1") as messages:
            connection = cast(UDPConnection, messages.connection)
            address = (connection.local_ip_address, connection.local_port)
            for number in range(5):
                sender.sendto(header + struct.pack("<I", number), address)
            got = []
            async for message in messages:
                assert isinstance(message, SDPMessage) and message.data is not None
                got.append(struct.unpack_from("<I", message.data, message.offset)[0])
                if len(got) == 5:
                    break
            assert got == [0, 1, 2, 3, 4]
        assert connection.closed

    asyncio.run(main())
