"""A second local HTTP server on another port (another origin) that serves blobs and records headers.

It stands in for the CDN a hub redirects LFS downloads to, or for any host a hostile mirror names:
tests assert on what arrived here (an `Authorization` header must never).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from tests.localhttp import LocalHandler, LocalHttpServer


@dataclass(frozen=True)
class CdnRequest:
    """One request the CDN received, with all its headers (names lower-cased)."""

    method: str
    path: str
    headers: dict[str, str]


class RecordingCdn:
    """Serves `blobs[name]` at `/{name}` on 127.0.0.1 and records every request it gets."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.requests: list[CdnRequest] = []
        self._lock = threading.Lock()
        self._server: _Server | None = None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("RecordingCdn is not running")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Self:
        self._server = _Server(("127.0.0.1", 0), self)
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def record(self, request: CdnRequest) -> None:
        with self._lock:
            self.requests.append(request)


class _Server(LocalHttpServer):
    def __init__(self, address: tuple[str, int], cdn: RecordingCdn) -> None:
        self.cdn = cdn
        super().__init__(address, _Handler)


class _Handler(LocalHandler):
    server: _Server

    def _serve(self) -> None:
        cdn = self.server.cdn
        cdn.record(CdnRequest(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
        body = cdn.blobs.get(self.path.lstrip("/").split("?")[0])
        self.send_response(404 if body is None else 200)
        self.send_header("Content-Length", str(0 if body is None else len(body)))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        if self.command == "GET" and body:
            self.wfile.write(body)
