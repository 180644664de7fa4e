"""What Prometheus scraping costs a transfer: bench/pipeline_throughput.py's
spinnactors read (window 8, a board in its own process), with and without
a process of its own (as Prometheus is) fetching /metrics every 100 ms, in
interleaved rounds. Reported: median MB/s of each, their ratio, the CPU
per request of each and their ratio, and the median time one scrape took.

    python bench/metrics_cost.py [--mib 8] [--rounds 9] [--every 0.1]

Each read runs in a child process of its own that serves /metrics, so
its CPU time (user + sys, from os.wait4: the client's threads and the
metrics server's) is its own; a zero-byte run of the same child is
subtracted (scraped as its read is: its first scrape, which sets up what
later ones reuse, comes before the read), leaving what the requests and
the scrapes during them cost.
The scraper is a sibling of the child, not counted in its CPU.

Needs the metrics extra (prometheus_client).
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cpu import Figures, Run, reap  # noqa: E402
from pipeline_throughput import MIB, spinnactors_read  # noqa: E402

from transport.links.endpoint import Address  # noqa: E402
from transport.virtual.process import BoardProcess  # noqa: E402

if TYPE_CHECKING:
    from multiprocessing.queues import SimpleQueue
    from multiprocessing.synchronize import Event


def _scrape(url: str, every: float, stop: Event, took: SimpleQueue[float]) -> None:
    """Fetch ``url`` every ``every`` seconds until ``stop`` is set."""
    while not stop.is_set():
        start = time.perf_counter()
        with urllib.request.urlopen(url, timeout=10) as answer:
            body = answer.read()
        assert b"spinnactors_requests_total" in body
        took.put(time.perf_counter() - start)
        stop.wait(every)


class Scraper:
    """A process of its own (as Prometheus is) scraping ``url``."""

    def __init__(self, url: str, every: float) -> None:
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self._took: SimpleQueue[float] = context.SimpleQueue()
        self._process = context.Process(
            target=_scrape, args=(url, every, self._stop, self._took), daemon=True
        )
        self.took: list[float] = []

    def __enter__(self) -> Scraper:
        self._process.start()
        # Its first scrape is done before the read starts.
        self.took.append(self._took.get())
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._process.join(30)
        while not self._took.empty():
            self.took.append(self._took.get())


# -- the child: serves /metrics, waits for the word, reads ---------------------


def child_main(host: str, port: str, size: str) -> int:
    from actors.metrics import serve

    with serve(0) as server:
        sys.stdout.write(server.url + "/metrics\n")
        sys.stdout.flush()
        sys.stdin.readline()  # the scraper (if any) has begun
        rate = spinnactors_read((host, int(port)), int(size), 8) if int(size) else 0
        sys.stdout.write(f"{rate}\n")
        sys.stdout.flush()
        sys.stdin.readline()  # the scraper has stopped: the server may go
    return 0


def run_child(
    address: Address, size: int, every: float | None
) -> tuple[Run, list[float]]:
    """One child's CPU seconds and MB/s, scraped every ``every`` seconds
    (None: not scraped), and how long each scrape took."""
    process = subprocess.Popen(
        [sys.executable, __file__, "--child", address[0], str(address[1]), str(size)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd="/",
    )
    stdin, stdout = process.stdin, process.stdout
    assert stdin is not None
    assert stdout is not None
    url = stdout.readline().strip()

    def read() -> str:
        """The word to read, and the MB/s the child answers."""
        stdin.write("go\n")
        stdin.flush()
        return stdout.readline()

    took: list[float] = []
    if every is None:
        output = read()
    else:
        with Scraper(url, every) as scraper:
            output = read()
        took = scraper.took
    stdin.write("done\n")
    stdin.flush()
    cpu = reap(process, "the child")
    stdin.close()
    stdout.close()
    return Run(cpu, float(output)), took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--every", type=float, default=0.1)
    parser.add_argument("--drop", type=float, default=0.0, help="board's request drop")
    args = parser.parse_args()
    size = args.mib * MIB
    requests = size // 256
    kinds: dict[str, float | None] = {"not scraped": None, "scraped": args.every}
    figures = {name: Figures([], []) for name in kinds}
    took: list[float] = []
    with BoardProcess(drop=args.drop) as board:
        print(
            f"board {board.address} (drop {args.drop}); {args.mib} MiB per "
            f"round, scrape every {args.every} s, {args.rounds} interleaved "
            "rounds, a child process a read",
            flush=True,
        )
        for index in range(args.rounds):
            # Alternate which goes first, so neither always follows the other.
            order = list(kinds) if index % 2 == 0 else list(kinds)[::-1]
            for name in order:
                entry = figures[name]
                entry.baselines.append(run_child(board.address, 0, kinds[name])[0].cpu)
                run, times = run_child(board.address, size, kinds[name])
                entry.runs.append(run)
                took.extend(times)
    print(f"{'':<16}{'median MB/s':>12}{'range':>14}{'us/request':>12}")
    rate: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for name, entry in figures.items():
        rates = [run.mb_per_s for run in entry.runs]
        rate[name] = statistics.median(rates)
        cpu[name] = statistics.median(entry.cpu_per_request(requests))
        print(
            f"{name:<16}{rate[name]:>12.1f}{min(rates):>7.1f}-{max(rates):<6.1f}"
            f"{cpu[name]:>12.2f}"
        )
    plain, scraped = figures["not scraped"].runs, figures["scraped"].runs
    ratios = [s.mb_per_s / p.mb_per_s for p, s in zip(plain, scraped, strict=True)]
    print(
        f"scraped / not: {rate['scraped'] / rate['not scraped']:.3f}x of the "
        f"medians, {statistics.median(ratios):.3f}x median of the rounds' "
        "ratios (target >= 0.98)"
    )
    print(
        f"CPU per request (the child's user+sys less a zero-byte run's): "
        f"{cpu['scraped'] / cpu['not scraped']:.3f}x scraped"
    )
    print(
        f"one scrape: median {statistics.median(took) * 1e3:.2f} ms over "
        f"{len(took)} scrapes"
    )
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        sys.exit(child_main(*sys.argv[2:]))
    sys.exit(main())
