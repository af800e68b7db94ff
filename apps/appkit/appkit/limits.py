"""Request body size limit: 413 before the application parses anything larger than allowed."""

from __future__ import annotations

from appkit.asgi import ASGIApp, Message, Receive, Scope, Send, header, send_json
from appkit.errors import error_body


class BodyLimitMiddleware:
    """Refuses bodies over `max_bytes`, by their Content-Length or, when chunked, by what arrives."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(send)
            return
        body, complete = await self._read(receive)
        if body is None:
            await self._refuse(send)
            return
        if not complete:  # the client went away while sending
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive) -> tuple[bytes | None, bool]:
        """(the body, whether it arrived whole); (None, False) when it grows past the limit."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return b"", False
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return None, False
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), True

    async def _refuse(self, send: Send) -> None:
        message = f"the request body is larger than {self.max_bytes} bytes"
        body = error_body(message, kind="invalid_request_error", code="body_too_large")
        await send_json(send, 413, body, headers=[(b"connection", b"close")])


def content_length(scope: Scope) -> int | None:
    """The declared Content-Length, or None when it is missing or not a number."""
    value = header(scope, b"content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the buffered body over once, then passes on (disconnect notices)."""
    delivered = False

    async def replayed() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed
