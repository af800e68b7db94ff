"""The classifier service: `POST /v1/classify` over a fine-tuned sequence-classification model.

Run with `uvicorn --factory classifier.app:create_app`. The model loads in a background thread,
so `/healthz` answers at once and `/readyz` says 503 until it is loaded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from appkit.errors import ApiError
from appkit.observability import Metrics
from appkit.service import create_service
from fastapi import FastAPI, Request

from classifier.batching import Batcher
from classifier.engine import Classifier, Scores, load_classifier
from classifier.schemas import Classification, ClassifyRequest, ClassifyResponse, Usage
from classifier.settings import Settings

log = logging.getLogger("classifier")

GRACE_S = 2.0
"""How long past the deadline to wait for a forward pass that is already running."""

Loader = Callable[[Settings], Classifier]


def load_model(settings: Settings) -> Classifier:
    """Load the model and adapter as the settings say."""
    return load_classifier(
        settings.model_path, settings.adapter_path, labels=settings.labels, merge_adapter=settings.merge_adapter
    )


class ClassifierMetrics(Metrics):
    """The service's metrics (`classifier_...`) plus texts classified, tokens read and timeouts."""

    def __init__(self) -> None:
        super().__init__("classifier")
        self.texts = self.counter("texts_total", "Texts classified")
        self.input_tokens = self.counter("input_tokens_total", "Tokens read by the model (after truncation)")
        self.timeouts = self.counter("timeouts_total", "Requests that ran out of time")


def create_app(settings: Settings | None = None, *, loader: Loader = load_model) -> FastAPI:
    """The classifier application; `loader` is called once, in a background thread, at startup."""
    settings = settings or Settings()  # type: ignore[call-arg]  # model_path comes from the environment
    metrics = ClassifierMetrics()
    service = create_service(
        settings, name="classifier", load=lambda: loader(settings), metrics=metrics, describe=describe
    )
    batcher = Batcher(window_s=settings.batch_window_ms / 1000, batch_size=settings.batch_size)

    @service.app.post("/v1/classify")
    async def classify(body: ClassifyRequest, request: Request) -> ClassifyResponse:
        return await answer(body, request, settings, service.readiness.require(), metrics, batcher)

    return service.app


def describe(model: Classifier) -> dict[str, Any]:
    """What `/readyz` adds once loaded: the adapter and the labels."""
    return {"adapter": model.adapter, "labels": model.labels}


async def answer(
    body: ClassifyRequest,
    request: Request,
    settings: Settings,
    model: Classifier,
    metrics: ClassifierMetrics,
    batcher: Batcher,
) -> ClassifyResponse:
    """Check the request against the limits, classify (batched with concurrent requests), shape the answer."""
    check_request(body, settings)
    deadline = time.monotonic() + settings.timeout_s
    scores = await classify_batched(batcher, model, body.texts, settings, deadline)
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


async def classify_batched(
    batcher: Batcher, model: Classifier, texts: list[str], settings: Settings, deadline: float
) -> Scores | None:
    """The scores of `texts`, computed on the batcher's thread; None when out of time (the request is
    then dropped from the queue, or its running pass is left to finish)."""
    work = asyncio.wrap_future(batcher.classify(model, texts, max_length=settings.max_length, deadline=deadline))
    try:
        return await asyncio.wait_for(work, max(deadline - time.monotonic(), 0.0) + GRACE_S)
    except TimeoutError:
        return None


def classification(labels: list[str], probabilities: list[float]) -> Classification:
    best = max(range(len(labels)), key=lambda i: probabilities[i])
    scores = {label: round(p, 6) for label, p in zip(labels, probabilities, strict=True)}
    return Classification(label=labels[best], score=round(probabilities[best], 6), scores=scores)
