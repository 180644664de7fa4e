"""ConnectionListener is a Thread, as SpiNNMan's is: start(), run(),
is_alive(), join(), name and daemon behave as a Thread's do.

Real pykka actors over in-memory links; waits end on events and joins,
and the only timed waits check that something has *not* happened yet.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pykka
import pytest

from actors import ConnectionListener
from tests.actors.listening.test_listener import WAIT, Link, Recorder


@pytest.fixture
def link() -> Iterator[Link]:
    made = Link()
    try:
        yield made
    finally:
        made.close()
        pykka.ActorRegistry.stop_all()


@pytest.mark.timeout(20)
def test_it_is_a_daemon_thread_named_as_spinnmans(link: Link) -> None:
    listener = ConnectionListener(link.connection)
    assert isinstance(listener, threading.Thread)
    assert listener.daemon is True
    assert listener.name == f"Connection listener for connection {link.connection}"
    listener.daemon = False  # settable until it starts, as a Thread's
    assert not listener.daemon
    named = ConnectionListener(link.connection, name="tag-1 listener", daemon=False)
    assert (named.name, named.daemon) == ("tag-1 listener", False)
    named.name = "renamed"
    assert named.name == "renamed"
    named.start()
    try:
        with pytest.raises(RuntimeError):
            named.daemon = True
        assert named.is_alive()
    finally:
        named.close()


@pytest.mark.timeout(20)
def test_start_is_alive_join_and_close(link: Link) -> None:
    listener = ConnectionListener(link.connection, timeout=0.2)
    recorder = Recorder()
    listener.add_callback(recorder)
    assert not listener.is_alive()
    with pytest.raises(RuntimeError):
        listener.join()  # as a Thread: not before it has started
    listener.start()
    try:
        assert listener.is_alive()
        assert listener.ident is not None
        link.send(0, 1)
        assert recorder.wait_for(2) == [0, 1]
        listener.join(0.2)  # a join that times out leaves it running
        assert listener.is_alive()
        with pytest.raises(RuntimeError):
            listener.start()
    finally:
        listener.close()
    assert not listener.is_alive()
    listener.join()  # returns at once once closed
    assert pykka.ActorRegistry.get_all() == []
    with pytest.raises(RuntimeError):
        listener.start()


@pytest.mark.timeout(20)
def test_join_returns_when_another_thread_closes_it(link: Link) -> None:
    listener = ConnectionListener(link.connection, timeout=0.2)
    listener.add_callback(Recorder())
    listener.start()
    joined = threading.Event()

    def join() -> None:
        listener.join()
        joined.set()

    joiner = threading.Thread(target=join)
    joiner.start()
    try:
        assert not joined.wait(0.3), "join() returned while it was listening"
        listener.close()
        assert joined.wait(WAIT)
        assert not listener.is_alive()
    finally:
        listener.close()
        joiner.join(WAIT)


@pytest.mark.timeout(20)
def test_the_thread_ends_by_itself_when_the_connection_closes(link: Link) -> None:
    listener = ConnectionListener(link.connection, timeout=0.2)
    recorder = Recorder()
    listener.add_callback(recorder)
    listener.start()
    try:
        link.send(0, 1, 2)
        assert recorder.wait_for(3) == [0, 1, 2]
        link.connection.close()
        listener.join(WAIT)  # no close(): run() returns, as a Thread's would
        assert not listener.is_alive()
        assert pykka.ActorRegistry.get_all() == []
    finally:
        listener.close()
    assert recorder.numbers == [0, 1, 2]


@pytest.mark.timeout(20)
def test_run_listens_on_the_callers_thread_until_closed(link: Link) -> None:
    listener = ConnectionListener(link.connection, timeout=0.2)
    recorder = Recorder()
    listener.add_callback(recorder)
    runner = threading.Thread(target=listener.run)
    runner.start()
    try:
        link.send(0, 1)
        assert recorder.wait_for(2) == [0, 1]
        assert recorder.thread.name.startswith("CallbackActor")
        runner.join(0.2)
        assert runner.is_alive(), "run() returned while it was listening"
        listener.close()
        runner.join(WAIT)
        assert not runner.is_alive()
    finally:
        listener.close()
        runner.join(WAIT)
    assert pykka.ActorRegistry.get_all() == []
    listener.run()  # closed: returns at once


@pytest.mark.timeout(20)
def test_a_raising_callback_leaves_the_thread_alive(link: Link) -> None:
    listener = ConnectionListener(link.connection, n_processes=1, timeout=0.2)
    raiser = Recorder(raise_on=lambda number: True)
    beside = Recorder()
    listener.add_callback(raiser)
    listener.add_callback(beside)
    listener.start()
    try:
        link.send(*range(10))
        assert beside.wait_for(10) == list(range(10))
        assert raiser.raised == 10
        assert listener.is_alive()
    finally:
        listener.close()
    assert not listener.is_alive()


@pytest.mark.timeout(20)
def test_its_own_names_leave_threads_internals_alone(link: Link) -> None:
    """Subclassing Thread: none of our attributes or methods may shadow one
    of Thread's private ones (a ``_stop`` of ours would break join())."""
    listener = ConnectionListener(link.connection)
    plain = threading.Thread()
    thread_names = set(dir(threading.Thread)) | set(vars(plain))
    ours = (set(vars(listener)) - set(vars(plain))) | set(vars(ConnectionListener))
    overridden = {name for name in ours & thread_names if not name.startswith("__")}
    assert overridden == {"run", "start"}
