"""A bad option for a Machine's boards is the same error wherever the
boards are placed: in this process (workers=0) each Client refuses it as
it is made; placed in worker processes, the Machine refuses it before any
worker starts, with the same type and words, instead of the workers
failing to start and their group ending lost; the error names the board
it is about, or says the option is the Machine's, for each board. An
option no board takes,
or a local_host this machine cannot bind, is refused by name, alike in
both."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from actors import Client, aio, connect
from actors.placement.machine import Machine
from messages.errors import InvalidArgumentError
from tests.system.machine_kit import worker_processes
from transport import VirtualBoard


def refusal(boards: dict[Any, Any], workers: int, options: dict[str, Any]) -> str:
    """What connect() raised for ``options``: the error's type and words."""
    try:
        machine = connect(boards, workers=workers, **options)
    except InvalidArgumentError as error:
        return f"{type(error).__name__}: {error}"
    machine.close()
    raise AssertionError(f"workers={workers}, {options}: accepted")


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"window": 0}, "window=0: must be in 1..65535"),
        ({"timeout": -1.0}, "timeout=-1.0: must be a positive number of seconds"),
        ({"retries": -1}, "retries=-1: must be in 0..1000"),
        ({"rto_floor": -1.0}, "rto_floor"),
    ],
)
def test_a_bad_board_option_is_one_error_in_process_or_in_workers(
    options: dict[str, Any], words: str
) -> None:
    here = refused_alike(options)
    assert words in here
    # Not about one board: the Machine's, for each.
    assert here.endswith("(an option of the Machine: the same for each of its boards)")


@pytest.mark.timeout(60)
def test_a_bad_port_for_one_board_is_one_error_in_process_or_in_workers() -> None:
    before = worker_processes()
    with VirtualBoard(2, 2) as board:
        boards = {"a": board.address, "b": ("127.0.0.1", 70000)}
        here = refusal(boards, 0, {})
        placed = refusal(boards, 2, {})
    assert (
        placed
        == here
        == ("InvalidArgumentError: port=70000: must be in 0..65535 (board 'b')")
    )
    assert worker_processes() == before


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"windw": 4}, "windw=4: is not an option of a Machine"),
        # (TEST-NET-1: no address of this machine; nothing is sent)
        ({"local_host": "192.0.2.1"}, "local_host='192.0.2.1': cannot be bound here"),
    ],
)
def test_an_unknown_option_or_a_bad_local_host_is_one_error_anywhere(
    options: dict[str, Any], words: str
) -> None:
    """Named in an InvalidArgumentError, in this process as in workers (not
    a TypeError in one and a group's error in the other; not a local
    address every connection then fails to bind), before any worker
    starts."""
    assert words in refused_alike(options)


@pytest.mark.timeout(60)
def test_a_client_option_that_cannot_cross_to_a_worker_is_named() -> None:
    before = worker_processes()
    with VirtualBoard(2, 2) as board:
        placed = refusal({"a": board.address}, 1, {"fail_refused": True})
        machine = connect({"a": board.address}, workers=0, fail_refused=True)
        machine.close()  # (in this process each Client takes it)
    assert placed.startswith(
        "InvalidArgumentError: fail_refused=True: cannot cross to a worker process"
    )
    assert worker_processes() == before


@pytest.mark.timeout(30)
def test_a_client_refuses_a_local_host_it_cannot_bind() -> None:
    """At once, not by its connection failing to start until its
    supervisor gives up."""
    with (
        VirtualBoard(2, 2) as board,
        pytest.raises(
            InvalidArgumentError, match=r"local_host='192.0.2.1': cannot be bound here"
        ),
    ):
        Client(*board.address, local_host="192.0.2.1").close()


@pytest.mark.timeout(60)
def test_boards_named_in_a_dict_variable_are_taken_as_typed() -> None:
    """A user's ``dict[str, ...]`` of boards, held in a variable, is what
    connect(), aio.connect() and Machine take (mypy checks this module:
    a mapping's keys are invariant, so ``Mapping[Hashable, ...]`` refused
    it), and each opens a Machine of those names."""
    with VirtualBoard(2, 2) as left, VirtualBoard(2, 2) as right:
        boards: dict[str, VirtualBoard] = {"left": left, "right": right}
        addresses: dict[str, tuple[str, int]] = {"left": left.address}
        with connect(boards, workers=0) as machine:
            assert machine.boards == ["left", "right"]
            assert machine.version("right").name == "SC&MP"
        with Machine(addresses, workers=0) as machine:
            assert machine.boards == ["left"]

        async def versions() -> list[str]:
            async with aio.connect(boards, workers=0) as machine:
                return [(await machine.version(name)).name for name in boards]

        assert asyncio.run(versions()) == ["SC&MP", "SC&MP"]


def refused_alike(options: dict[str, Any]) -> str:
    """The error a Machine of two boards gives for ``options``: the same
    InvalidArgumentError in this process as with 2 workers, before any
    worker started."""
    before = worker_processes()
    with VirtualBoard(2, 2) as first, VirtualBoard(2, 2) as second:
        boards = {"a": first.address, "b": second.address}
        here = refusal(boards, 0, options)
        placed = refusal(boards, 2, options)
    assert placed == here
    assert here.startswith("InvalidArgumentError: ")
    assert worker_processes() == before  # refused before any worker started
    return here
