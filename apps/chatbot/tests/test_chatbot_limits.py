"""Request body limit (413), generation timeout (504), and the metrics that count requests and tokens."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

from appkit.testing import metric, wait_ready
from fastapi import FastAPI
from fastapi.testclient import TestClient

from chatbot_support import CANARY_KEY, ask

AUTH = {"Authorization": f"Bearer {CANARY_KEY}"}


def test_a_body_over_the_limit_is_413(app_factory: Callable[..., FastAPI]) -> None:
    with TestClient(app_factory(max_body_bytes=2048), headers=AUTH) as client:
        wait_ready(client)
        response = client.post("/v1/chat/completions", json=ask("x" * 4096))

        assert response.status_code == 413
        assert response.json()["error"]["code"] == "body_too_large"
        assert client.post("/v1/chat/completions", json=ask("small", max_tokens=1)).status_code == 200


def test_a_chunked_body_over_the_limit_is_413(app_factory: Callable[..., FastAPI]) -> None:
    def pieces() -> Iterator[bytes]:
        payload = json.dumps(ask("y" * 8192)).encode()
        for start in range(0, len(payload), 1000):
            yield payload[start : start + 1000]

    with TestClient(app_factory(max_body_bytes=2048), headers=AUTH) as client:
        response = client.post("/v1/chat/completions", content=pieces(), headers={"content-type": "application/json"})

    assert response.status_code == 413


def test_a_body_without_a_key_is_refused_before_it_is_read(client: TestClient) -> None:
    response = TestClient(client.app).post("/v1/chat/completions", content=b"{" * 2_000_000)

    assert response.status_code == 401


def test_generation_past_its_deadline_is_504(app_factory: Callable[..., FastAPI]) -> None:
    with TestClient(app_factory(generation_timeout_s=1e-6), headers=AUTH) as client:
        wait_ready(client)
        whole = client.post("/v1/chat/completions", json=ask("hi", max_tokens=50))
        streamed = client.post("/v1/chat/completions", json=ask("hi", max_tokens=50, stream=True))
        metrics = client.get("/metrics").text

    assert whole.status_code == 504
    assert whole.json()["error"]["code"] == "generation_timeout"
    assert streamed.status_code == 504
    assert metric(metrics, "chatbot_generations_unfinished_total", reason="timeout") == 2


def test_metrics_count_requests_latency_and_tokens(client: TestClient) -> None:
    before = client.get("/metrics").text
    answer = client.post("/v1/chat/completions", json=ask("How do releases work?", max_tokens=5)).json()
    after = client.get("/metrics").text

    route = {"route": "/v1/chat/completions"}
    generated = metric(after, "chatbot_generated_tokens_total") - metric(before, "chatbot_generated_tokens_total")
    assert generated == answer["usage"]["completion_tokens"]
    prompt = metric(after, "chatbot_prompt_tokens_total") - metric(before, "chatbot_prompt_tokens_total")
    assert prompt == answer["usage"]["prompt_tokens"]
    count = metric(after, "chatbot_requests_total", status="200", **route)
    assert count - metric(before, "chatbot_requests_total", status="200", **route) == 1
    assert metric(after, "chatbot_request_duration_seconds_count", **route) >= 1
    assert metric(after, "chatbot_request_duration_seconds_bucket", le="+Inf", **route) >= 1
    assert metric(after, "chatbot_requests_total", route="unmatched") >= 0
