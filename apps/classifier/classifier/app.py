"""The classifier service: `POST /v1/classify` over a fine-tuned sequence-classification model.

Run with `uvicorn --factory classifier.app:create_app`. The model loads in a background thread,
so `/healthz` answers at once and `/readyz` says 503 until it is loaded.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from classifier.engine import Classifier, Scores, load_classifier
from classifier.limits import BodyLimitMiddleware
from classifier.observability import Metrics, RequestMiddleware, setup_logging
from classifier.schemas import Classification, ClassifyRequest, ClassifyResponse, Usage, error_body
from classifier.security import ApiKeyMiddleware, ApiKeys
from classifier.settings import Settings

log = logging.getLogger("classifier")

PUBLIC_PATHS = frozenset({"/healthz", "/readyz"})
GRACE_S = 2.0
"""How long past the deadline to wait for a forward pass that is already running."""

Loader = Callable[[Settings], Classifier]


def load_model(settings: Settings) -> Classifier:
    """Load the model and adapter as the settings say."""
    return load_classifier(
        settings.model_path, settings.adapter_path, labels=settings.labels, merge_adapter=settings.merge_adapter
    )


class ApiError(Exception):
    """An error answered as `{"error": {...}}`."""

    def __init__(self, status: int, message: str, *, kind: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.code = status, message, kind, code


class Readiness:
    """Loading, ready or failed; holds the model once loaded."""

    def __init__(self) -> None:
        self.status: Literal["loading", "ready", "failed"] = "loading"
        self.model: Classifier | None = None

    def require(self) -> Classifier:
        if self.model is None:
            what = "failed to load (the service log has the error)" if self.status == "failed" else "is still loading"
            raise ApiError(503, f"the model {what}", kind="service_unavailable", code=f"model_{self.status}")
        return self.model


def create_app(settings: Settings | None = None, *, loader: Loader = load_model) -> FastAPI:
    """The classifier application; `loader` is called once, in a background thread, at startup."""
    settings = settings or Settings()  # type: ignore[call-arg]  # model_path comes from the environment
    keys = ApiKeys(env_keys=settings.api_keys, key_file=settings.api_keys_file)
    setup_logging(settings.log_level, secrets=keys.secrets)
    if keys.count() == 0:
        log.warning("no API key is configured: every request that needs one is refused")
    metrics, readiness = Metrics(), Readiness()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        start_loading(readiness, settings, loader, metrics)
        yield

    app = FastAPI(title="classifier", version=settings.version, lifespan=lifespan)
    app.state.settings, app.state.readiness, app.state.metrics = settings, readiness, metrics
    add_routes(app, settings, readiness, metrics)
    add_error_handlers(app)
    public = PUBLIC_PATHS | ({"/metrics"} if settings.metrics_public else set())
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(ApiKeyMiddleware, keys=keys, public_paths=frozenset(public))
    app.add_middleware(RequestMiddleware, metrics=metrics, logger=logging.getLogger("classifier.access"))
    return app


def start_loading(readiness: Readiness, settings: Settings, loader: Loader, metrics: Metrics) -> threading.Thread:
    """Load in a daemon thread; readiness turns ready or failed when it ends."""

    def run() -> None:
        started = time.perf_counter()
        try:
            model = loader(settings)
        except Exception as exc:  # /readyz says "failed" to anyone; the details (paths) go to the log only
            readiness.status = "failed"
            log.error("loading failed", extra={"error": f"{type(exc).__name__}: {str(exc)[:500]}"})
            return
        readiness.model, readiness.status = model, "ready"
        metrics.ready.set(1)
        log.info("ready", extra={"seconds": round(time.perf_counter() - started, 2), "labels": model.labels})

    thread = threading.Thread(target=run, name="load", daemon=True)
    thread.start()
    return thread


def add_routes(app: FastAPI, settings: Settings, readiness: Readiness, metrics: Metrics) -> None:
    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "version": settings.version}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        body: dict[str, Any] = {"status": readiness.status, "model": settings.served_model_name}
        if readiness.model is not None:
            body |= {"adapter": readiness.model.adapter, "labels": readiness.model.labels}
        return JSONResponse(body, status_code=200 if readiness.status == "ready" else 503)

    @app.get("/metrics")
    async def prometheus() -> Response:
        content, media_type = metrics.render()
        return Response(content, media_type=media_type)

    @app.post("/v1/classify")
    async def classify(body: ClassifyRequest, request: Request) -> ClassifyResponse:
        return await answer(body, request, settings, readiness.require(), metrics)


async def answer(
    body: ClassifyRequest, request: Request, settings: Settings, model: Classifier, metrics: Metrics
) -> ClassifyResponse:
    """Check the request against the limits, classify in a thread, shape the answer."""
    check_request(body, settings)
    deadline = time.monotonic() + settings.timeout_s
    scores = await classify_in_thread(model, body.texts, settings, deadline)
    if scores is None:
        metrics.timeouts.inc()
        raise ApiError(504, "classification ran out of time; send fewer texts", kind="timeout", code="timeout")
    metrics.texts.inc(len(body.texts))
    metrics.input_tokens.inc(scores.tokens)
    fields: dict[str, Any] = {"request_id": getattr(request.state, "request_id", None), "texts": len(body.texts)}
    if settings.log_texts:
        fields["content"] = body.texts
    log.info("classified", extra=fields | {"input_tokens": scores.tokens})
    results = [classification(model.labels, row) for row in scores.probabilities]
    return ClassifyResponse(model=settings.served_model_name, results=results, usage=Usage(input_tokens=scores.tokens))


def check_request(body: ClassifyRequest, settings: Settings) -> None:
    if body.model is not None and body.model != settings.served_model_name:
        message = f"the model {body.model!r} does not exist here; this service serves {settings.served_model_name!r}"
        raise ApiError(404, message, kind="invalid_request_error", code="model_not_found")
    if len(body.texts) > settings.max_texts:
        message = f"{len(body.texts)} texts sent; at most {settings.max_texts} per request"
        raise ApiError(400, message, kind="invalid_request_error", code="too_many_texts")
    longest = max(len(text) for text in body.texts)
    if longest > settings.max_text_chars:
        message = f"a text is {longest} characters long; at most {settings.max_text_chars} are accepted"
        raise ApiError(400, message, kind="invalid_request_error", code="text_too_long")


async def classify_in_thread(model: Classifier, texts: list[str], settings: Settings, deadline: float) -> Scores | None:
    work = asyncio.to_thread(
        model.classify, texts, max_length=settings.max_length, batch_size=settings.batch_size, deadline=deadline
    )
    try:
        return await asyncio.wait_for(work, max(deadline - time.monotonic(), 0.0) + GRACE_S)
    except TimeoutError:
        return None


def classification(labels: list[str], probabilities: list[float]) -> Classification:
    best = max(range(len(labels)), key=lambda i: probabilities[i])
    scores = {label: round(p, 6) for label, p in zip(labels, probabilities, strict=True)}
    return Classification(label=labels[best], score=round(probabilities[best], 6), scores=scores)


def add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        headers = {"Retry-After": "5"} if exc.status == 503 else None
        return JSONResponse(error_body(exc.message, kind=exc.kind, code=exc.code), exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return JSONResponse(error_body(problems, kind="invalid_request_error", code="invalid_request"), 400)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(error_body(str(exc.detail), kind="invalid_request_error"), exc.status_code)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("request failed", extra={"error_type": type(exc).__name__})
        return JSONResponse(error_body("internal error; the service log has the details", kind="server_error"), 500)
