"""The exceptions every layer shares: bad arguments and bad datagrams."""

from __future__ import annotations


class SpinnactorsError(Exception):
    """Base of every error this project raises on purpose."""


class InvalidArgumentError(SpinnactorsError, ValueError):
    """An argument is out of range; the message names it and its value."""

    def __init__(self, name: str, value: object, reason: str) -> None:
        super().__init__(f"{name}={value!r}: {reason}")
        self.name = name
        self.value = value
        self.reason = reason

    def __reduce__(self) -> tuple[type, tuple[str, object, str]]:
        return type(self), (self.name, self.value, self.reason)


class MalformedDatagramError(SpinnactorsError, ValueError):
    """A datagram is short, truncated or inconsistent; the message says why."""


class MalformedArgumentError(MalformedDatagramError, InvalidArgumentError):
    """Bytes handed to a parser as an argument (``VersionInfo(data)``) that
    do not parse. Both a malformed datagram and an invalid argument: where
    we say MalformedDatagramError, SpiNNMan's parsers raise
    SpinnmanInvalidParameterException (which SpiNNMan's tests, redirected to
    this project, catch as InvalidArgumentError), so an ``except`` written
    for either keeps working. Made as InvalidArgumentError is: the
    argument's name, its value and what is wrong with it."""


class UnexpectedResponseCodeError(SpinnactorsError):
    """The board answered a request with an error code."""

    def __init__(self, operation: str, command: str, result: object) -> None:
        name = getattr(result, "name", result)
        meaning = getattr(result, "meaning", None)
        why = "" if meaning is None else f" ({meaning})"
        super().__init__(f"{operation} ({command}) failed: board answered {name}{why}")
        self.operation = operation
        self.command = command
        self.result = result

    def __reduce__(self) -> tuple[type, tuple[str, str, object]]:
        return type(self), (self.operation, self.command, self.result)
