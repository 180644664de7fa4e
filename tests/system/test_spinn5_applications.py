"""Application cores as a seam for host code: a stand-in on a core of the
SpiNN-5 virtual board answers SDP sent to its port and streams to the host
through an IP tag, over real UDP; and the board's fault plan reaches every
command its SpiNN-5 shape answers."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from spinnman.messages.scp import impl as theirs
from spinnman.model.enums import CPUState as TheirState

from messages import SDPFlag, SDPHeader, SDPMessage
from messages.scp import CountState, CPUState, IPTagSet, SCPResult
from transport import FaultPlan, SCAMPConnection, SDPConnection, VirtualBoard
from transport.connections.call import call
from transport.virtual.apps import Core, StandIn

APP = 7


class Counter(StandIn):
    """Counts what it is sent; each message is answered with the count so
    far and also sent to tag 3 as a 32-bit number; port 2 pauses it."""

    name = "counter"

    def __init__(self) -> None:
        self.count = 0

    def on_sdp(self, core: Core, port: int, data: bytes) -> bytes | None:
        if port == 2:
            core.state = CPUState.PAUSED
            core.print("paused by the host\n")
            return None
        self.count += len(data)
        core.send(3, struct.pack("<I", self.count))
        return struct.pack("<I", self.count)


@pytest.mark.timeout(30)
def test_a_stand_in_answers_its_port_and_streams_through_a_tag() -> None:
    with VirtualBoard.spinn5() as board:
        assert board.chips is not None
        (core,) = board.chips.applications.load(Counter, [(2, 3, 4)], APP)
        host, port = board.address
        with (
            SCAMPConnection(remote_host=host, remote_port=port) as scp,
            SDPConnection(
                local_host="127.0.0.1", remote_host=host, remote_port=port
            ) as sdp,
        ):
            call(scp, IPTagSet(0, 0, "127.0.0.1", sdp.local_port, 3, strip=True))
            for size, to_port in ((5, 1), (10, 1), (1, 2)):
                sdp.send_sdp_message(
                    SDPMessage(
                        SDPHeader(
                            SDPFlag.REPLY_NOT_EXPECTED,
                            destination_port=to_port,
                            destination_cpu=4,
                            destination_chip_x=2,
                            destination_chip_y=3,
                        ),
                        bytes(size),
                    )
                )
            # Sent after the SDP into the same socket: counted after it.
            paused = call(scp, CountState(0, 0, APP, CPUState.PAUSED)).count
            # Each message brings the reply, then the tagged (stripped) copy.
            answers = [sdp.receive(5.0) for _ in range(4)]
        replies = [a for a in answers if len(a) > 4]
        tagged = [a for a in answers if len(a) == 4]
        assert [struct.unpack_from("<I", r, 10)[0] for r in replies] == [5, 15]
        header = SDPHeader.from_bytestring(replies[0], 2)
        assert (header.source_chip_x, header.source_chip_y) == (2, 3)
        assert (header.source_cpu, header.source_port) == (4, 1)
        assert [struct.unpack("<I", t)[0] for t in tagged] == [5, 15]
        assert paused == 1 and core.state is CPUState.PAUSED
        assert core.iobuf == "paused by the host\n"


@pytest.mark.timeout(30)
def test_the_fault_plan_reaches_every_command_of_the_spinn5_shape() -> None:
    """Busy codes on every request: SpiNNMan's requests for chip info,
    routing, loading, counting and syncing are all answered busy."""
    plan = FaultPlan(busy=1.0, seed=1)
    requests: list[Any] = [  # SpiNNMan's, through our connection
        theirs.GetChipInfo(1, 1),
        theirs.RouterAlloc(1, 1, APP, 4),
        theirs.RouterClear(1, 1),
        theirs.ApplicationRun(APP, 1, 1, [1]),
        theirs.CountState(0, 0, APP, TheirState.RUNNING),
        theirs.DoSync(True),
        theirs.AppStop(APP),
    ]
    with VirtualBoard.spinn5(faults=plan) as board:
        host, port = board.address
        with SCAMPConnection(remote_host=host, remote_port=port) as scp:
            for sequence, request in enumerate(requests):
                request.scp_request_header.sequence = sequence
                scp.send(scp.get_scp_data(request))
                result, seq, _, _ = scp.receive_scp_response(5.0)
                assert seq == sequence
                assert result in (SCPResult.RC_P2P_BUSY, SCPResult.RC_TIMEOUT), request
        assert board.stats.busy == len(requests)
        assert board.chips is not None
        assert board.chips.core(1, 1, 1).state is CPUState.IDLE  # none ran


@pytest.mark.timeout(30)
def test_the_monitor_holds_eight_replies_for_the_board_not_per_connection() -> None:
    """Two hosts' connections share the Ethernet chip's 8 transient tags:
    twelve requests at once from two sockets get eight replies, and the
    other four are dropped unanswered, as SC&MP drops them."""
    with VirtualBoard.spinn5(service_time=0.2) as board:
        host, port = board.address
        with (
            SCAMPConnection(remote_host=host, remote_port=port) as first,
            SCAMPConnection(remote_host=host, remote_port=port) as second,
        ):
            for sequence in range(6):
                for connection in (first, second):
                    request: Any = theirs.GetVersion(0, 0, 0)
                    request.scp_request_header.sequence = sequence
                    connection.send(connection.get_scp_data(request))
            answered = 0
            for connection in (first, second):
                for _ in range(4):
                    result, _, _, _ = connection.receive_scp_response(10.0)
                    assert result is SCPResult.RC_OK
                    answered += 1
        assert answered == 8
        assert (board.stats.tag_drops, board.stats.replies) == (4, 8)
