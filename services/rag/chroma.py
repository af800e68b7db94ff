"""Opening Chroma: embedded (PersistentClient) by default, a server (HttpClient) when a URL is set.

The server token is read from the environment variable the settings name; it goes only into the
request header, never into messages, logs or argv.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from services.errors import ConfigError, VectorStoreUnavailableError

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.config import Settings


class ChromaLocation(Protocol):
    """Where Chroma lives (the `rag` settings section satisfies this)."""

    @property
    def path(self) -> Path | None: ...

    @property
    def server_url(self) -> str | None: ...

    @property
    def server_token_env(self) -> str: ...


def open_client(rag: ChromaLocation, *, data_dir: Path) -> ClientAPI:
    """An embedded client at `rag.path` (default `data_dir/chroma`), or an HTTP client for `rag.server_url`."""
    if rag.server_url:
        return _http_client(rag.server_url, os.environ.get(rag.server_token_env) or None)
    return persistent_client(rag.path or data_dir / "chroma")


def persistent_client(path: Path) -> ClientAPI:
    """An embedded Chroma store in folder `path` (created when missing)."""
    import chromadb

    try:
        path.mkdir(parents=True, exist_ok=True)
        try:
            return chromadb.PersistentClient(path=str(path), settings=_settings())
        except ValueError as exc:  # this process already opened the folder with other settings: share it
            if "already exists" not in str(exc):
                raise
            return chromadb.PersistentClient(path=str(path))
    except (OSError, RuntimeError, ValueError) as exc:
        raise VectorStoreUnavailableError(
            f"cannot open the Chroma store at {path}: {exc}", hint="check `rag.path` and its permissions"
        ) from None


def _http_client(url: str, token: str | None) -> ClientAPI:
    import chromadb

    host, port, ssl = _split_url(url)
    headers = {"Authorization": f"Bearer {token}"} if token else None
    try:
        return chromadb.HttpClient(host=host, port=port, ssl=ssl, headers=headers, settings=_settings())
    except Exception as exc:  # httpx and chromadb raise many kinds; the message must not carry the token
        reason = type(exc).__name__ if token and token in str(exc) else str(exc).splitlines()[0][:200]
        raise VectorStoreUnavailableError(
            f"cannot reach the Chroma server at {url}: {reason}",
            hint="check `rag.server_url`, that the server runs, and the token in the `rag.server_token_env` variable",
        ) from None


def _split_url(url: str) -> tuple[str, int, bool]:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigError(f"rag.server_url: not an http(s) URL: {url!r}", hint="e.g. http://chroma.internal:8000")
    ssl = parts.scheme == "https"
    return parts.hostname, parts.port or (443 if ssl else 8000), ssl


def _settings() -> Settings:
    from chromadb.config import Settings

    return Settings(anonymized_telemetry=False)
