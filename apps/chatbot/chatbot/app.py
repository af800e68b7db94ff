"""The chatbot service: an OpenAI-compatible chat API over a fine-tuned model with RAG.

Run with `uvicorn --factory chatbot.app:create_app`. The model and collection load in a
background thread, so `/healthz` answers at once and `/readyz` says 503 until they are loaded.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from jinja2 import TemplateError
from starlette.exceptions import HTTPException

from chatbot.engine import GenerationParams, LanguageModel, Outcome, load_language_model
from chatbot.limits import BodyLimitMiddleware
from chatbot.observability import Metrics, RequestMiddleware, setup_logging
from chatbot.prompt import build_messages, last_user_text
from chatbot.retrieval import Hit, Retriever, open_retriever
from chatbot.schemas import ChatRequest, error_body
from chatbot.security import ApiKeyMiddleware, ApiKeys
from chatbot.settings import Settings
from chatbot.streaming import EventQueue, StopScanner, chunk, events, sse, usage

log = logging.getLogger("chatbot")

PUBLIC_PATHS = frozenset({"/healthz", "/readyz"})
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@dataclass(frozen=True)
class Resources:
    """What the service answers with once loaded."""

    lm: LanguageModel
    retriever: Retriever | None


Loader = Callable[[Settings], Resources]


def load_resources(settings: Settings) -> Resources:
    """Load the model (and adapter) and open the collection, as the settings say."""
    lm = load_language_model(
        settings.model_path, settings.adapter_path, load_4bit=settings.load_4bit, merge_adapter=settings.merge_adapter
    )
    retriever = None
    if settings.collection_path is not None:
        retriever = open_retriever(
            settings.collection_path,
            name=settings.collection_name,
            work_dir=settings.work_dir,
            embedding_model_path=settings.embedding_model_path,
        )
    return Resources(lm, retriever)


class ApiError(Exception):
    """An error answered in OpenAI's shape."""

    def __init__(self, status: int, message: str, *, kind: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.code = status, message, kind, code


class Readiness:
    """Loading, ready or failed; holds the resources once loaded."""

    def __init__(self) -> None:
        self.status: Literal["loading", "ready", "failed"] = "loading"
        self.resources: Resources | None = None

    def require(self) -> Resources:
        if self.resources is None:
            what = "failed to load (the service log has the error)" if self.status == "failed" else "is still loading"
            raise ApiError(503, f"the model {what}", kind="service_unavailable", code=f"model_{self.status}")
        return self.resources


def create_app(settings: Settings | None = None, *, loader: Loader = load_resources) -> FastAPI:
    """The chatbot application; `loader` is called once, in a background thread, at startup."""
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

    app = FastAPI(title="chatbot", version=settings.version, lifespan=lifespan)
    app.state.settings, app.state.readiness, app.state.metrics = settings, readiness, metrics
    add_routes(app, settings, readiness, metrics)
    add_error_handlers(app)
    public = PUBLIC_PATHS | ({"/metrics"} if settings.metrics_public else set())
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(ApiKeyMiddleware, keys=keys, public_paths=frozenset(public))
    app.add_middleware(RequestMiddleware, metrics=metrics, logger=logging.getLogger("chatbot.access"))
    return app


def start_loading(readiness: Readiness, settings: Settings, loader: Loader, metrics: Metrics) -> threading.Thread:
    """Load in a daemon thread; readiness turns ready or failed when it ends."""

    def run() -> None:
        started = time.perf_counter()
        try:
            resources = loader(settings)
        except Exception as exc:  # /readyz says "failed" to anyone; the details (paths) go to the log only
            readiness.status = "failed"
            log.error("loading failed", extra={"error": f"{type(exc).__name__}: {str(exc)[:500]}"})
            return
        readiness.resources, readiness.status = resources, "ready"
        metrics.ready.set(1)
        log.info("ready", extra={"seconds": round(time.perf_counter() - started, 2)})

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
        if readiness.resources is not None:
            body["adapter"] = readiness.resources.lm.adapter
            retriever = readiness.resources.retriever
            body["collection"] = retriever.name if retriever else None
        return JSONResponse(body, status_code=200 if readiness.status == "ready" else 503)

    @app.get("/metrics")
    async def prometheus() -> Response:
        content, media_type = metrics.render()
        return Response(content, media_type=media_type)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [model_card(settings)]}

    @app.get("/v1/models/{model_id:path}")
    async def model(model_id: str) -> dict[str, Any]:
        check_model(settings, model_id)
        return model_card(settings)

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatRequest, request: Request) -> Response:
        return await answer(body, request, settings, readiness.require(), metrics)


def model_card(settings: Settings) -> dict[str, Any]:
    return {"id": settings.served_model_name, "object": "model", "created": 0, "owned_by": "llm-workbench"}


def check_model(settings: Settings, model_id: str) -> None:
    if model_id != settings.served_model_name:
        message = f"the model {model_id!r} does not exist here; this service serves {settings.served_model_name!r}"
        raise ApiError(404, message, kind="invalid_request_error", code="model_not_found")


@dataclass(frozen=True)
class Prepared:
    """A request turned into model input."""

    inputs: Any
    prompt: str
    hits: list[Hit]


async def answer(body: ChatRequest, request: Request, settings: Settings, res: Resources, metrics: Metrics) -> Response:
    """Retrieve, render, generate; a JSON completion or an SSE stream of chunks."""
    check_model(settings, body.model)
    wanted = requested_tokens(body, settings)
    deadline = time.monotonic() + settings.generation_timeout_s
    prepared = await prepare_in_thread(res, body, settings)
    params = generation_params(body, settings, res.lm, prepared, wanted)
    queue = EventQueue()
    generation = res.lm.start(prepared.inputs, params, deadline=deadline, sink=queue.put)
    stream = events(
        queue,
        generation,
        StopScanner(body.stops()),
        deadline=deadline,
        on_outcome=outcome_recorder(request, settings, prepared, metrics),
        gone=request.is_disconnected,
    )
    base = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": settings.served_model_name}
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return await stream_response(stream, base, include_usage=include_usage)
    return await complete_response(stream, base, prepared)


def outcome_recorder(
    request: Request, settings: Settings, prepared: Prepared, metrics: Metrics
) -> Callable[[Outcome], None]:
    """What to do when a generation ends: count its tokens and log it."""

    def record(outcome: Outcome) -> None:
        metrics.prompt_tokens.inc(outcome.prompt_tokens)
        metrics.generated_tokens.inc(outcome.completion_tokens)
        if outcome.finish_reason in {"timeout", "cancelled"}:
            metrics.unfinished.labels(outcome.finish_reason).inc()
        log_completion(request, settings, prepared, outcome)

    return record


async def prepare_in_thread(res: Resources, body: ChatRequest, settings: Settings) -> Prepared:
    try:
        return await asyncio.to_thread(prepare, res, body.conversation(), settings)
    except TemplateError as exc:
        raise ApiError(
            400, f"the model's chat template refused these messages: {exc}", kind="invalid_request_error"
        ) from None


def prepare(res: Resources, conversation: list[dict[str, str]], settings: Settings) -> Prepared:
    """Retrieval for the last user message, then the prompt and its tokens (blocking: run in a thread)."""
    hits = None
    if res.retriever is not None:
        hits = res.retriever.search(last_user_text(conversation) or "", k=settings.rag_top_k)
    messages = build_messages(
        conversation, system_prompt=settings.system_prompt, template=settings.prompt_template, hits=hits
    )
    prompt = res.lm.render(messages)
    return Prepared(res.lm.encode(prompt), prompt, hits or [])


def requested_tokens(body: ChatRequest, settings: Settings) -> int:
    """The completion length asked for; 400 above the limit."""
    wanted = body.max_completion_tokens or body.max_tokens or settings.default_max_tokens
    if wanted > settings.max_tokens_limit:
        raise ApiError(400, f"max_tokens must be at most {settings.max_tokens_limit}", kind="invalid_request_error")
    return wanted


def generation_params(
    body: ChatRequest, settings: Settings, lm: LanguageModel, prepared: Prepared, wanted: int
) -> GenerationParams:
    """Sampling settings, the length cut to the room the context leaves; 400 when there is none."""
    prompt_tokens = int(prepared.inputs["input_ids"].shape[1])
    room = lm.max_positions - prompt_tokens if lm.max_positions else wanted
    if room <= 0:
        message = f"the prompt is {prompt_tokens} tokens; this model reads at most {lm.max_positions}"
        raise ApiError(400, message, kind="invalid_request_error", code="context_length_exceeded")
    temperature = settings.default_temperature if body.temperature is None else body.temperature
    return GenerationParams(min(wanted, room), temperature, body.top_p or 1.0, body.seed)


async def complete_response(stream: AsyncIterator[str | Outcome], base: dict[str, Any], prepared: Prepared) -> Response:
    parts: list[str] = []
    outcome = Outcome(0, 0, "error", "no outcome")
    async for event in stream:
        if isinstance(event, Outcome):
            outcome = event
        else:
            parts.append(event)
    raise_for_outcome(outcome)
    choice = {
        "index": 0,
        "message": {"role": "assistant", "content": "".join(parts)},
        "logprobs": None,
        "finish_reason": outcome.finish_reason,
    }
    sources = list(dict.fromkeys(hit.source for hit in prepared.hits))
    body = base | {"object": "chat.completion", "choices": [choice], "usage": usage(outcome), "sources": sources}
    return JSONResponse(body)


async def stream_response(
    stream: AsyncIterator[str | Outcome], base: dict[str, Any], *, include_usage: bool
) -> Response:
    """An SSE response, once the first event is in (so a timeout before any text is still a 504)."""
    first = await anext(stream)
    if isinstance(first, Outcome):
        raise_for_outcome(first)
    base = base | {"object": "chat.completion.chunk"}

    async def body() -> AsyncIterator[str]:
        yield sse(chunk(base, {"role": "assistant", "content": ""}))
        event = first
        while True:
            if not isinstance(event, Outcome):
                yield sse(chunk(base, {"content": event}))
            elif event.finish_reason == "cancelled":
                return  # nobody is listening any more
            elif event.finish_reason in {"timeout", "error"}:
                yield sse(outcome_error(event))
                break
            else:
                yield sse(chunk(base, {}, event.finish_reason))
                if include_usage:
                    yield sse(base | {"choices": [], "usage": usage(event)})
                break
            event = await anext(stream)
        yield sse("[DONE]")

    return StreamingResponse(body(), media_type="text/event-stream", headers=SSE_HEADERS)


def outcome_error(outcome: Outcome) -> dict[str, Any]:
    if outcome.finish_reason == "timeout":
        return error_body("generation ran out of time", kind="timeout", code="generation_timeout")
    return error_body("generation failed", kind="server_error", code="generation_failed")


def raise_for_outcome(outcome: Outcome) -> None:
    if outcome.finish_reason == "cancelled":
        raise ApiError(499, "the client disconnected", kind="client_closed_request")
    if outcome.finish_reason == "timeout":
        raise ApiError(
            504, "generation ran out of time; ask for fewer tokens", kind="timeout", code="generation_timeout"
        )
    if outcome.finish_reason == "error":
        raise ApiError(500, "generation failed; the service log has the error", kind="server_error")


def log_completion(request: Request, settings: Settings, prepared: Prepared, outcome: Outcome) -> None:
    fields: dict[str, Any] = {
        "request_id": getattr(request.state, "request_id", None),
        "prompt_tokens": outcome.prompt_tokens,
        "completion_tokens": outcome.completion_tokens,
        "finish_reason": outcome.finish_reason,
        "retrieved": len(prepared.hits),
    }
    if settings.log_prompts:
        fields["prompt"] = prepared.prompt
    log.info("chat completion", extra=fields)


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
