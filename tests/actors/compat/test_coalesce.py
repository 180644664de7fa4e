"""SpiNNMan's reads and writes of one region gather into one transfer;
each request still gets a reply its own response class reads."""

from __future__ import annotations

import os
from enum import Enum

from spinnman.connections.udp_packet_connections import SCAMPConnection
from spinnman.messages.scp.impl import GetVersion, ReadMemory, WriteMemory
from spinnman.messages.scp.scp_request_header import SCPRequestHeader

from actors.compat.coalesce import RUN_LIMIT, Span, span_of, start_run
from actors.protocol.jobs import ReadJob, WriteJob

BASE = 0x6000_0000


def test_span_of_reads_and_writes_only() -> None:
    assert span_of(ReadMemory((1, 2, 3), BASE, 256)) == Span(
        "read", (1, 2, 3), BASE, 256
    )
    assert span_of(WriteMemory((0, 1, 0), BASE, b"x" * 10)) == Span(
        "write", (0, 1, 0), BASE, 10
    )
    assert span_of(GetVersion(0, 0, 0)) is None


def test_a_command_of_another_enum_is_not_a_read() -> None:
    """SpiNNFrontEndCommon's requests carry enums of their own, whose
    values overlap SCPCommand's (2 is CMD_READ's)."""

    class Reinjector(Enum):
        CMD_READ = 2

    request = ReadMemory((0, 0, 0), BASE, 256)
    request._scp_request_header = SCPRequestHeader(command=Reinjector.CMD_READ)
    assert span_of(request) is None


def test_a_run_takes_what_carries_on_where_it_ends() -> None:
    first = Span("read", (0, 0, 0), BASE, 256)
    run = start_run("r", first)
    run.add(1, first, None)
    assert run.takes(Span("read", (0, 0, 0), BASE + 256, 100))
    assert not run.takes(Span("read", (0, 0, 0), BASE + 512, 256))  # a gap
    assert not run.takes(Span("read", (0, 0, 1), BASE + 256, 256))  # a core
    assert not run.takes(Span("write", (0, 0, 0), BASE + 256, 256))  # a kind
    for key in range(2, RUN_LIMIT + 1):
        run.add(key, Span("read", (0, 0, 0), run.end, 256), None)
    assert not run.takes(Span("read", (0, 0, 0), run.end, 256))  # full


def test_a_write_run_is_one_write_job_of_the_requests_data() -> None:
    connection = SCAMPConnection(1, 1, remote_host="127.0.0.1", remote_port=9)
    try:
        data = os.urandom(700)
        requests = [
            WriteMemory((2, 3, 4), BASE + offset, data[offset : offset + 256])
            for offset in range(0, 700, 256)
        ]
        spans = [span_of(request) for request in requests]
        assert spans[0] is not None
        run = start_run("w", spans[0])
        for key, (request, span) in enumerate(zip(requests, spans, strict=True)):
            assert span is not None and (key == 0 or run.takes(span))
            run.add(key, span, connection.get_scp_data(request))
    finally:
        connection.close()
    assert run.job() == WriteJob("w", 2, 3, 4, BASE, data)
    for key, reply in run.replies(None):
        response = requests[key].get_scp_response()
        response.read_bytestring(reply, 2)  # RC_OK: no exception


def test_each_read_reads_its_share_from_its_reply() -> None:
    requests = [ReadMemory((5, 6, 7), BASE + 256 * i, 256) for i in range(3)]
    requests.append(ReadMemory((5, 6, 7), BASE + 768, 100))
    spans = [span_of(request) for request in requests]
    assert spans[0] is not None
    run = start_run("r", spans[0])
    for key, span in enumerate(spans):
        assert span is not None
        run.add(key, span, None)
    assert run.job() == ReadJob("r", 5, 6, 7, BASE, 868)
    value = bytearray(os.urandom(868))
    offset = 0
    for key, reply in run.replies(value):
        response = requests[key].get_scp_response()
        response.read_bytestring(reply, 2)
        assert response.sdp_header.source_chip_x == 5
        assert response.sdp_header.source_cpu == 7
        got = bytes(response.data[response.offset : response.offset + response.length])
        assert got == value[offset : offset + len(got)]
        offset += len(got)
    assert offset == 868
