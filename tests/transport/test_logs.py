"""Library loggers carry a NullHandler: nothing printed unless asked."""

from __future__ import annotations

import logging

import pytest

import actors.app.cli  # noqa: F401  (its logger is "spinnactors.cli")
from transport.logs import get_logger, silence


def null_handlers(name: str) -> int:
    handlers = logging.getLogger(name).handlers
    return sum(isinstance(handler, logging.NullHandler) for handler in handlers)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("name", ["actors", "transport", "messages", "spinnactors"])
def test_each_top_level_logger_of_ours_has_one_null_handler(name: str) -> None:
    assert null_handlers(name) == 1


@pytest.mark.timeout(10)
def test_a_new_name_is_silenced_once_at_its_top() -> None:
    top = logging.getLogger("quiet-test-top")
    try:
        get_logger("quiet-test-top.a.b")
        get_logger("quiet-test-top.c")
        silence("quiet-test-top")
        assert null_handlers("quiet-test-top") == 1
        assert logging.getLogger("quiet-test-top.a.b").handlers == []
    finally:
        top.handlers = []
