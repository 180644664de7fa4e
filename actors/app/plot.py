"""``bench --plot``: a picture of a benchmark for people: MB/s of each
round, and the distribution of round trips the connection measured."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from actors.protocol.rtt import RttStats
from messages.errors import SpinnactorsError


class PlotUnavailable(SpinnactorsError):
    """--plot without matplotlib installed."""


def plot_bench(
    path: str | Path, rates: Sequence[float], rtt: RttStats, title: str
) -> None:
    """Draw the rounds' MB/s and the RTT histogram side by side into
    ``path`` (any format matplotlib writes: PNG, SVG, PDF...)."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display needed
        from matplotlib import pyplot
    except ImportError as error:
        raise PlotUnavailable(
            f"--plot needs matplotlib ({error}): pip install 'spinnactors[bench]'"
        ) from None
    figure, (left, right) = pyplot.subplots(1, 2, figsize=(11, 4))
    try:
        rounds = list(range(1, len(rates) + 1))
        left.bar(rounds, rates, color="tab:blue")
        left.axhline(sorted(rates)[len(rates) // 2], color="tab:orange", ls="--")
        left.set(xlabel="round", ylabel="MB/s", title="throughput per round")
        left.set_xticks(rounds)
        edges = [edge * 1e6 for edge, _ in rtt.buckets]
        counts = [count for _, count in rtt.buckets]
        right.bar(
            edges, counts, width=[edge * 0.1 for edge in edges], color="tab:green"
        )
        right.set_xscale("log")
        right.set(
            xlabel="round trip (us, bucket's upper edge)",
            ylabel="samples",
            title=f"round trips: p50 {rtt.p50 * 1e6:.0f} us, "
            f"p99 {rtt.p99 * 1e6:.0f} us",
        )
        figure.suptitle(title)
        figure.tight_layout()
        figure.savefig(path)
    finally:
        pyplot.close(figure)
