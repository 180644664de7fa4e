"""structlog set-up: console lines for people, JSON lines for machines.

Everything goes through the standard library's logging as well, so a host
application's handlers receive our events without knowing about structlog.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal, TextIO

import structlog

LogFormat = Literal["console", "json"]


#: Our own loggers: ``-v`` and ``-vv`` open these; ``-vvv`` all the others.
OWN_LOGGERS = ("actors", "transport", "messages", "spinnactors")


def configure_logging(
    log_format: LogFormat = "console",
    verbosity: int = 0,
    stream: TextIO | None = None,
    *,
    colors: bool = False,
) -> None:
    """Route structlog through stdlib logging to ``stream`` (stderr).

    Verbosity 0 shows warnings and errors; 1 adds our info events, 2 our
    debug events, 3 the debug events of third-party libraries (pykka) too.
    """
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbosity, 2)]
    for name in OWN_LOGGERS:
        # (0: left to the root's WARNING, as a host that sets nothing has)
        logging.getLogger(name).setLevel(level if verbosity else logging.NOTSET)
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        # Our library's context arrives as a record's extra attributes.
        structlog.stdlib.ExtraAdder(),
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=colors)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if not getattr(h, "_spinnactors", False)]
    handler._spinnactors = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbosity >= 3 else logging.WARNING)
