"""What Prometheus scraping costs a transfer: bench/pipeline_throughput.py's
spinnactors read (window 8, a board in its own process), with and without
a process of its own (as Prometheus is) fetching /metrics every 100 ms, in
interleaved rounds. Reported: median MB/s of each, their ratio, and the
median time one scrape took.

    python bench/metrics_cost.py [--mib 8] [--rounds 9] [--every 0.1]

Needs the metrics extra (prometheus_client).
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline_throughput import MIB, Address, spinnactors_read  # noqa: E402

from actors.metrics import serve  # noqa: E402
from transport.board_process import BoardProcess  # noqa: E402


def _scrape(url: str, every: float, stop: Any, took: Any) -> None:
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
        self._took: Any = context.SimpleQueue()
        self._process = context.Process(
            target=_scrape, args=(url, every, self._stop, self._took), daemon=True
        )
        self.took: list[float] = []

    def __enter__(self) -> Scraper:
        self._process.start()
        self._took_first()
        return self

    def _took_first(self) -> None:
        """Wait for its first scrape: it is under way before we start."""
        self.took.append(self._took.get())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._process.join(30)
        while not self._took.empty():
            self.took.append(self._took.get())


def timed_read(address: Address, size: int) -> tuple[float, float]:
    """MB/s of one read, and this process's CPU per 256-byte request (all
    its threads: the client's and the metrics server's) in microseconds."""
    cpu = time.process_time()
    rate = spinnactors_read(address, size, 8)
    return rate, (time.process_time() - cpu) / (size / 256) * 1e6


def scraped_read(
    address: Address, size: int, url: str, every: float
) -> tuple[float, float, list[float]]:
    with Scraper(url, every) as scraper:
        rate, cpu = timed_read(address, size)
    return rate, cpu, scraper.took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--every", type=float, default=0.1)
    parser.add_argument("--drop", type=float, default=0.0, help="board's request drop")
    args = parser.parse_args()
    size = args.mib * MIB
    board = BoardProcess(drop=args.drop)
    plain: list[float] = []
    scraped: list[float] = []
    cpu: dict[str, list[float]] = {"plain": [], "scraped": []}
    took: list[float] = []
    try:
        with serve(0) as server:
            url = server.url + "/metrics"
            print(
                f"board {board.address} (drop {args.drop}); {args.mib} MiB per "
                f"round, scrape every {args.every} s, {args.rounds} interleaved "
                "rounds",
                flush=True,
            )
            for index in range(args.rounds):
                # Alternate which goes first, so neither always follows the other.
                order = ("plain", "scraped") if index % 2 == 0 else ("scraped", "plain")
                for name in order:
                    if name == "plain":
                        rate, used = timed_read(board.address, size)
                        plain.append(rate)
                    else:
                        rate, used, times = scraped_read(
                            board.address, size, url, args.every
                        )
                        scraped.append(rate)
                        took.extend(times)
                    cpu[name].append(used)
    finally:
        board.stop()
    p, s = statistics.median(plain), statistics.median(scraped)
    print(f"{'':<22}{'median MB/s':>12}{'range':>16}")
    print(f"{'no scraping':<22}{p:>12.1f}{min(plain):>8.1f}-{max(plain):<7.1f}")
    print(f"{'scraped':<22}{s:>12.1f}{min(scraped):>8.1f}-{max(scraped):<7.1f}")
    ratios = [b / a for a, b in zip(plain, scraped, strict=True)]
    print(
        f"scraped / not: {s / p:.3f}x of the medians, {statistics.median(ratios):.3f}x "
        f"median of the rounds' ratios (target >= 0.98)"
    )
    c_plain, c_scraped = (statistics.median(cpu[name]) for name in cpu)
    print(
        f"CPU per request (this process): {c_plain:.1f} us, scraped "
        f"{c_scraped:.1f} us: {c_scraped / c_plain:.3f}x"
    )
    print(
        f"one scrape: median {statistics.median(took) * 1e3:.2f} ms over "
        f"{len(took)} scrapes"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
