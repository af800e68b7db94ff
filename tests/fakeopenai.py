"""A small OpenAI-compatible server for tests: `POST /v1/chat/completions`, streamed as SSE chunks.

It answers with `reply` split into `pieces` chunks (a usage chunk last when asked), checks the
bearer key when `key` is set (401 without one, 403 for a wrong one), can wait `delay_s` before
answering, and in `leaky` mode echoes the request's Authorization header in its error body, as a
badly behaved proxy might, so tests can check the key never reaches the user.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeOpenAI:
    def __init__(self, *, reply: str = "The development server has the GPU.", key: str | None = None) -> None:
        self.reply, self.key = reply, key
        self.delay_s = 0.0
        self.leaky = False
        self.requests: list[dict[str, Any]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            fake.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
            if self.path != "/v1/chat/completions":
                return self._json(404, {"error": {"message": f"no route {self.path}"}})
            if (denied := self._denied()) is not None:
                return self._json(*denied)
            time.sleep(fake.delay_s)
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                self._stream(body)

        def _denied(self) -> tuple[int, dict[str, Any]] | None:
            auth = self.headers.get("Authorization") or ""
            if fake.key is None or auth == f"Bearer {fake.key}":
                return None
            detail = f"bad key in header {auth!r}" if fake.leaky else "invalid api key"
            return (401 if not auth else 403), {"error": {"message": detail, "type": "auth"}}

        def _json(self, status: int, data: dict[str, Any]) -> None:
            raw = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def _stream(self, body: dict[str, Any]) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            words = fake.reply.split(" ")
            pieces = [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]
            for piece in pieces:
                self._event(_chunk(body, {"content": piece}))
            self._event(_chunk(body, {}, finish="stop"))
            if body.get("stream_options", {}).get("include_usage"):
                usage = {"prompt_tokens": 7, "completion_tokens": len(pieces), "total_tokens": 7 + len(pieces)}
                self._event({**_chunk(body, {}), "choices": [], "usage": usage})
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
            self.close_connection = True

        def _event(self, data: dict[str, Any]) -> None:
            self.wfile.write(f"data: {json.dumps(data)}\n\n".encode())
            self.wfile.flush()

    return Handler


def _chunk(body: dict[str, Any], delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": body.get("model", "default"),
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
