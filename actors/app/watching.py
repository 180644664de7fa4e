"""``--metrics-port``: the commands that talk to a board (or are one)
serve their metrics and health while they run."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from typing import TextIO

from actors.app import arguments
from actors.app.options import option
from messages.errors import SpinnactorsError


class MetricsUnavailable(SpinnactorsError):
    """--metrics-port without prometheus_client installed."""


#: What the commands that talk to a board (or are one) take.
METRICS_PORT = option(
    "--metrics-port",
    type=arguments.port,
    default=None,
    metavar="N",
    help="serve Prometheus /metrics and /healthz on 127.0.0.1:N while "
    "running (0 picks a free port and says which on stderr; needs the "
    "metrics extra; default: off)",
)


@contextlib.contextmanager
def serving_metrics(args: argparse.Namespace, errors: TextIO) -> Iterator[None]:
    """Serve metrics for the command's run if --metrics-port was given;
    with port 0, say on ``errors`` which port was picked."""
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
    try:
        server = serve(port)  # a taken port's error names the address
    except OSError as error:
        raise OSError(error.strerror or str(error)) from None
    with server:
        if port == 0:
            print(f"metrics on {server.url}", file=errors, flush=True)
        yield
