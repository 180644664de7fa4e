"""The shell the virtual servers share: one endpoint, answered by
``serve_forever`` on a daemon thread from start() until stop().

The board (board.py), its boot ROM (rom.py) and the BMP (bmp.py) each
serve a socket of their own; what they do with a datagram differs, how
they start, stop and name themselves does not.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import ClassVar, TypeVar

from transport.links.endpoint import Address, DatagramEndpoint

S = TypeVar("S", bound="ServedEndpoint")


class ServedEndpoint:
    """A server on ``_endpoint`` (set by the subclass before it calls
    ``__init__`` here, or at least before start()). ``kind`` names it in
    errors, ``thread_prefix`` its thread."""

    kind: ClassVar[str]
    thread_prefix: ClassVar[str]
    _endpoint: DatagramEndpoint

    def __init__(self) -> None:
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> Address:
        return self._endpoint.address

    @property
    def address_text(self) -> str:
        host, port = self._endpoint.address
        return f"{host}:{port}"

    def start(self: S) -> S:
        """Serve on a daemon thread until stop()."""
        if self._thread is not None:
            raise RuntimeError(f"{self.kind} already started")
        self._thread = threading.Thread(
            target=self.serve_forever,
            name=f"{self.thread_prefix}-{self.address_text}",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        """Stop serving, close the endpoint and join the thread."""
        self._stopping.set()
        self._endpoint.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def close(self) -> None:
        self.stop()

    def __enter__(self: S) -> S:
        if self._thread is None:
            self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
