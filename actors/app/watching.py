"""``--metrics-port``: the commands that talk to a board (or are one)
serve their metrics and health while they run."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from typing import Any

from messages.errors import SpinnactorsError

#: The commands that take --metrics-port.
WATCHED = ("board", "read", "write", "bench", "demo")


class MetricsUnavailable(SpinnactorsError):
    """--metrics-port without prometheus_client installed."""


def add_metrics_port(parser: argparse.ArgumentParser, port_type: Any) -> None:
    parser.add_argument(
        "--metrics-port",
        type=port_type,
        default=None,
        metavar="N",
        help="serve Prometheus /metrics and /healthz on 127.0.0.1:N while "
        "running (0 picks a free port; needs the metrics extra; default: off)",
    )


@contextlib.contextmanager
def serving_metrics(args: argparse.Namespace) -> Iterator[None]:
    """Serve metrics for the command's run if --metrics-port was given."""
    port = getattr(args, "metrics_port", None)
    if port is None:
        yield
        return
    try:
        from actors.metrics import serve
    except ImportError as error:
        raise MetricsUnavailable(
            f"--metrics-port needs prometheus_client ({error}): "
            "pip install 'spinnactors[metrics]'"
        ) from None
    with serve(port):
        yield
