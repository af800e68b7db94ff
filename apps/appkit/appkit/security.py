"""API keys: loaded from a secret file and/or the environment, checked in constant time, never logged.

The key file is re-read when its modification time changes, so a rotated secret takes effect
without a restart. Keys are kept only as SHA-256 digests plus the raw values the log filter
needs to redact them.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from pathlib import Path

from pydantic import SecretStr

from appkit.asgi import ASGIApp, Receive, Scope, Send, header, send_json
from appkit.errors import error_body


def parse_keys(text: str, *, separator: str = "\n") -> list[str]:
    """Non-empty keys from `text`, one per line (or per `separator`), `#` comment lines skipped."""
    keys = (part.strip() for part in text.split(separator))
    return [key for key in keys if key and not key.startswith("#")]


class ApiKeys:
    """The accepted keys; `check` compares a presented key against every one in constant time."""

    def __init__(self, *, env_keys: SecretStr | None, key_file: Path | None) -> None:
        self._env = parse_keys(env_keys.get_secret_value(), separator=",") if env_keys else []
        self._file = key_file
        self._file_stamp: int | None = -1
        self._file_keys: list[str] = []
        self._lock = threading.Lock()
        self._set_digests()
        self._refresh()

    def check(self, presented: str) -> bool:
        """Whether `presented` is one of the keys (digests compared, so the time says nothing about length)."""
        self._refresh()
        given = hashlib.sha256(presented.encode()).digest()
        found = False
        for digest in self._digests:
            found |= hmac.compare_digest(given, digest)
        return found

    def secrets(self) -> list[str]:
        """The raw keys, for the log filter that redacts them."""
        self._refresh()
        return [*self._env, *self._file_keys]

    def count(self) -> int:
        return len(self._digests)

    def _refresh(self) -> None:
        if self._file is None:
            return
        stamp = _mtime(self._file)
        if stamp == self._file_stamp:
            return
        with self._lock:
            self._file_keys = _read_keys(self._file) if stamp is not None else []
            self._file_stamp = stamp
            self._set_digests()

    def _set_digests(self) -> None:
        self._digests = [hashlib.sha256(key.encode()).digest() for key in [*self._env, *self._file_keys]]


def _read_keys(path: Path) -> list[str]:
    try:
        return parse_keys(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return []


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


class ApiKeyMiddleware:
    """Answers 401 without `Authorization: Bearer <key>` and 403 with a wrong key, except on public paths."""

    def __init__(self, app: ASGIApp, *, keys: ApiKeys, public_paths: frozenset[str]) -> None:
        self.app = app
        self.keys = keys
        self.public_paths = public_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.public_paths:
            await self.app(scope, receive, send)
            return
        presented = bearer_token(scope)
        if presented is None:
            await _refuse(send, 401, "missing_api_key", "send an API key as `Authorization: Bearer <key>`")
        elif not self.keys.check(presented):
            await _refuse(send, 403, "invalid_api_key", "the API key is not valid for this service")
        else:
            await self.app(scope, receive, send)


def bearer_token(scope: Scope) -> str | None:
    """The token of a `Bearer` Authorization header, or None."""
    value = header(scope, b"authorization")
    if value is None:
        return None
    scheme, _, token = value.decode("latin-1").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


async def _refuse(send: Send, status: int, code: str, message: str) -> None:
    challenge = [(b"www-authenticate", b'Bearer realm="api"')] if status == 401 else []
    await send_json(send, status, error_body(message, kind="authentication_error", code=code), headers=challenge)
