"""What a metrics scrape asks of the live objects of this process, and how:
every object of a kind at once, all given one timeout, so that a stuck
actor holds a scrape no longer than that (actors/metrics.py turns the
answers into metric families).

A board whose actor does not answer in time stays in the scrape, down
(unresponsive); an actor of another kind that does not answer is left out
of that scrape. Nothing here runs except when someone scrapes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Any

import pykka

from actors.answers import Missing, answer_by, ask_now
from actors.board.client import Client
from actors.board.health import BoardHealth, PendingHealth
from actors.compat.pipeline import given_up_pipeline_boards, pipeline_boards
from actors.connection.messages import GetConnectionStats
from actors.lifetime import closables
from actors.placement.machine import Machine
from actors.supervision.messages import SupervisorStats
from transport.logs import get_logger

log = get_logger(__name__)


def open_objects() -> tuple[list[Client], list[Machine]]:
    """The clients and machines of this process still open (and clients
    given up on that their owners have not closed yet), each Machine's own
    in-process clients left to the Machine."""
    owners = [getattr(close, "__self__", None) for close in closables.tracked()]
    machines = [o for o in owners if isinstance(o, Machine) and not o.closed]
    inside = {id(client) for machine in machines for client in machine.local_clients}
    clients = [
        o
        for o in owners
        if isinstance(o, Client)
        and id(o) not in inside
        and (not o.closed or (o.gave_up.is_set() and not o.closed_by_owner))
    ]
    return clients, machines


def ask_all(
    cls: type[pykka.Actor], message: Any, timeout: float
) -> Iterator[tuple[str, Any]]:
    """Ask every running actor of ``cls`` at once; (urn, answer) of those
    that answered within ``timeout``."""
    keyed = ((ref.actor_urn, ref) for ref in pykka.ActorRegistry.get_by_class(cls))
    for urn, answer in ask_keyed(keyed, message, timeout):
        if answer is not GONE:
            yield urn, answer


#: What ask_keyed gives for an actor that is not running, or died asked.
GONE = Missing.GONE


def ask_keyed(
    keyed: Iterable[tuple[str, pykka.ActorRef[Any] | None]],
    message: Any,
    timeout: float,
) -> Iterator[tuple[str, Any]]:
    """Ask each actor at once; (key, its answer, or GONE if there was no
    actor or it died) of those that answered within ``timeout`` (in all)."""
    asked = [(key, ask_now(ref, message)) for key, ref in keyed]
    deadline = time.monotonic() + timeout
    for key, future in asked:
        answer = answer_by(future, deadline)
        if answer is not Missing.LATE:
            yield key, answer


def client_healths(clients: list[Client], timeout: float) -> list[BoardHealth]:
    """The clients' boards, all asked at once: one whose connection actor
    does not answer within ``timeout`` is unresponsive (down), not left
    out, and holds the scrape no longer than that."""
    asked: list[PendingHealth] = []
    for client in clients:
        try:
            asked.append(client.ask_health())
        except Exception as error:  # noqa: BLE001 - closed meanwhile
            log.debug("metrics.client_skipped", error=repr(error))
    deadline = time.monotonic() + timeout
    return [pending.result(deadline) for pending in asked]


def machine_healths(
    machines: list[Machine], timeout: float
) -> tuple[list[BoardHealth], list[SupervisorStats]]:
    """The machines' boards, and their workers' supervisors (the boards of
    one worker share it: counted once; this process's supervisors are
    asked with ask_all): every Machine asked at once, all given
    ``timeout`` in all, as client_healths asks clients."""
    deadline = time.monotonic() + timeout
    asked: list[Callable[[float], dict[Hashable, BoardHealth]]] = []
    for machine in machines:
        try:
            asked.append(machine.ask_health(timeout))
        except Exception as error:  # noqa: BLE001 - closed meanwhile
            log.debug("metrics.machine_skipped", error=repr(error))
    healths: list[BoardHealth] = []
    supervisors: list[SupervisorStats] = []
    for pending in asked:
        try:
            boards = list(pending(deadline).values())
        except Exception as error:  # noqa: BLE001 - closed meanwhile
            log.debug("metrics.machine_skipped", error=repr(error))
            continue
        healths.extend(boards)
        supervisors.extend(
            {
                h.supervision.name: h.supervision
                for h in boards
                if h.supervision is not None
            }.values()
        )
    return healths, supervisors


def pipeline_healths(
    timeout: float,
) -> tuple[list[BoardHealth], list[SupervisorStats]]:
    """The boards SCPRequestPipeLines talk to: served while the actor of
    their connection runs, restarting while its supervisor brings it back
    (or it stopped as it was asked), given up once it gave up (until the
    connection is closed), with the supervisors that gave up (stopped:
    ask_all cannot find them)."""
    asked = list(ask_keyed(pipeline_boards(), GetConnectionStats(), timeout))
    # Read second: a board whose supervisor gave up since the first read is
    # in both, and listed once, given up.
    lost = given_up_pipeline_boards()
    gone = {label for label, _ in lost}
    healths: list[BoardHealth] = []
    for label, stats in asked:
        if label in gone:
            continue
        health = BoardHealth(label, "restarting", reason="its connection is restarting")
        healths.append(health if stats is GONE else health.serving(stats))
    healths += [
        BoardHealth(
            label,
            "given_up",
            reason="the connection kept failing; its supervisor gave up",
        )
        for label, _ in lost
    ]
    return healths, [supervision for _, supervision in lost]
