"""Cancelling docker-py's streaming calls (`build`, `push`) from another thread.

A streaming response blocks in a socket read while a step prints nothing (a long `RUN`), so checking
a token between events is not enough. `AbortableStream` captures the response through a requests
response hook (docker-py's `APIClient` is a `requests.Session`) and, when the token is set or the
caller leaves with an exception (Ctrl-C), shuts the socket down: the read returns at once and the
engine, seeing its client go, stops the build or push.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType
from typing import Any

from services.errors import CancelledError, DockerUnavailableError, WorkbenchError
from services.progress import CancelToken

POLL_S = 0.1


class AbortableStream:
    """Context manager around one streaming docker-py call made inside it on `api`."""

    def __init__(self, api: Any, cancel: CancelToken | None) -> None:
        self._api = api
        self._cancel = cancel
        self._response: Any = None
        self._done = threading.Event()
        self.aborted = False

    def __enter__(self) -> AbortableStream:
        hooks = getattr(self._api, "hooks", None)
        if isinstance(hooks, dict):
            hooks.setdefault("response", []).append(self._capture)
        if self._cancel is not None:
            threading.Thread(target=self._watch, name="docker-stream-cancel", daemon=True).start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._done.set()
        hooks = getattr(self._api, "hooks", None)
        if isinstance(hooks, dict) and self._capture in hooks.get("response", []):
            hooks["response"].remove(self._capture)
        if exc_type is not None:
            self.abort()

    def _capture(self, response: Any, *args: Any, **kwargs: Any) -> None:
        self._response = response

    def _watch(self) -> None:
        assert self._cancel is not None
        while not self._done.is_set():
            if self._cancel.wait(POLL_S):
                self.abort()
                return

    def abort(self) -> None:
        """Shut the streaming connection down (no-op before the request was sent or after it ended)."""
        response = self._response
        if response is None or self.aborted:
            return
        self.aborted = True
        raw = getattr(response, "raw", None)
        connection = getattr(raw, "connection", None) or getattr(raw, "_connection", None)
        sock = getattr(connection, "sock", None)
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):  # already closed by the other side
                sock.shutdown(socket.SHUT_RDWR)


def stream_failure(cancel: CancelToken | None, what: str, exc: Exception, *, cancel_hint: str) -> Exception:
    """What to raise when a streaming call ends with `exc`: a cut made by a cancel is a cancel,
    a workbench error stays itself, anything else means the engine connection broke."""
    if cancel is not None and cancel.cancelled:
        return CancelledError(f"{what} cancelled", hint=cancel_hint)
    if isinstance(exc, WorkbenchError):
        return exc
    return DockerUnavailableError(
        f"{what}: the connection to the Docker engine broke ({type(exc).__name__})",
        hint="check that the engine is still running and try again",
    )
