"""The ASGI types the middlewares use, and the two things each of them needs: a request header and a
JSON answer sent without the application."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of request header `name` (lower case), or None."""
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value)
    return None


async def send_json(
    send: Send, status: int, body: dict[str, Any], *, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """Answer `status` with `body` as JSON (plus `headers`), before any application code ran."""
    content = json.dumps(body).encode()
    base = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": [*base, *(headers or [])]})
    await send({"type": "http.response.body", "body": content})
