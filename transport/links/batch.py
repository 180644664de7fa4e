"""Several datagrams per system call on a connected UDP socket.

From a board that answers at its own pace a connection takes its replies
a few at a time (actors/protocol/coalesce.py) and sends as many requests;
at one system call per datagram those calls are much of what a request
costs (bench/cpu.py). Linux's recvmmsg and sendmmsg take or send them all
in one, and the compiled helper (_batch.c) calls them. It is built with
the package where a C compiler and Linux are; where it is not, ``batch``
is None and each datagram is a call of its own, as it always was.

An install that is not editable puts the helper beside the installed
package, which a checkout run from its own folder (the suite, bench/)
does not import from: it is then loaded from the distribution's files.
``SPINNACTORS_NO_BATCH=1`` leaves it out (to compare, or to rule it out).
"""

from __future__ import annotations

import importlib.machinery
import importlib.metadata
import importlib.util
import os
from collections.abc import Sequence
from typing import Protocol, cast

#: The helper's calls as this module knows them (its API constant).
_API = 1
_NAME = "transport.links._batch"


class Batch(Protocol):
    """The compiled helper's calls (see _batch.c)."""

    API: int

    def receive(
        self, fd: int, limit: int, sender: tuple[str, int]
    ) -> list[tuple[bytes, tuple[str, int]]]: ...

    def send(self, fd: int, datagrams: Sequence[bytes | bytearray]) -> int: ...


def _installed() -> Batch | None:
    """The helper installed with the distribution, if this checkout has
    none of its own. (Run from a checkout, the checkout's own metadata
    may come first: every copy of the distribution is looked through.)"""
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    for distribution in importlib.metadata.distributions(name="spinnactors"):
        for file in distribution.files or []:
            if (
                file.parent.as_posix() == "transport/links"
                and file.name.startswith("_batch.")
                and file.name.endswith(suffixes)
            ):
                spec = importlib.util.spec_from_file_location(_NAME, file.locate())
                if spec is None or spec.loader is None:
                    return None
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                return cast(Batch, module)
    return None


def load() -> Batch | None:
    """The compiled helper, or None (not built here, left out, or of
    another version)."""
    if os.environ.get("SPINNACTORS_NO_BATCH"):
        return None
    found: Batch | None
    try:
        from transport.links import _batch  # type: ignore[attr-defined,unused-ignore]

        found = cast(Batch, _batch)
    except ImportError:
        try:
            found = _installed()
        except (ImportError, OSError):
            found = None
    if found is None or getattr(found, "API", None) != _API:
        return None
    return found


#: The helper this process uses (None: one call per datagram).
batch = load()
