"""SpiNNMan's own connection and pipeline drive a `spinnactors board`."""

from __future__ import annotations

import random
from typing import Any

from spinnman.connections.scp_request_pipeline import SCPRequestPipeLine
from spinnman.connections.udp_packet_connections import SCAMPConnection
from spinnman.messages.scp.impl import GetVersion, ReadMemory, WriteMemory
from spinnman.messages.scp.impl.read_memory import Response as ReadMemoryResponse

MIB = 1 << 20
BASE = 0x6000_0000


def test_spinnman_writes_reads_back_and_asks_version(
    board_process: tuple[str, int],
) -> None:
    host, port = board_process
    data = random.Random(3).randbytes(MIB)
    connection = SCAMPConnection(remote_host=host, remote_port=port)
    errors: list[BaseException] = []

    def failed(request: object, error: BaseException, *_: object) -> None:
        errors.append(error)

    try:
        pipeline: SCPRequestPipeLine[Any] = SCPRequestPipeLine(
            connection, n_channels=8, packet_timeout=0.5
        )
        for offset in range(0, MIB, 256):
            pipeline.send_request(
                WriteMemory((1, 1, 0), BASE + offset, data[offset : offset + 256]),
                None,
                failed,
            )
        pipeline.finish()
        chunks: dict[int, bytes] = {}
        for offset in range(0, MIB, 256):

            def store(response: ReadMemoryResponse, offset: int = offset) -> None:
                chunks[offset] = bytes(
                    response.data[response.offset : response.offset + 256]
                )

            pipeline.send_request(
                ReadMemory((1, 1, 0), BASE + offset, 256), store, failed
            )
        versions = []
        pipeline.send_request(
            GetVersion(0, 0, 0),
            lambda response: versions.append(response.version_info),
            failed,
        )
        pipeline.finish()
    finally:
        connection.close()
    assert errors == []
    assert b"".join(chunks[offset] for offset in sorted(chunks)) == data
    assert len(chunks) == MIB // 256
    (info,) = versions
    assert (info.name, info.hardware, info.version_number) == (
        "SC&MP",
        "Virtual",
        (4, 0, 0),
    )
