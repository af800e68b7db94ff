"""What the fake servers (hub, CDN, ARM) share: a threaded HTTP server that binds without a reverse DNS
lookup, and a quiet HTTP/1.1 handler whose GET and HEAD go to one `_serve`."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import Any


class LocalHttpServer(ThreadingHTTPServer):
    """Serves each request in a daemon thread; bind it to ("127.0.0.1", 0) for a free port."""

    daemon_threads = True

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the host up in reverse DNS, which can take seconds.
        TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])


class LocalHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 without Nagle's delay and without per-request logging; subclasses write `_serve`."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # no 40 ms delayed-ACK stall between headers and body

    def do_GET(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        """No per-request logging to stderr."""

    def _serve(self) -> None:
        raise NotImplementedError
