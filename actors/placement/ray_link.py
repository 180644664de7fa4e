"""Ray placement: a board group in a Ray actor, anywhere in a Ray cluster.

The Ray actor (a plain class here, ``RayGroup``, made remote only when
used) runs the group with ``serve()`` (actors/placement/worker.py) in a
thread of its own, fed by a queue: the parent pushes pickled batches into
it and long-polls the batches ``serve()`` sends back (outcomes, stats,
heartbeats...), several at a time. Every call carries a batch, never a
packet. Pushes carry a sequence number and the actor hands them to the
group in that order, whatever order Ray runs the calls in.

Ray is imported only when a RayLink is made, so the package works without
it. If Ray is not initialized then, a local instance is started
(``ray.init()``); to place groups on a cluster, call
``ray.init(address=...)`` first. A group's actor is owned by the process
that made it, so Ray ends it if that process dies: no orphans.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import queue
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

from actors.lifetime import close_first
from actors.placement.links import GroupLost, ready_pid
from actors.placement.wire import GroupFailed, GroupSpec, encode
from actors.placement.worker import Outbox, serve
from transport.logs import get_logger

log = get_logger(__name__)

#: How long a new group may take to say it is ready (an actor waits for
#: resources in the cluster, and its worker imports this package).
START_TIMEOUT = 60.0
#: How long one long poll waits in the actor for something to send back
#: (the group sends a heartbeat every 0.1 s when idle, so it rarely waits).
POLL_WAIT = 1.0
#: Options of each group's actor: a CPU each (a group keeps one busy),
#: spread over the cluster's nodes. Override with ``actor_options``.
ACTOR_OPTIONS: Mapping[str, Any] = {"num_cpus": 1, "scheduling_strategy": "SPREAD"}
#: The actor's concurrency groups: pushes, polls and control calls each
#: run on their own thread, so a long poll never holds up a push.
_GROUPS = {"push": 1, "poll": 1, "control": 1}
#: Put after the last batch of a group that has ended.
_END = b""


class RayGroup:
    """The Ray actor that runs one board group (its methods are called
    through Ray by RayLink)."""

    def __init__(self, spec: GroupSpec) -> None:
        self._inbound: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._outbound = Outbox()
        self._lock = threading.Lock()
        self._next = 0
        self._early: dict[int, bytes] = {}
        self._done = False
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(spec,), name=f"ray-{spec.name}", daemon=True
        )
        self._thread.start()

    def _run(self, spec: GroupSpec) -> None:
        try:
            serve(spec, self._receive, self._outbound.put, self._stopping)
        except BaseException as error:  # noqa: BLE001 - told to the parent
            log.exception("group.crashed", group=spec.name)
            self._outbound.put(encode([GroupFailed(f"the group crashed: {error!r}")]))
        finally:
            self._outbound.put(_END)

    def _receive(self, timeout: float) -> bytes | None:
        try:
            return self._inbound.get(timeout=timeout)
        except queue.Empty:
            return None

    def push(self, seq: int, blob: bytes) -> None:
        """A batch from the parent, the ``seq``-th it sent."""
        with self._lock:
            self._early[seq] = blob
            while self._next in self._early:
                self._inbound.put(self._early.pop(self._next))
                self._next += 1

    def take(self, wait: float) -> list[bytes] | None:
        """Every batch waiting to go back (waits up to ``wait`` for a first
        one); None once the group has ended and all of them are taken."""
        if self._done:
            return None
        batches: list[bytes] = self._outbound.take(wait)
        if _END in batches:
            self._done = True
            batches = batches[: batches.index(_END)]
            return batches or None
        return batches

    def host(self) -> str:
        return socket.gethostname()

    def ended(self, grace: float) -> bool:
        """Whether the group has ended, waiting up to ``grace`` for it."""
        self._thread.join(grace)
        return not self._thread.is_alive()


def _ray() -> Any:
    try:
        import ray
    except ImportError as error:
        raise ImportError(
            'placement="ray" needs Ray: pip install "spinnactors[ray]"'
        ) from error
    return ray


_init_lock = threading.Lock()
_remote_class: Any = None


def start_ray() -> Any:
    """The ray module, initialized: a local instance is started unless
    ``ray.init(address=...)`` was called first to join a cluster."""
    global _remote_class
    ray = _ray()
    with _init_lock:
        if not ray.is_initialized():
            log.info("ray.start_local")
            ray.init()
        close_first()  # ray.init registered ray.shutdown at exit: ours first
        if _remote_class is None:
            _remote_class = ray.remote(concurrency_groups=_GROUPS)(RayGroup)
    return ray


class RayLink:
    """The parent's end of a group running in a Ray actor (GroupLink).

    ``actor_options`` replace ACTOR_OPTIONS (e.g. ``{"num_cpus": 0}``, or a
    ``resources`` or ``scheduling_strategy`` to pin groups to nodes); pass
    ``functools.partial(RayLink, actor_options=...)`` as a Machine's
    ``start_link``.
    """

    def __init__(
        self,
        spec: GroupSpec,
        *,
        actor_options: Mapping[str, Any] | None = None,
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        self._ray = ray = start_ray()
        self.pid: int | None = None
        self._closed = False
        self._seq = itertools.count()
        self._sent: list[Any] = []  # refs of pushes not known to be done
        self._poll: Any = None  # the long poll under way
        self._received: collections.deque[bytes] = collections.deque()
        options = dict(ACTOR_OPTIONS if actor_options is None else actor_options)
        options.setdefault("name", f"spinnactors-{spec.name}-{uuid.uuid4().hex[:8]}")
        self.name: str = options["name"]
        self.where = f"ray actor {self.name}"
        self._actor = _remote_class.options(**options).remote(spec)
        try:
            host = self._call("control", "host")
            deadline = time.monotonic() + start_timeout
            first = None
            while first is None:  # a poll ends empty after POLL_WAIT
                left = deadline - time.monotonic()
                if left <= 0:
                    raise GroupLost(
                        f"{self.where} did not start within {start_timeout} s"
                    )
                first = self.receive(left)
            self.pid = ready_pid(first, self.where)
            self.where = (
                f"ray actor {self.name} (pid {self.pid} on "
                f"{ray.get(host, timeout=left)})"
            )
        except BaseException:
            self.close(0)
            raise

    @property
    def actor(self) -> Any:
        """The Ray actor handle (for watching it, or killing it in tests)."""
        return self._actor

    def send(self, blob: bytes) -> None:
        self._check_open()
        self._check_sent()
        self._sent.append(self._call("push", "push", next(self._seq), blob))

    def receive(self, timeout: float) -> bytes | None:
        if self._received:
            return self._received.popleft()
        self._check_open()
        if self._poll is None:
            self._poll = self._call("poll", "take", POLL_WAIT)
        ready, _ = self._ray.wait([self._poll], timeout=timeout)
        if not ready:
            return None
        poll, self._poll = self._poll, None
        batches = self._get(poll)
        if batches is None:
            raise GroupLost(f"{self.where}: the group has ended")
        self._poll = self._call("poll", "take", POLL_WAIT)  # the next, now
        self._received.extend(batches)
        return self._received.popleft() if self._received else None

    def abandon(self) -> None:
        # Pushes never block, so only the hung actor itself needs ending.
        ray = self._ray
        if not self._closed and ray.is_initialized():
            with contextlib.suppress(ray.exceptions.RayError):
                ray.kill(self._actor, no_restart=True)

    def close(self, grace: float) -> None:
        if self._closed:
            return
        self._closed = True
        self._poll = None
        self._sent.clear()
        self._received.clear()
        ray = self._ray
        if not ray.is_initialized():  # shut down: its actors went with it
            return
        errors = (ray.exceptions.RayError, ray.exceptions.GetTimeoutError)
        if grace > 0:
            # The group ends by itself once told to Stop.
            with contextlib.suppress(*errors):
                ray.get(self._call("control", "ended", grace), timeout=grace + 5)
        ray.kill(self._actor, no_restart=True)
        # Returns once Ray knows the actor is dead (its CPU is free).
        with contextlib.suppress(*errors):
            ray.get(self._call("control", "ended", 0), timeout=30)

    # -- inside ----------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise GroupLost(f"{self.where}: the link is closed")
        if not self._ray.is_initialized():  # a call would start a new Ray
            raise GroupLost(f"{self.where}: Ray has been shut down")

    def _call(self, group: str, method: str, *args: Any) -> Any:
        return (
            getattr(self._actor, method).options(concurrency_group=group).remote(*args)
        )

    def _get(self, ref: Any) -> Any:
        try:
            return self._ray.get(ref)
        except self._ray.exceptions.RayError as error:
            raise GroupLost(f"{self.where} has gone: {type(error).__name__}") from error

    def _check_sent(self) -> None:
        """Raise GroupLost if a push has failed (the actor has gone)."""
        if not self._sent:
            return
        done, self._sent = self._ray.wait(
            self._sent, num_returns=len(self._sent), timeout=0
        )
        for ref in done:
            self._get(ref)
