"""What a host asks of a frame's BMP: power, sensors, which boards it has.

Each request is one stop-and-wait exchange over a BMPConnection
(transport.connections.call), as SpiNNMan's are: a BMP is not a hot path,
and a power command may not be resent (a second power-on puts a board
booted since back in its ROM). A BMP that does not answer is BMPSilent; one
that answers with an error code is BMPRefused (an absent board: its
message says so); both name the BMP.

Power is counted here (``COUNTS``, exported by actors/metrics.py), by
boards switched.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from actors.boot.options import BoardBMP
from messages.bmp import (
    BMP_POWER_ON_TIMEOUT,
    BMP_TIMEOUT,
    ADCInfo,
    BMPGetVersion,
    BMPRequest,
    PowerCommand,
    ReadADC,
    ReadCANStatus,
    SetPower,
    check_boards,
)
from messages.errors import SpinnactorsError, UnexpectedResponseCodeError
from messages.scp.base import AbstractSCPResponse
from messages.scp.version import VersionInfo
from transport.capture.writer import Captures, PacketCapture
from transport.connections.bmp import BMPConnection
from transport.connections.call import call
from transport.errors import ReceiveTimeout, TransportError
from transport.logs import get_logger

log = get_logger(__name__)
R = TypeVar("R", bound=AbstractSCPResponse)
Address = tuple[str, int]


class BMPSilent(SpinnactorsError):
    """A BMP that did not answer."""


class BMPRefused(SpinnactorsError):
    """A BMP that answered a request with an error code."""


class Counts:
    """What this process has done through BMPs and boots, for /metrics:
    thread-safe counters by name."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, name: str, count: int = 1) -> None:
        with self._lock:
            self._counts[name] += count

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


#: Boots and power commands of this process (see actors/boot/driver.py for
#: the boot counts' names).
COUNTS = Counts()


def boards_text(boards: Iterable[int]) -> str:
    """``0-2``, ``0, 2, 5`` or ``0-2, 5``: board numbers as people write them."""
    runs: list[list[int]] = []
    for board in sorted(set(boards)):
        if runs and board == runs[-1][-1] + 1:
            runs[-1].append(board)
        else:
            runs.append([board])
    return ", ".join(
        str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}" for run in runs
    )


def bmp_call(
    address: Address,
    request: BMPRequest[R],
    *,
    timeout: float = BMP_TIMEOUT,
    retries: int = 2,
    what: str = "",
    capture: Captures | None = None,
) -> R:
    """One request to the BMP at ``address``; its reply, BMPSilent or
    BMPRefused (each naming the BMP and ``what`` was asked). ``capture``
    records the request and its reply (a Client's, so that its capture
    shows the power commands of its boots and recoveries too)."""
    host, port = address
    where = f"BMP {host}:{port}"
    doing = what or type(request).__name__
    try:
        with BMPConnection(
            remote_host=host,
            remote_port=port,
            boards=[request.board],
            capture=capture,
        ) as connection:
            return call(connection, request, timeout=timeout, retries=retries)
    except ReceiveTimeout:
        tries = 1 + (retries if request.may_resend else 0)
        raise BMPSilent(
            f"{where} not answering: no reply to {doing} after {tries} "
            f"{'try' if tries == 1 else 'tries'} of {timeout:g} s"
        ) from None
    except UnexpectedResponseCodeError as error:
        raise BMPRefused(f"{where} refused {doing}: {error}") from None
    except TransportError as error:
        raise BMPSilent(f"{where}: {error}") from None


def set_power(
    address: Address,
    boards: Iterable[int],
    on: bool,
    *,
    timeout: float | None = None,
    capture: Captures | None = None,
    there: Iterable[int] | None = None,
) -> tuple[int, ...]:
    """Power ``boards`` of the frame whose BMP is at ``address`` on or off,
    in one command (sent to board 0's BMP, as SpiNNMan sends it); the
    boards switched. A power-on's reply comes once the FPGAs are loaded:
    ``timeout`` is BMP_POWER_ON_TIMEOUT for it unless told.

    The frame's boards are asked first (its CAN status): a BMP ignores a
    board of the mask that it does not have, so one named here that is
    not there is BMPRefused, before anything is switched; ``there``, the
    frame's boards as the caller just learnt them from this BMP, is
    checked instead of asking again. ``capture`` records the exchanges."""
    numbers = check_boards(list(boards))
    wait = timeout if timeout is not None else BMP_POWER_ON_TIMEOUT if on else 1.0
    if there is None:
        there = frame_boards(
            address, timeout=min(BMP_TIMEOUT, wait / 3), capture=capture
        )
    there = tuple(there)
    absent = sorted(set(numbers) - set(there))
    if absent:
        host, port = address
        raise BMPRefused(
            f"BMP {host}:{port} has no board {boards_text(absent)} in its "
            f"frame (its CAN bus reaches boards {boards_text(there) or 'none'})"
        )
    command = PowerCommand.POWER_ON if on else PowerCommand.POWER_OFF
    doing = f"power {'on' if on else 'off'} boards {boards_text(numbers)}"
    bmp_call(
        address,
        SetPower(command, numbers),
        timeout=wait,
        retries=0,
        what=doing,
        capture=capture,
    )
    COUNTS.add("power_on" if on else "power_off", len(numbers))
    log.info("bmp.power", bmp="{}:{}".format(*address), on=on, boards=numbers)
    return numbers


def power_boards(
    bmps: Mapping[Any, BoardBMP] | Iterable[BoardBMP],
    on: bool,
    *,
    timeout: float | None = None,
    captures: Mapping[Hashable, PacketCapture | None] | None = None,
) -> dict[Address, tuple[int, ...]]:
    """Power many boards on or off, in bulk: one command per BMP naming all
    of its boards, the BMPs at once. The boards switched, by BMP; the
    first BMP's error, once all have answered. ``captures`` (by the names
    of ``bmps``) records each BMP's exchanges in the capture of every
    board they concern, once in a capture those boards share."""
    frames: dict[Address, set[int]] = {}
    recorded: dict[Address, list[PacketCapture]] = {}
    named = bmps.items() if isinstance(bmps, Mapping) else ((None, b) for b in bmps)
    for name, target in named:
        frames.setdefault(target.address, set()).add(target.board)
        into = recorded.setdefault(target.address, [])
        capture = None if captures is None else captures.get(name)
        if capture is not None and not any(capture is known for known in into):
            into.append(capture)
    if not frames:
        return {}
    with ThreadPoolExecutor(len(frames), thread_name_prefix="bmp-power") as pool:
        futures = {
            address: pool.submit(
                set_power,
                address,
                boards,
                on,
                timeout=timeout,
                capture=recorded[address],
            )
            for address, boards in frames.items()
        }
    return {address: future.result() for address, future in futures.items()}


def read_sensors(
    address: Address,
    board: int,
    *,
    timeout: float = BMP_TIMEOUT,
    retries: int = 2,
    capture: PacketCapture | None = None,
) -> ADCInfo:
    """Board ``board``'s voltages, temperatures and fans (``capture``
    records the request and its reply)."""
    reply = bmp_call(
        address,
        ReadADC(board),
        timeout=timeout,
        retries=retries,
        what=f"the sensors of board {board}",
        capture=capture,
    )
    return reply.adc_info


def frame_boards(
    address: Address,
    *,
    timeout: float = BMP_TIMEOUT,
    capture: Captures | None = None,
) -> tuple[int, ...]:
    """The boards the BMP at ``address`` can reach on its frame's CAN bus."""
    reply = bmp_call(
        address,
        ReadCANStatus(),
        timeout=timeout,
        what="which boards it has",
        capture=capture,
    )
    return reply.boards


def bmp_version(
    address: Address, board: int = 0, *, timeout: float = BMP_TIMEOUT
) -> VersionInfo:
    reply = bmp_call(address, BMPGetVersion(board), timeout=timeout, what="version")
    return reply.version_info
