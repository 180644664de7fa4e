"""Loggers for library code: structlog events that always go through
stdlib logging.

structlog's global default prints every event to stdout, and a library
must not print, nor reconfigure structlog behind its host's back. So our
loggers are wrapped around stdlib loggers with their own processors: a
host's logging handlers receive the events (at WARNING and above if it set
nothing up), and actors.logs.configure_logging renders them as console
lines or JSON. The top-level logger of every name handed out carries a
NullHandler, the stdlib's convention for libraries: with no logging set
up, Python's last-resort handler would otherwise print bare events on
stderr.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog

_PROCESSORS: list[Any] = [
    structlog.stdlib.filter_by_level,
    structlog.contextvars.merge_contextvars,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    # The event becomes the record's message and the context its extra
    # attributes: any handler shows the event, ours show the context too.
    structlog.stdlib.render_to_log_kwargs,
]


def silence(name: str) -> None:
    """Give the top-level logger of ``name`` a NullHandler (once), so that
    nothing is printed unless the host sets logging up."""
    top = logging.getLogger(name.partition(".")[0])
    if not any(isinstance(handler, logging.NullHandler) for handler in top.handlers):
        top.addHandler(logging.NullHandler())


def get_logger(name: str) -> Any:
    """A structlog BoundLogger for ``name`` that logs through stdlib (and
    prints nothing while the host has no handlers)."""
    silence(name)
    return structlog.wrap_logger(
        logging.getLogger(name),
        processors=_PROCESSORS,
        wrapper_class=structlog.stdlib.BoundLogger,
        context_class=dict,
    )


for _package in ("actors", "transport", "messages"):
    silence(_package)
