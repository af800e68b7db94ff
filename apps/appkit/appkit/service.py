"""The skeleton every app stands on: keys, JSON logs, metrics, the body limit, error shapes, and
the model loading in the background while `/healthz` answers at once and `/readyz` says 503.

An app calls `create_service`, then adds its own routes to `service.app` and takes what was
loaded from `service.readiness.require()` in them.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response

from appkit.errors import add_error_handlers
from appkit.limits import BodyLimitMiddleware
from appkit.observability import Metrics, RequestMiddleware, setup_logging
from appkit.readiness import Readiness, start_loading
from appkit.security import ApiKeyMiddleware, ApiKeys
from appkit.settings import ServiceSettings

T = TypeVar("T")
PUBLIC_PATHS = frozenset({"/healthz", "/readyz"})


@dataclass(frozen=True)
class Service(Generic[T]):
    """The application and the state of its background load."""

    app: FastAPI
    readiness: Readiness[T]


def create_service(
    settings: ServiceSettings,
    *,
    name: str,
    load: Callable[[], T],
    metrics: Metrics,
    describe: Callable[[T], dict[str, Any]] = lambda loaded: {},
) -> Service[T]:
    """An app called `name` whose `load` runs once, in a background thread, at startup; `describe`
    gives the fields `/readyz` and the `ready` log line add once it is loaded."""
    keys = ApiKeys(env_keys=settings.api_keys, key_file=settings.api_keys_file)
    setup_logging(settings.log_level, secrets=keys.secrets)
    log = logging.getLogger(name)
    if keys.count() == 0:
        log.warning("no API key is configured: every request that needs one is refused")
    readiness: Readiness[T] = Readiness()

    def ready(loaded: T) -> dict[str, Any]:
        metrics.ready.set(1)
        return describe(loaded)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        start_loading(readiness, load, log=log, on_ready=ready)
        yield

    app = FastAPI(title=name, version=settings.version, lifespan=lifespan)
    app.state.settings, app.state.readiness, app.state.metrics = settings, readiness, metrics
    add_service_routes(app, settings, readiness, metrics, describe)
    add_error_handlers(app, log)
    public = PUBLIC_PATHS | ({"/metrics"} if settings.metrics_public else set())
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(ApiKeyMiddleware, keys=keys, public_paths=frozenset(public))
    app.add_middleware(RequestMiddleware, metrics=metrics, logger=logging.getLogger(f"{name}.access"))
    return Service(app, readiness)


def add_service_routes(
    app: FastAPI,
    settings: ServiceSettings,
    readiness: Readiness[T],
    metrics: Metrics,
    describe: Callable[[T], dict[str, Any]],
) -> None:
    """`/healthz` (always 200), `/readyz` (200 once loaded, else 503) and `/metrics`."""

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "version": settings.version}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        body: dict[str, Any] = {"status": readiness.status, "model": settings.served_model_name}
        if readiness.loaded is not None:
            body |= describe(readiness.loaded)
        return JSONResponse(body, status_code=200 if readiness.status == "ready" else 503)

    @app.get("/metrics")
    async def prometheus() -> Response:
        content, media_type = metrics.render()
        return Response(content, media_type=media_type)
