"""A small HTTP server that no client can hold: each connection has a
thread of its own, a bounded number of them, each cut after a bound.

A health probe, a load balancer or a stuck scraper may open a connection
and say nothing, or trickle its request a byte at a time. A server that
answers on one thread (http.server's ``HTTPServer``) then answers no one
else, and its ``shutdown()`` waits for that client forever, keeping the
process alive. prometheus_client's own ``start_http_server`` starts a
thread per connection, but with no bound on their number and no timeout,
so silent clients pile up threads that live as long as the process, and
it serves no ``/healthz``. So, here:

- each connection is served on a daemon thread of its own (no thread of
  ours keeps a process alive), at most ``max_connections`` at once; one
  more is answered 503 at once and closed, never queued behind the others;
- one request per connection (HTTP/1.0): its reads wait at most
  ``client_timeout`` each and ``request_deadline`` together, so a silent
  client and a trickling one are both cut; the answer then has
  ``client_timeout`` to be taken;
- ``close()`` stops accepting, shuts down every open connection (which
  wakes its thread out of any read or write) and waits for those threads
  at most ``CLOSE_BUDGET`` seconds: whatever clients do, it returns.

A thread per connection costs tens of microseconds, small beside a scrape
(milliseconds) and bounded in number; a pool would save that and need
its own queue, whose waiting clients could again hold the others.

Answers are the handler's: a subclass of ``Handler`` calls ``answer()``,
which sends the same headers for HEAD as for GET and the body only for GET.
"""

from __future__ import annotations

import contextlib
import io
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from transport.logs import get_logger

log = get_logger(__name__)

#: Seconds a client may stay silent (between two pieces of its request, or
#: before it takes the answer) before it is cut.
CLIENT_TIMEOUT = 5.0
#: Seconds a client has to send its whole request, however it trickles it.
REQUEST_DEADLINE = 10.0
#: Connections served at once; one more is answered 503 and closed.
MAX_CONNECTIONS = 8
#: The longest close() waits for connection threads once it has cut them.
CLOSE_BUDGET = 1.0

_BUSY = (
    b"HTTP/1.0 503 Service Unavailable\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 5\r\n"
    b"Connection: close\r\n\r\nbusy\n"
)


class _DeadlineReader(io.RawIOBase):
    """A connection's socket read with a timeout on each read and a
    deadline on all of them together (a socket timeout alone restarts at
    each byte a trickling client sends)."""

    def __init__(self, sock: socket.socket, timeout: float, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        self._timeout = timeout
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request was not complete within its deadline")
        self._sock.settimeout(min(self._timeout, left))
        return self._sock.recv_into(buffer)


class BoundedHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with its connections bounded in number and time
    and cut at close (see the module's docstring)."""

    daemon_threads = True
    block_on_close = False  # close() waits for connections itself, bounded
    # A burst of connections waits to be accepted (and served or told
    # busy), not for SYN retries (socketserver's default backlog is 5).
    request_queue_size = 64

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[Handler],
        *,
        client_timeout: float = CLIENT_TIMEOUT,
        request_deadline: float = REQUEST_DEADLINE,
        max_connections: int = MAX_CONNECTIONS,
        name: str = "http",
    ) -> None:
        super().__init__(address, handler)
        self.client_timeout = client_timeout
        self.request_deadline = request_deadline
        self.max_connections = max_connections
        #: Connections answered 503 because max_connections were open.
        self.refused = 0
        self._lock = threading.Lock()
        self._open: dict[socket.socket, threading.Thread] = {}
        self._serving: threading.Thread | None = None
        host, port = self.server_address[:2]
        #: What its threads and log lines are called, e.g. metrics-HOST:PORT.
        self.name = f"{name}-{host!s}:{port}"

    def start(self) -> None:
        """Accept connections on a daemon thread."""
        self._serving = threading.Thread(
            target=self.serve_forever, name=self.name, daemon=True
        )
        self._serving.start()

    def process_request(self, request: Any, client_address: Any) -> None:
        """A thread for the connection, or 503 if the bound is reached."""
        with self._lock:
            full = len(self._open) >= self.max_connections
            if not full:
                thread = self._open[request] = threading.Thread(
                    target=self.process_request_thread,
                    args=(request, client_address),
                    name=f"{self.name}-client",
                    daemon=True,
                )
        if full:
            self._refuse(request, client_address)
        else:
            thread.start()

    def _refuse(self, request: socket.socket, client_address: Any) -> None:
        """Say busy without waiting for the client (a fresh socket's send
        buffer takes the few bytes at once), then close."""
        self.refused += 1
        log.debug("http.busy", server=self.name, client=str(client_address))
        try:
            request.setblocking(False)
            request.send(_BUSY)
            # What the client sent already is read, so that closing does
            # not reset the connection before the client reads "busy".
            request.recv(65536)
        except OSError:
            pass  # gone already, or nothing sent yet
        self.shutdown_request(request)

    def shutdown_request(self, request: Any) -> None:
        """Forget the connection and close it, under the lock close()
        cuts connections with (so it never shuts a reused descriptor)."""
        with self._lock:
            self._open.pop(request, None)
            super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away or was cut is logged, never printed
        (socketserver prints a traceback on stderr)."""
        error = sys.exc_info()[1]
        cut = isinstance(error, OSError)
        (log.debug if cut else log.warning)(
            "http.client_error",
            server=self.name,
            client=str(client_address),
            error=repr(error),
        )

    def close(self) -> None:
        """Stop accepting, close the port, cut every open connection and
        wait for their threads at most CLOSE_BUDGET seconds."""
        if self._serving is not None:
            self.shutdown()  # serve_forever notices within its poll (0.5 s)
            self._serving.join()
        self.server_close()
        with self._lock:
            threads = list(self._open.values())
            for connection in self._open:
                # Wakes the thread out of recv or send; it closes. (OSError:
                # the client went first.)
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + CLOSE_BUDGET
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        left = [thread for thread in threads if thread.is_alive()]
        if left:
            log.warning("http.threads_left", server=self.name, count=len(left))


class Handler(BaseHTTPRequestHandler):
    """One connection of a BoundedHTTPServer: its request read against the
    server's timeout and deadline, answered once."""

    server: BoundedHTTPServer

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # (the plain file setup() made)
        deadline = time.monotonic() + self.server.request_deadline
        self.rfile = io.BufferedReader(
            _DeadlineReader(self.connection, self.server.client_timeout, deadline)
        )

    def end_headers(self) -> None:
        # The request has been read: the answer has client_timeout to go.
        self.connection.settimeout(self.server.client_timeout)
        super().end_headers()

    def answer(self, status: int, kind: str, body: bytes) -> None:
        """The status, Content-Type and Content-Length, and the body
        unless the request was HEAD."""
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # (http.server prints each request to stderr)

    def log_error(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug("http.request_error", server=self.server.name, what=format % args)


__all__ = [
    "CLIENT_TIMEOUT",
    "CLOSE_BUDGET",
    "MAX_CONNECTIONS",
    "REQUEST_DEADLINE",
    "BoundedHTTPServer",
    "Handler",
]
