"""The fake hub's HTTP plumbing: a threaded server that can drop its connections, and the handler."""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

from tests.localhttp import LocalHandler, LocalHttpServer

from .repos import HubFile
from .wire import HubRequest, HubResponse

if TYPE_CHECKING:
    from .server import FakeHub

STREAM_CHUNK = 1024 * 1024


class HubHttpServer(LocalHttpServer):
    block_on_close = False

    def __init__(self, address: tuple[str, int], hub: FakeHub) -> None:
        self.hub = hub
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, HubRequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        with self._open_lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # clients hanging up mid-response
            super().handle_error(request, client_address)


class HubRequestHandler(LocalHandler):
    timeout = 60
    server: HubHttpServer

    def _serve(self) -> None:
        hub = self.server.hub
        request = self._request()
        hub.record(request)
        hub.answering.wait(60)
        if hub.delay:
            time.sleep(hub.delay)
        response = hub.answer(request)
        try:
            self._send(response)
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    def _request(self) -> HubRequest:
        url = urlsplit(self.path)
        auth = self.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else None
        return HubRequest(
            method=self.command,
            path=url.path,
            query=parse_qs(url.query, keep_blank_values=True),
            pairs=parse_qsl(url.query, keep_blank_values=True),
            token=token or None,
            range=self.headers.get("Range"),
        )

    def _send(self, response: HubResponse) -> None:
        length = response.length if response.file is not None else len(response.body)
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if "Content-Length" not in response.headers:
            self.send_header("Content-Length", str(length))
        self.end_headers()
        if self.command == "HEAD":
            return
        count = length if response.cut_after is None else min(response.cut_after, length)
        if response.file is None:
            self.wfile.write(response.body[:count])
        elif count:
            self._stream(response.file, response.start, count)
        if count < length:
            self.close_connection = True

    def _stream(self, file: HubFile, start: int, count: int) -> None:
        if isinstance(file.source, Path):
            with file.source.open("rb") as handle:
                self.connection.sendfile(handle, start, count)
            return
        view = memoryview(file.source)
        for offset in range(start, start + count, STREAM_CHUNK):
            self.wfile.write(view[offset : min(offset + STREAM_CHUNK, start + count)])
