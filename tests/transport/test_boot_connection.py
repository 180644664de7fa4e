"""BootConnection and IPAddressesConnection over real UDP on loopback.

A plain socket on 127.0.0.x:54321 stands in for a board's boot ROM (it
receives the frames) and for an unbooted board saying hello (it sends
from port 54321).
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from messages.boot import (
    BootImage,
    BootImageError,
    SpinnakerBootMessage,
    SpinnakerBootOpCode,
    SystemVariableBootValues,
    SystemVariableDefinition,
    swap_words,
)
from messages.errors import InvalidArgumentError, MalformedDatagramError
from tests.transport.loopback import BOOT_PORT, first_free, udp_socket
from transport import BootConnection, IPAddressesConnection
from transport.errors import ConnectionClosed, ReceiveTimeout

pytestmark = pytest.mark.timeout(30)
HELLO = SpinnakerBootMessage(SpinnakerBootOpCode.HELLO, 0, 0, 0)


def test_a_boot_reaches_the_board_unpadded_in_order() -> None:
    with first_free(3, udp_socket()) as rom:
        rom_host = rom.getsockname()[0]
        with BootConnection(rom_host, gap=0.001) as connection:
            assert connection.remote_port == BOOT_PORT
            before = int(time.time())
            plan = connection.boot()
            after = int(time.time())
            received = [rom.recv(2048) for _ in plan.messages]
        assert received == list(plan.datagrams)
        assert len(received) == 32 and connection.n_sent == 32
        for datagram in received:
            assert datagram[:2] == b"\x00\x01"  # version 1 first: no SDP padding
        frames = [SpinnakerBootMessage.from_bytestring(d) for d in received]
        assert [frame.opcode for frame in (frames[0], frames[1], frames[-1])] == [
            SpinnakerBootOpCode.FLOOD_FILL_START,
            SpinnakerBootOpCode.FLOOD_FILL_BLOCK,
            SpinnakerBootOpCode.FLOOD_FILL_CONTROL,
        ]
        # The values it booted with: a SpiNN-5's, signed with the time now.
        assert frames[1].data is not None
        values = SystemVariableBootValues.from_bytestring(
            swap_words(frames[1].data)[384:512]
        )
        signed = values[SystemVariableDefinition.boot_signature]
        assert isinstance(signed, int) and before <= signed <= after
        assert values[SystemVariableDefinition.unix_timestamp] == signed
        assert values[SystemVariableDefinition.hardware_version] == 5


def test_frames_are_paced_by_the_gap() -> None:
    """The first frame goes at once, each next one ``gap`` after the one
    before, and nothing waits after the last."""
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(round(seconds, 6))
        now[0] += seconds

    with (
        first_free(4, udp_socket()) as rom,
        BootConnection(
            rom.getsockname()[0], gap=0.05, clock=lambda: now[0], sleep=sleep
        ) as connection,
    ):
        connection.send_boot_message(HELLO)
        now[0] += 0.01  # the caller took 10 ms before the next
        connection.send_boot_message(HELLO)
        connection.send_boot_message(HELLO)
        now[0] += 0.2  # a long pause needs no sleep
        connection.send_boot_message(HELLO)
        connection.send_boot_message(HELLO, gap=0.0)
        assert [rom.recv(64) for _ in range(5)] == [HELLO.bytestring] * 5
    assert slept == [0.04, 0.05]


def test_a_real_gap_is_kept() -> None:
    with (
        first_free(5, udp_socket()) as rom,
        BootConnection(rom.getsockname()[0], gap=0.02) as connection,
    ):
        started = time.monotonic()
        connection.send_boot_messages([HELLO] * 5)
        elapsed = time.monotonic() - started
        assert [rom.recv(64) for _ in range(5)] == [HELLO.bytestring] * 5
    assert elapsed >= 4 * 0.02


@pytest.mark.parametrize("size", [32 * 1024 + 4, 29866, 100])
def test_a_bad_image_is_refused_before_anything_is_sent(
    tmp_path: Path, size: int
) -> None:
    image = tmp_path / "bad.boot"
    image.write_bytes(bytes(size))
    with (
        first_free(6, udp_socket()) as rom,
        BootConnection(rom.getsockname()[0], gap=0) as connection,
    ):
        with pytest.raises(BootImageError, match=str(image)):
            connection.boot(image)
        with pytest.raises(BootImageError, match="no such file"):
            connection.boot(tmp_path / "missing.boot")
        assert connection.n_sent == 0
        # What the board gets first is what is sent next: nothing went before.
        connection.send_boot_message(HELLO)
        assert rom.recv(2048) == HELLO.bytestring


def test_a_boot_with_an_image_and_values_given() -> None:
    image = BootImage.load()
    values = SystemVariableBootValues({SystemVariableDefinition.led_0: 0x76104})
    with (
        first_free(7, udp_socket()) as rom,
        BootConnection(rom.getsockname()[0], gap=0) as connection,
    ):
        plan = connection.boot(image, values=values)
        assert [rom.recv(2048) for _ in plan.messages] == list(plan.datagrams)
    assert plan.gap == 0


def test_a_bad_gap_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="gap"):
        BootConnection("127.0.0.1", gap=-1)


def test_frames_are_received_parsed_and_garbage_refused() -> None:
    with BootConnection(local_host="127.0.0.1", local_port=0) as listener:
        address = (listener.local_ip_address, listener.local_port)
        with first_free(8, udp_socket()) as board:
            board.sendto(b"\0\0garbage", address)
            board.sendto(HELLO.bytestring, address)
            with pytest.raises(MalformedDatagramError):
                listener.receive_boot_message(10)
            assert listener.receive_boot_message(10) == HELLO
            assert callable(listener.get_receive_method())  # a Listenable
        with pytest.raises(ReceiveTimeout):
            listener.receive_boot_message(0.05)


# -- IPAddressesConnection ---------------------------------------------------------


def listener(start: int) -> IPAddressesConnection:
    return first_free(start, lambda host: IPAddressesConnection(host))


def test_a_hello_from_port_54321_gives_the_boards_address() -> None:
    with listener(9) as boards, first_free(3, udp_socket()) as board:
        assert boards.local_port == BOOT_PORT
        board.sendto(HELLO.bytestring, (boards.local_ip_address, BOOT_PORT))
        assert boards.receive_ip_address(10) == board.getsockname()[0]


def test_datagrams_from_other_ports_are_ignored() -> None:
    with listener(10) as boards, first_free(11, udp_socket()) as board:
        target = (boards.local_ip_address, BOOT_PORT)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
            other.bind(("127.0.0.1", 0))
            other.sendto(HELLO.bytestring, target)
            other.sendto(b"anything", target)
        board.sendto(HELLO.bytestring, target)
        assert boards.receive_ip_address(10) == board.getsockname()[0]
        assert boards.n_ignored == 2


def test_no_hello_within_the_timeout_is_none() -> None:
    with listener(12) as boards:
        started = time.monotonic()
        assert boards.receive_ip_address(0.1) is None
        assert time.monotonic() - started >= 0.1
        boards.close()
        with pytest.raises(ConnectionClosed):
            boards.receive_ip_address(1)


def test_defaults_are_spinnmans() -> None:
    import inspect

    signature = inspect.signature(IPAddressesConnection)
    assert signature.parameters["local_host"].default is None
    assert signature.parameters["local_port"].default == BOOT_PORT
    boot = inspect.signature(BootConnection)
    assert list(boot.parameters)[:2] == ["remote_host", "remote_port"]
    assert boot.parameters["remote_port"].default == BOOT_PORT
