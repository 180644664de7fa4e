"""A user's process is never held hostage: scripts that forget close(),
finish() or a Machine's close still exit, and worker processes die with
their parent, during start-up too.

Each script runs as a child process (``sys.executable -c``) against
VirtualBoards served over UDP on 127.0.0.1 by this test process. A script
prints LAST as its last line; it must be gone 2 s after that line is read.
Its own atexit hook, registered before it imports spinnactors (hooks run
last registered first, so it runs after ours), reports what our hook left
running: no actor may be left, and a job still open must have ended with
ShutDown.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.placement.links import ProcessLink
from actors.placement.parent import STOP_GRACE
from actors.placement.wire import (
    BoardSpec,
    GetGroupStats,
    GroupSpec,
    GroupStats,
    Stop,
    decode,
    encode,
)
from tests.system.machine_kit import process_running, wait_until
from transport import VirtualBoard
from transport.virtual.traffic import TagTraffic

ROOT = Path(__file__).resolve().parents[2]
#: How long a script may live after its last line (the hook's budget is 1 s).
AFTER_LAST_LINE = 2.0
#: How long a worker may live after its parent has gone.
AFTER_PARENT = 2.0

PRELUDE = """\
import atexit, queue, sys

sink = queue.SimpleQueue()  # outcomes of jobs posted by the script

def report():
    import pykka
    print("actors left", len(pykka.ActorRegistry.get_all()), flush=True)
    if "server" in globals():  # a MetricsServer, closed by the exit hook
        print("metrics server closed", server.closed, flush=True)
    while not sink.empty():
        for outcome in sink.get():
            print("outcome", outcome.key, type(outcome.error).__name__, flush=True)

atexit.register(report)
host, ports = sys.argv[1], [int(port) for port in sys.argv[2:]]
"""

LISTENER = """\
import threading
from actors import ConnectionListener
from messages.scp import IPTagSet
from transport import SCAMPConnection, SDPConnection
from transport.connections.call import call

heard = threading.Event()
connection = SDPConnection(local_host="127.0.0.1")
listener = ConnectionListener(connection)
listener.add_callback(lambda message: heard.set())
listener.start()
with SCAMPConnection(remote_host=host, remote_port=ports[0]) as scamp:
    call(scamp, IPTagSet(0, 0, "127.0.0.1", connection.local_port, tag=1))
assert heard.wait(30), "the listener heard nothing"
"""

CLIENT = """\
from actors import connect
from actors.protocol.jobs import ReadJob

client = connect(host, ports[0])
assert client.read(0, 0, 0x6000_0000, 1024) == bytes(1024)
client.post([ReadJob("open read", 0, 0, 0, 0x6000_0000, 1 << 20)], sink)
"""

PIPELINE = """\
from actors import SCPRequestPipeLine
from messages.scp import ReadMemory
from transport import SCAMPConnection

pipeline = SCPRequestPipeLine(
    SCAMPConnection(remote_host=host, remote_port=ports[0]), n_channels=8
)
for _ in range(200):
    pipeline.send_request(
        ReadMemory((0, 0, 0), 0x6000_0000, 256), None, lambda *failure: None
    )
"""

MACHINE = """\
from actors import connect

machine = connect([(host, port) for port in ports], workers=2)
assert machine.read(0, 0, 0, 0x6000_0000, 256) == bytes(256)
assert machine.read(1, 0, 0, 0x6000_0000, 256) == bytes(256)
print("workers", *machine.worker_pids, flush=True)
"""

METRICS = """\
import urllib.request
from actors import connect
from actors.metrics import serve

client = connect(host, ports[0])
assert client.read(0, 0, 0x6000_0000, 256) == bytes(256)
server = serve(0)
with urllib.request.urlopen(server.url + "/metrics", timeout=30) as answer:
    assert b"spinnactors_requests_total" in answer.read()
"""

INSTALLED = """\
from spinn_utilities.config_holder import set_config
from spinnman.config_setup import unittest_setup
from spinnman.connections.udp_packet_connections import SCAMPConnection
from spinnman.transceiver import create_transceiver_from_connections

from actors.compat import install

unittest_setup()
set_config("Machine", "version", "5")
install()
transceiver = create_transceiver_from_connections(
    [SCAMPConnection(0, 0, remote_host=host, remote_port=ports[0])]
)
assert transceiver.read_memory(0, 0, 0x6000_0000, 4096) == bytes(4096)
"""

COLD = """\
from actors.board.client import Client
from actors.boot import BoardBMP, BootOptions
from actors.boot.recovery import Recovery
from transport import ROMSettings, VirtualBMP, VirtualBoard
from transport.virtual.rom import first_free_loopback

settings = ROMSettings(hello_to=None, netinit=0)
board = first_free_loopback(
    lambda host: VirtualBoard(2, 2, host=host, booted=False, rom=settings),
    start=160,
).start()
bmp = VirtualBMP([board], power_on_delay=0.05).start()
boot = BootOptions(probe_timeout=0.3, pass_timeout=0.5, power_settle=0.2)
recovery = Recovery(
    bmp=BoardBMP(bmp.address[0], 0, bmp.address[1]), boot=boot, hung_after=1.0
)
client = Client(*board.address, recovery=recovery)
client.boot(boot)
assert client.read(0, 0, 0x6000_0000, 256) == bytes(256)
"""

ENDINGS = {
    "returns": 'print("LAST", flush=True)\n',
    "raises": 'print("LAST", flush=True)\nraise RuntimeError("the caller failed")\n',
}


@pytest.fixture(scope="module")
def slow_board() -> Iterator[VirtualBoard]:
    """2 ms a request: a 1 MiB read takes 8 s, so it is open at exit."""
    with VirtualBoard(2, 2, service_time=0.002) as board:
        yield board


@pytest.fixture(scope="module")
def talking_board() -> Iterator[VirtualBoard]:
    """Sends SDP to its IP tags, for a listener to hear."""
    with VirtualBoard(2, 2, traffic=TagTraffic(200.0)) as board:
        yield board


@pytest.fixture(scope="module")
def boards() -> Iterator[list[VirtualBoard]]:
    with VirtualBoard(2, 2) as first, VirtualBoard(2, 2) as second:
        yield [first, second]


def start_script(body: str, boards: list[VirtualBoard]) -> subprocess.Popen[str]:
    host = boards[0].address[0]
    ports = [str(board.address[1]) for board in boards]
    return subprocess.Popen(
        [sys.executable, "-c", PRELUDE + body, host, *ports],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def end_script(script: subprocess.Popen[str], workers: list[int]) -> None:
    """Kill what a failed test left (workers first: they hold the
    script's stdout open) and close its pipes."""
    for pid in workers:
        if process_running(pid):
            os.kill(pid, signal.SIGKILL)
    if script.poll() is None:
        script.kill()
    script.communicate(timeout=30)


def run_to_exit(
    body: str,
    ending: str,
    boards: list[VirtualBoard],
    within: float = AFTER_LAST_LINE,
) -> list[str]:
    """Run the script; the lines it printed at exit (after LAST). Fails if
    it outlives LAST by ``within`` s, or if the workers it printed (a line
    "workers PID...") outlive it by ``within`` s."""
    script = start_script(body + ENDINGS[ending], boards)
    workers: list[int] = []
    try:
        assert script.stdout is not None and script.stderr is not None
        while (line := script.stdout.readline()) != "LAST\n":
            if not line:
                raise AssertionError(f"the script failed: {script.stderr.read()}")
            if line.startswith("workers "):
                workers = [int(pid) for pid in line.split()[1:]]
        try:
            script.wait(timeout=within)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"the script was still alive {within} s after its last line"
            ) from None
        wait_until(
            lambda: not any(process_running(pid) for pid in workers),
            f"the workers {workers} ended",
            limit=within,
        )
        # Through the same buffered reader as LAST: it may hold these too.
        after, error = script.stdout.read(), script.stderr.read()
    finally:
        end_script(script, workers)
    assert script.returncode == (0 if ending == "returns" else 1), error
    if ending == "raises":
        assert "RuntimeError: the caller failed" in error
    return after.splitlines()


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_a_listener_never_closed_lets_the_script_exit(
    talking_board: VirtualBoard, ending: str
) -> None:
    after = run_to_exit(LISTENER, ending, [talking_board])
    assert after == ["actors left 0"]


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_a_client_never_closed_lets_the_script_exit(
    slow_board: VirtualBoard, ending: str
) -> None:
    after = run_to_exit(CLIENT, ending, [slow_board])
    # The read still open at exit ended, once, with ShutDown.
    assert after == ["actors left 0", "outcome open read ShutDown"]


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_a_pipeline_never_finished_lets_the_script_exit(
    slow_board: VirtualBoard, ending: str
) -> None:
    after = run_to_exit(PIPELINE, ending, [slow_board])
    assert after == ["actors left 0"]


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_a_metrics_server_never_closed_lets_the_script_exit(
    boards: list[VirtualBoard], ending: str
) -> None:
    after = run_to_exit(METRICS, ending, boards[:1])
    assert after == ["actors left 0", "metrics server closed True"]


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_a_spinnman_transceiver_never_closed_under_install_lets_the_script_exit(
    boards: list[VirtualBoard], ending: str
) -> None:
    # install()'s connection actors linger 30 s after an operation for the
    # Transceiver's next one: they must not hold up a script that forgets
    # transceiver.close().
    after = run_to_exit(INSTALLED, ending, boards[:1])
    assert after == ["actors left 0"]


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_a_cold_board_its_bmp_and_a_recovering_client_never_stopped_let_the_script_exit(
    boards: list[VirtualBoard], ending: str
) -> None:
    # The boot ROM's and the BMP's servers, the boot, and the recovery
    # watcher (the script's own board and BMP; ``boards`` is not used).
    after = run_to_exit(COLD, ending, boards[:1])
    assert after == ["actors left 0"]


@pytest.mark.timeout(90)
@pytest.mark.parametrize("ending", list(ENDINGS))
def test_a_machine_never_closed_lets_the_script_exit_and_its_workers_end(
    boards: list[VirtualBoard], ending: str
) -> None:
    # run_to_exit checks that the workers it printed end with it. (Whether
    # the hook's close finished within its 1 s, leaving no actor, depends
    # on the machine's load: not checked here.)
    run_to_exit(MACHINE, ending, boards)


RAY_MACHINE = """\
import os
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
import ray
from actors import connect

ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
         logging_level="ERROR", object_store_memory=100 << 20)
machine = connect([(host, port) for port in ports], workers=2, placement="ray")
assert machine.read(0, 0, 0, 0x6000_0000, 256) == bytes(256)
assert machine.read(1, 0, 0, 0x6000_0000, 256) == bytes(256)
print("workers", *machine.worker_pids, flush=True)
"""
#: ray.shutdown(), Ray's own atexit hook (after ours), takes about 2 s here.
RAY_SHUTDOWN = 15.0


@pytest.mark.timeout(180)
def test_a_ray_machine_never_closed_lets_the_script_exit_and_its_actors_end(
    boards: list[VirtualBoard],
) -> None:
    pytest.importorskip("ray")
    # run_to_exit checks that the actors' processes end with it.
    run_to_exit(RAY_MACHINE, "returns", boards, within=RAY_SHUTDOWN)


# -- a parent killed while its Machine starts ---------------------------------------

STARTING = """\
import multiprocessing, threading
from actors import connect

def watch():
    # Each worker's pid as soon as its process exists (it is then still
    # starting: importing, or building its boards' clients).
    seen, pause = set(), threading.Event()
    while True:
        for process in multiprocessing.active_children():
            if process.pid is not None and process.pid not in seen:
                seen.add(process.pid)
                print("worker", process.pid, flush=True)
        pause.wait(0.001)

threading.Thread(target=watch, daemon=True).start()
machine = connect([(host, port) for port in ports], workers=2)
threading.Event().wait(60)
"""


def has_acted(pid: int) -> bool:
    """Whether worker ``pid`` is past its first acts (the death signal and
    the parent check): it has started threads, its boards' clients', and
    a worker has only one thread until then."""
    try:
        return len(os.listdir(f"/proc/{pid}/task")) > 1
    except OSError:
        return False


def first_worker(parent: subprocess.Popen[str]) -> int:
    """The pid of the parent's first worker, as soon as it exists."""
    assert parent.stdout is not None
    line = parent.stdout.readline()
    assert line.startswith("worker "), (line, parent.communicate(timeout=30))
    return int(line.split()[1])


@pytest.mark.timeout(90)
def test_workers_die_with_a_parent_killed_during_start_up(
    boards: list[VirtualBoard],
) -> None:
    # Killed while its first worker starts its boards' clients (or has
    # just said it is ready) and before the second exists.
    parent = start_script(STARTING, boards)
    workers: list[int] = []
    try:
        workers.append(first_worker(parent))
        wait_until(lambda: has_acted(workers[0]), "the worker's first acts", 30)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        wait_until(
            lambda: not any(process_running(pid) for pid in workers),
            f"the orphaned worker {workers} ended",
            limit=AFTER_PARENT,
        )
    finally:
        end_script(parent, workers)


#: A worker can act only once its interpreter has started and imported
#: this package (0.3-0.6 s on an idle machine, 3 s seen at a load of 7 on
#: 2 cores): no death signal can be armed before that.
START_UP = 30.0


@pytest.mark.timeout(90)
def test_a_worker_still_importing_when_its_parent_dies_exits_at_its_first_act(
    boards: list[VirtualBoard],
) -> None:
    parent = start_script(STARTING, boards)
    workers: list[int] = []
    try:
        workers.append(first_worker(parent))
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        wait_until(
            lambda: not any(process_running(pid) for pid in workers),
            f"the orphaned worker {workers} ended",
            limit=START_UP,
        )
    finally:
        end_script(parent, workers)


RUNNING = """\
import threading
from actors import connect

machine = connect([(host, port) for port in ports], workers=2)
assert machine.read(0, 0, 0, 0x6000_0000, 256) == bytes(256)
print("workers", *machine.worker_pids, flush=True)
threading.Event().wait(60)
"""


@pytest.mark.timeout(90)
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")
def test_stopped_workers_die_with_their_parent(boards: list[VirtualBoard]) -> None:
    # A stopped worker cannot see its pipe close: only the death signal
    # the kernel sends when the parent dies can end it.
    parent = start_script(RUNNING, boards)
    workers: list[int] = []
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()
        assert line.startswith("workers "), (line, parent.communicate(timeout=30))
        workers = [int(pid) for pid in line.split()[1:]]
        for pid in workers:
            os.kill(pid, signal.SIGSTOP)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        wait_until(
            lambda: not any(process_running(pid) for pid in workers),
            f"the stopped workers {workers} ended",
            limit=AFTER_PARENT,
        )
    finally:
        end_script(parent, workers)


@pytest.mark.timeout(90)
def test_a_worker_started_from_a_thread_that_ends_keeps_serving(
    boards: list[VirtualBoard],
) -> None:
    # The death signal follows the thread that forked a worker: a link made
    # on a short-lived thread (a thread pool's, a start_link's) must not
    # lose its worker when that thread ends (workers fork on the spawner).
    spec = GroupSpec("group-0", (BoardSpec(0, *boards[0].address),))
    made: list[ProcessLink] = []
    maker = threading.Thread(target=lambda: made.append(ProcessLink(spec)))
    maker.start()
    maker.join(60)
    (link,) = made
    try:
        # Gone from the kernel's task list: any death signal has been sent.
        wait_until(
            lambda: not os.path.exists(f"/proc/self/task/{maker.native_id}"),
            "the maker thread gone",
        )
        link.send(encode([GetGroupStats(ticket=1)]))
        answers: list[GroupStats] = []
        while not answers:
            blob = link.receive(30)
            assert blob is not None, "the worker fell silent"
            answers += [m for m in decode(blob) if isinstance(m, GroupStats)]
        assert answers[0].ticket == 1
        assert link.pid is not None and process_running(link.pid)
        link.send(encode([Stop()]))
    finally:
        link.close(STOP_GRACE)
