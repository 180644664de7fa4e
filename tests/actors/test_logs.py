"""Logs: structlog events with bound context, as JSON lines or console
text, flowing through stdlib logging."""

from __future__ import annotations

import io
import json
import logging

import pytest
import structlog

from actors.logs import OWN_LOGGERS, configure_logging


@pytest.fixture(autouse=True)
def restore_logging() -> object:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    own = {name: logging.getLogger(name).level for name in (*OWN_LOGGERS, "pykka")}
    logging.getLogger("pykka").setLevel(logging.NOTSET)  # (the CLI quiets it)
    yield None
    root.handlers, root.level = handlers, level
    for name, was in own.items():
        logging.getLogger(name).setLevel(was)
    structlog.reset_defaults()


@pytest.mark.timeout(10)
def test_json_format_is_one_object_per_line_with_bound_context() -> None:
    stream = io.StringIO()
    configure_logging("json", verbosity=2, stream=stream)
    log = structlog.get_logger("actors.test").bind(
        actor="connection", peer="127.0.0.1:17893"
    )
    log.info("request.retry", seq=7, chip="1,1")
    log.warning("actor.restart", child="connection")
    logging.getLogger("host.app").error("from the host application")
    lines = stream.getvalue().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["event"] for r in records] == [
        "request.retry",
        "actor.restart",
        "from the host application",
    ]
    first = records[0]
    assert (first["actor"], first["peer"], first["seq"], first["chip"]) == (
        "connection",
        "127.0.0.1:17893",
        7,
        "1,1",
    )
    assert first["level"] == "info" and "timestamp" in first
    assert records[1]["level"] == "warning"


@pytest.mark.timeout(10)
def test_host_handlers_receive_our_events() -> None:
    configure_logging("console", verbosity=1, stream=io.StringIO())
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    logging.getLogger().addHandler(Keep())
    structlog.get_logger("actors.connection.actor").info("connection.start", window=8)
    assert seen and seen[0].name == "actors.connection.actor"


@pytest.mark.timeout(10)
def test_verbosity_picks_the_level() -> None:
    stream = io.StringIO()
    configure_logging("console", verbosity=0, stream=stream)
    structlog.get_logger("x").info("quiet.info")
    structlog.get_logger("x").warning("loud.warning")
    text = stream.getvalue()
    assert "loud.warning" in text and "quiet.info" not in text


@pytest.mark.timeout(10)
def test_v_opens_our_info_vv_our_debug_vvv_everyone_s_debug() -> None:
    def shown(verbosity: int) -> set[str]:
        stream = io.StringIO()
        configure_logging("console", verbosity=verbosity, stream=stream)
        ours, theirs = structlog.get_logger("actors.x"), logging.getLogger("pykka")
        ours.info("our.info")
        ours.debug("our.debug")
        theirs.info("their.info")
        theirs.debug("their.debug")
        theirs.warning("their.warning")
        text = stream.getvalue()
        return {
            event
            for event in (
                "our.info",
                "our.debug",
                "their.info",
                "their.debug",
                "their.warning",
            )
            if event in text
        }

    assert shown(0) == {"their.warning"}
    assert shown(1) == {"our.info", "their.warning"}
    assert shown(2) == {"our.info", "our.debug", "their.warning"}
    assert shown(3) == {
        "our.info",
        "our.debug",
        "their.info",
        "their.debug",
        "their.warning",
    }
