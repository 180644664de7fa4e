"""The Machine's handle on each board group it placed.

A PlacedGroup is what the parent holds of one group: the book of its open
jobs (which outlives any one worker), the running incarnation of its
GroupActor, and the questions the Machine asks it (stats, health, a
listener), each answered by whichever worker runs when it is asked. Its
ChildSpec is what the Machine's supervisor starts, restarts and gives up.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import replace
from typing import Any, Literal, cast

import pykka

from actors.board.health import BoardHealth, BoardState
from actors.errors import ShutDown
from actors.placement.book import NO_ANSWER, GroupBook
from actors.placement.links import GroupLink, ProcessLink
from actors.placement.parent import GroupActor, SendListen, SendStats
from actors.placement.wire import GroupSpec, Listen, Listening
from actors.supervision.api import ChildLookup
from actors.supervision.child import Watch
from actors.supervision.errors import ChildNotRunning
from actors.supervision.spec import ChildSpec

Placement = Literal["process", "ray"]
#: How long a call waits for a group to answer a question (stats, listen).
ASK_TIMEOUT = 30.0


def _label(address: tuple[str, int]) -> str:
    return f"{address[0]}:{address[1]}"


class PlacedGroup:
    """The Machine's handle on one placed group: its book, the running
    incarnation of its GroupActor, and what its supervisor calls to start
    one (on a new worker) and when it stops restarting it (``child_spec``)."""

    def __init__(
        self,
        index: int,
        spec: GroupSpec,
        supervisor: pykka.ActorRef[Any],
        link: Callable[[GroupSpec], GroupLink],
        *,
        heartbeat_deadline: float,
        start_attempts: int,
        limiter: pykka.ActorRef[Any] | None,
    ) -> None:
        self.child_id = f"group-{index}"
        self.spec = spec
        self.book = GroupBook(spec.boards)
        self._supervisor = supervisor
        self._link = link
        self._heartbeat_deadline = heartbeat_deadline
        self._start_attempts = start_attempts
        self._limiter = limiter
        #: The running incarnation of the group's actor (None while it
        #: restarts).
        self.current = ChildLookup(supervisor, self.child_id, ASK_TIMEOUT)

    def child_spec(self) -> ChildSpec:
        """Transient: a group ends normally only when it gives up on
        starting. Its start (a worker process to spawn) is not waited for:
        groups spawn side by side, and the supervisor answers lookups
        meanwhile."""
        return ChildSpec(
            self.child_id,
            self._start,
            "transient",
            shutdown=30.0,
            cleanup=self._give_up,
            start_timeout=None,
        )

    def _start(self, watch: Watch) -> pykka.ActorRef[Any]:
        return GroupActor.start(
            self.spec,
            self._link,
            self.book,
            heartbeat_deadline=self._heartbeat_deadline,
            start_attempts=self._start_attempts,
            limiter=self._limiter,
            watch=watch,
        )

    def _give_up(self) -> None:
        if self.book.closed_by is None:  # (else it gave up itself)
            self.book.close(
                ShutDown(f"{self.child_id} kept failing; its supervisor gave up")
            )

    def tell(self, message: Any) -> bool:
        """Tell the running incarnation; False if none runs just now (a new
        one reads the book when it starts)."""
        actor = self.current()
        if actor is None:
            return False
        try:
            actor.tell(message)
        except pykka.ActorDeadError:
            return False
        return True

    def ask_actor(self, message: Any) -> Any:
        """Ask the running incarnation (None if none runs just now, or if it
        is still starting its worker and cannot answer yet)."""
        actor = self.current()
        if actor is None:
            return None
        try:
            return actor.ask(message, timeout=ASK_TIMEOUT)
        except (pykka.ActorDeadError, pykka.Timeout):
            return None

    def send_question(
        self, send: Callable[[int], Any]
    ) -> tuple[int, queue.SimpleQueue[Any]] | None:
        """Tell ``send(ticket)`` to the running incarnation without waiting:
        the ticket and where its answer comes (forget the ticket once
        done with it), or None if none runs just now."""
        ticket, answer = self.book.new_ticket()
        if not self.tell(send(ticket)):
            self.book.forget(ticket)
            return None
        return ticket, answer

    def ask(self, send: Callable[[int], Any], what: str) -> Any:
        """Send ``send(ticket)`` to the group and wait for the answer,
        asking again if the worker is lost meanwhile (until ASK_TIMEOUT)."""
        self._check_open()
        deadline = time.monotonic() + ASK_TIMEOUT
        while self._supervisor.is_alive():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            asked = self.send_question(send)
            if asked is None:
                # Between incarnations: woken when the next one runs.
                try:
                    self.current.wait(left)
                except ChildNotRunning:
                    break
                continue
            ticket, answer = asked
            try:
                value = answer.get(timeout=left)
            except queue.Empty:
                break
            finally:
                self.book.forget(ticket)
            if value is not NO_ANSWER:
                return value
        raise ShutDown(f"{self.child_id} did not answer {what}")

    def ask_health(self, timeout: float) -> tuple[int, queue.SimpleQueue[Any]] | None:
        """Ask for its boards' health without waiting (see send_question and
        health), the worker waiting up to ``timeout`` for its boards; None
        if there is none to ask."""
        if self.book.closed_by is not None or not self._supervisor.is_alive():
            return None
        return self.send_question(
            lambda ticket: SendStats(ticket, health=True, timeout=timeout)
        )

    def health(
        self,
        addresses: Mapping[Hashable, tuple[str, int]],
        asked: tuple[int, queue.SimpleQueue[Any]] | None,
        deadline: float,
    ) -> dict[Hashable, BoardHealth]:
        """Its boards' health: the answer to ``asked`` (from ask_health)
        if it comes by ``deadline``; else each board says why there is
        none (given up, closed, restarting, or a worker that did not
        answer in time)."""
        names = [board.name for board in self.spec.boards]

        def each(state: BoardState, reason: str) -> dict[Hashable, BoardHealth]:
            return {
                name: BoardHealth(_label(addresses[name]), state, reason=reason)
                for name in names
            }

        if self.book.closed_by is not None:
            return each("given_up", f"{self.child_id}: {self.book.closed_by}")
        if not self._supervisor.is_alive():
            return each("closed", "the machine is closed")
        if asked is None:
            return each("restarting", f"{self.child_id}'s worker is restarting")
        ticket, answer = asked
        try:
            value = answer.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return each(
                "unresponsive", f"{self.child_id}'s worker did not answer in time"
            )
        finally:
            self.book.forget(ticket)
        if value is NO_ANSWER:
            return each("restarting", f"{self.child_id}'s worker is restarting")
        return cast("dict[Hashable, BoardHealth]", value)

    def _check_open(self) -> None:
        """ShutDown at once for a group given up for good (no worker will
        ever answer)."""
        if self.book.closed_by is not None:
            raise ShutDown(f"{self.child_id}: {self.book.closed_by}")

    def listen(self, listen: Listen, heard: Callable[[list[Any]], None]) -> Listening:
        """Open a listener in the group; each new worker opens it again
        (on the port the first one bound)."""
        self._check_open()
        listen_id, answer = self.book.new_ticket(lost_with_group=False)
        listen = replace(listen, listen_id=listen_id)
        self.book.listeners[listen_id] = (listen, heard)
        try:
            self.tell(SendListen(listen_id))  # else the next worker opens it
            try:
                value: Listening = answer.get(timeout=ASK_TIMEOUT)
            except queue.Empty:
                raise ShutDown(f"{self.child_id} did not open a listener") from None
        finally:
            self.book.forget(listen_id)
        if value.address is None:
            self.book.listeners.pop(listen_id, None)
        return value


def link_for(placement: Placement) -> Callable[[GroupSpec], GroupLink]:
    """How a group of this placement is linked to its worker."""
    if placement == "ray":
        from actors.placement import ray_link  # Ray only when asked for

        ray_link.start_ray()  # here, on the caller's thread
        return ray_link.RayLink
    return ProcessLink
