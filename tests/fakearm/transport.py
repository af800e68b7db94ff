"""The fake ARM's HTTPS plumbing: a threaded TLS server and a handler that speaks JSON."""

from __future__ import annotations

import json
import ssl
import uuid
from typing import TYPE_CHECKING, Any

from tests.localhttp import LocalHandler, LocalHttpServer

if TYPE_CHECKING:
    from .server import FakeArm


class ArmHttpsServer(LocalHttpServer):
    block_on_close = False

    def __init__(self, address: tuple[str, int], arm: FakeArm, context: ssl.SSLContext) -> None:
        self.arm = arm
        self.context = context
        super().__init__(address, ArmRequestHandler)

    def get_request(self) -> tuple[Any, Any]:
        sock, address = self.socket.accept()
        # The TLS handshake happens in the handler's thread, not in the accept loop.
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up (or failing the handshake) are not errors of the fake."""


class ArmRequestHandler(LocalHandler):
    timeout = 30
    server: ArmHttpsServer

    def do_PUT(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        auth = self.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else None
        status, headers, payload = self.server.arm.handle(self.command, self.path, body, token)
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        for name, value in {**headers, "x-ms-request-id": str(uuid.uuid4())}.items():
            self.send_header(name, value)
        if data:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
