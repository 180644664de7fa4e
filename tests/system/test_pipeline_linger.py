"""A connection's actor lingers between pipelines (as install() has it),
and is replaced, never doubled, when the next pipeline's settings differ:
sequence numbers carry on across the replacement."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

import pytest

from actors import SCPRequestPipeLine
from actors.compat.shared import SHARED
from messages.scp import GetVersion
from transport import SCAMPConnection, VirtualBoard

_SEQUENCE = struct.Struct("<H")


class Recording(SCAMPConnection):
    """Ours, subclassed: every datagram sent goes through send (recorded)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sequences: list[int] = []

    def send(self, data: bytes) -> None:
        self.sequences.append(_SEQUENCE.unpack_from(data, 12)[0])
        super().send(data)


@pytest.fixture
def lingering() -> Iterator[None]:
    before = SHARED.linger
    SHARED.linger = 60.0
    yield
    SHARED.linger = before
    SHARED.stop_idle()


def versions(connection: Recording, n: int, timeout: float) -> None:
    errors: list[BaseException] = []
    pipeline: SCPRequestPipeLine[Any] = SCPRequestPipeLine(
        connection, n_channels=8, packet_timeout=timeout
    )
    for _ in range(n):
        pipeline.send_request(
            GetVersion(0, 0, 0), None, lambda _r, error, *_: errors.append(error)
        )
    pipeline.finish()
    assert errors == []


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("lingering")
def test_the_actor_lingers_and_a_new_setting_replaces_it() -> None:
    with VirtualBoard(2, 2) as board:
        host, port = board.address
        connection = Recording(remote_host=host, remote_port=port)
        try:
            versions(connection, 10, 1.0)
            (first,) = SHARED.running()  # still there after finish()
            versions(connection, 5, 1.0)
            assert SHARED.running() == [first]  # the same settings: reused
            versions(connection, 5, 0.5)
            (second,) = SHARED.running()  # replaced, not doubled
        finally:
            connection.close()
    assert second is not first
    assert not first.is_alive()
    assert connection.sequences == list(range(20))
