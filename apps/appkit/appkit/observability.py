"""Structured JSON logs (one object per line, keys redacted) and Prometheus metrics per request.

Each app names its metrics with its own prefix (`chatbot_requests_total`,
`classifier_requests_total`) and adds its own counters with `Metrics.counter`.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from appkit.asgi import ASGIApp, Message, Receive, Scope, Send, header

REDACTED = "[REDACTED]"
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_PREFIX = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_STANDARD_RECORD_KEYS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, msg, the record's extra fields; secrets redacted."""

    def __init__(self, secrets: Callable[[], Iterable[str]] = tuple) -> None:
        super().__init__()
        self.secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        payload |= {k: v for k, v in vars(record).items() if k not in _STANDARD_RECORD_KEYS}
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return self.redact(json.dumps(payload, default=str, ensure_ascii=False))

    def redact(self, line: str) -> str:
        for secret in self.secrets():
            line = line.replace(secret, REDACTED).replace(json.dumps(secret)[1:-1], REDACTED)
        return line


class _ServiceHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler `setup_logging` installs (and replaces when called again)."""


def setup_logging(level: str, *, secrets: Callable[[], Iterable[str]], stream: TextIO | None = None) -> None:
    """Send every log record (uvicorn's too) through one JSON handler on the root logger."""
    handler = _ServiceHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter(secrets))
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if not isinstance(h, _ServiceHandler)] + [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)  # requests are logged by RequestMiddleware
    for name in ("httpx", "httpcore"):  # an HTTP client's line per request (an upstream's URL) is not ours to log
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.captureWarnings(True)


class Metrics:
    """An app's Prometheus metrics, named `<prefix>_...`, in a registry of their own: requests,
    their latency, readiness, and what the app adds with `counter`."""

    def __init__(self, prefix: str, *, ready_help: str = "1 once the model is loaded") -> None:
        if not _PREFIX.match(prefix):
            raise ValueError(f"metric prefix {prefix!r} is not a Prometheus name")
        self.prefix = prefix
        self.registry = CollectorRegistry()
        self.requests = self.counter("requests_total", "HTTP requests answered", ["method", "route", "status"])
        self.latency = Histogram(
            f"{prefix}_request_duration_seconds",
            "Time from request to the last byte of the answer",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.ready = Gauge(f"{prefix}_ready", ready_help, registry=self.registry)

    def counter(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Counter:
        """A counter `<prefix>_<name>` in this registry."""
        return Counter(f"{self.prefix}_{name}", documentation, list(labels), registry=self.registry)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class RequestMiddleware:
    """Gives each request an id (`X-Request-ID`), counts and times it, and logs one line when it is answered."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, logger: logging.Logger) -> None:
        self.app = app
        self.metrics = metrics
        self.logger = logger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = incoming_request_id(scope) or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self._record(scope, request_id, status, time.perf_counter() - started)

    def _record(self, scope: Scope, request_id: str, status: int, elapsed: float) -> None:
        method, route = scope["method"], route_of(scope)
        self.metrics.requests.labels(method, route, str(status)).inc()
        self.metrics.latency.labels(method, route).observe(elapsed)
        fields = {"request_id": request_id, "method": method, "path": scope["path"][:200], "status": status}
        self.logger.info("request", extra=fields | {"duration_ms": round(elapsed * 1000, 1)})


def route_of(scope: Scope) -> str:
    """The route template that answered (bounded label values), or `unmatched`."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


def incoming_request_id(scope: Scope) -> str | None:
    """The client's `X-Request-ID` when it is short and plain, else None (a new one is made)."""
    value = header(scope, b"x-request-id")
    text = value.decode("latin-1") if value is not None else ""
    return text if _REQUEST_ID.match(text) else None
