"""A pytest plugin for testing your own actors against spinnactors.

Installed with the package (entry point ``pytest11``), it gives every test
suite these fixtures:

``virtual_board``  a VirtualBoard serving UDP on 127.0.0.1 (a free port)
``memory_board``   a VirtualBoard on an in-memory link, and that network
``fault_plan``     makes seeded FaultPlans: ``fault_plan(drop=0.05)``
``fake_clock``     a FakeClock (defined here) that moves only when told:
                   everything in spinnactors that cares about time takes
                   a clock, so timeouts and backoffs play out exactly
``actor_system``   starts actors under a Supervisor, stops them after the
                   test, and fails the test if any thread or actor is left
``run_async``      runs a coroutine on a fresh event loop (``asyncio.run``)
                   with a time limit: the pattern for testing code that
                   uses ``actors.aio``, no async pytest plugin needed

Each is torn down after its test, whatever the test did.
"""

from __future__ import annotations

import asyncio
import threading
import time
import zlib
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pykka
import pytest

from actors.placement.spawner import is_spawner
from actors.supervision.api import await_child
from actors.supervision.child import Watch, stop_and_join
from actors.supervision.errors import ChildNotRunning
from actors.supervision.spec import ChildSpec
from actors.supervision.supervisor import Supervisor
from transport import FaultPlan, MemoryNetwork, VirtualBoard


class FakeClock:
    """A settable clock; ``sleep`` moves it on instead of
    waiting (and remembers how long each sleep was). Safe to read from
    other threads, such as an actor's."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move on ``seconds`` (negative: back, to test code against a
        clock that misbehaves)."""
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"seconds={seconds}: cannot sleep backwards")
        with self._lock:
            self.sleeps.append(seconds)
            self._now += seconds


#: How long teardown waits for threads to end before calling them leaked.
_JOIN = 5.0


@pytest.fixture
def virtual_board() -> Iterator[VirtualBoard]:
    """A 4x4 virtual board on UDP 127.0.0.1; its ``address`` to talk to."""
    with VirtualBoard(4, 4) as board:
        yield board


@pytest.fixture
def memory_board() -> Iterator[tuple[VirtualBoard, MemoryNetwork]]:
    """A 4x4 virtual board on an in-memory link, and the network: make
    your connection's endpoint with ``network.endpoint()``."""
    network = MemoryNetwork()
    with VirtualBoard(4, 4, network=network) as board:
        yield board, network


@pytest.fixture
def fault_plan(request: pytest.FixtureRequest) -> Callable[..., FaultPlan]:
    """Makes FaultPlans seeded from the test's name, so a failing run
    replays exactly: ``fault_plan(drop=0.05, duplicate=0.05)``."""
    seed = zlib.crc32(request.node.nodeid.encode())

    def make(**chances: float) -> FaultPlan:
        return FaultPlan(seed=seed, **chances)

    return make


@pytest.fixture
def fake_clock() -> FakeClock:
    """A clock at 0.0 that moves only with ``advance`` or ``sleep``."""
    return FakeClock()


#: How long run_async lets a coroutine run unless told otherwise.
ASYNC_TIMEOUT = 30.0


def run_coroutine(
    coroutine: Coroutine[Any, Any, Any], timeout: float = ASYNC_TIMEOUT
) -> Any:
    """``asyncio.run(coroutine)``, failing with a clear message if it has
    not finished after ``timeout`` seconds (an await that never ends
    should fail the test, not hang it). A board or listener opened inside
    and left open is closed when the loop ends."""

    async def bounded() -> Any:
        try:
            return await asyncio.wait_for(coroutine, timeout)
        except asyncio.TimeoutError:
            pytest.fail(f"the coroutine did not finish in {timeout:g} s", False)

    return asyncio.run(bounded())


@pytest.fixture
def run_async() -> Callable[..., Any]:
    """``run_async(coroutine, timeout=30)``: run a test's coroutine to its
    end on a fresh event loop (see run_coroutine); use it with
    ``actor_system`` to check that nothing was left running."""
    return run_coroutine


class ActorSystem:
    """Actors a test starts, supervised, and checked for leaks after it."""

    def __init__(self) -> None:
        self._supervisors: list[pykka.ActorRef[Any]] = []
        self._homes: dict[str, pykka.ActorRef[Any]] = {}

    def supervise(self, *specs: ChildSpec, **options: Any) -> pykka.ActorRef[Any]:
        """Start a Supervisor (``strategy``, ``max_restarts``, ... as
        options) over ``specs``; stopped when the test ends."""
        supervisor = Supervisor.start(list(specs), **options)
        self._supervisors.append(supervisor)
        for spec in specs:
            self._homes[spec.id] = supervisor
        return supervisor

    def start(
        self,
        child_id: str,
        start: Callable[[Watch], pykka.ActorRef[Any]],
        **options: Any,
    ) -> pykka.ActorRef[Any]:
        """Start one supervised actor; its current ActorRef."""
        self.supervise(ChildSpec(child_id, start), **options)
        return self.current(child_id)

    def current(
        self,
        child_id: str,
        timeout: float = 5.0,
        not_: pykka.ActorRef[Any] | None = None,
    ) -> pykka.ActorRef[Any]:
        """The running incarnation of ``child_id`` (other than ``not_``,
        to wait for a restart), waiting up to ``timeout``."""
        return self.where_is(self._homes[child_id], child_id, timeout, not_)

    @staticmethod
    def where_is(
        supervisor: pykka.ActorRef[Any],
        child_id: str,
        timeout: float = 5.0,
        not_: pykka.ActorRef[Any] | None = None,
    ) -> pykka.ActorRef[Any]:
        """As current(), for a child of ``supervisor``: woken by the
        supervisor when the child runs (AwaitChild), and by ``not_``'s end
        when waiting for a restart; no polling."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                ref = await_child(
                    supervisor, child_id, max(deadline - time.monotonic(), 0.0)
                )
            except ChildNotRunning as error:
                raise AssertionError(f"{child_id!r} is not running: {error}") from None
            if ref != not_:
                return ref
            # Still the incarnation to leave behind: once it has ended, the
            # supervisor answers with the next one.
            if not not_.actor_stopped.wait(max(deadline - time.monotonic(), 0.0)):
                raise AssertionError(f"{child_id!r} was not restarted in {timeout} s")

    def stop(self) -> None:
        for supervisor in reversed(self._supervisors):
            stop_and_join(supervisor, 30)
        self._supervisors.clear()


@pytest.fixture
def actor_system() -> Iterator[ActorSystem]:
    """Supervised actors for one test; fails the test if, once they are
    stopped, any thread or actor the test started is still there."""
    threads_before = set(threading.enumerate())
    actors_before = set(pykka.ActorRegistry.get_all())
    system = ActorSystem()
    try:
        yield system
    finally:
        system.stop()
    leaked_actors = [
        ref for ref in pykka.ActorRegistry.get_all() if ref not in actors_before
    ]
    for ref in leaked_actors:
        ref.stop(block=False)
    # The spawner that starts worker processes lasts as long as the process.
    new_threads = [
        thread
        for thread in threading.enumerate()
        if thread not in threads_before and not is_spawner(thread)
    ]
    for thread in new_threads:
        thread.join(_JOIN)
    leaked_threads = [thread.name for thread in new_threads if thread.is_alive()]
    if leaked_actors or leaked_threads:
        pytest.fail(
            f"the test left actors {leaked_actors} and threads "
            f"{leaked_threads} running",
            pytrace=False,
        )
