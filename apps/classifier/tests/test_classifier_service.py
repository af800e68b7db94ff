"""Auth, readiness, metrics, limits, timeout and logs of the classifier service."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from appkit.testing import metric, settled_state, wait_ready
from fastapi import FastAPI
from fastapi.testclient import TestClient

from classifier.app import create_app
from classifier.engine import Classifier
from classifier.settings import Settings
from classifier_support import AUTH, CANARY_KEY, CANARY_TEXT, OTHER_KEY


def test_keys_are_required(client: TestClient) -> None:
    anonymous = TestClient(client.app)

    missing = anonymous.post("/v1/classify", json={"texts": ["a"]})
    wrong = anonymous.post("/v1/classify", json={"texts": ["a"]}, headers={"Authorization": f"Bearer {OTHER_KEY}"})

    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert wrong.status_code == 403
    assert anonymous.get("/metrics").status_code == 401
    assert anonymous.get("/healthz").status_code == 200
    assert anonymous.get("/readyz").status_code == 200


def test_health_at_once_and_ready_only_after_loading(
    make_settings: Callable[..., Settings], loaded: Classifier
) -> None:
    release = threading.Event()

    def slow_loader(settings: Settings) -> Classifier:
        release.wait(30)
        return loaded

    with TestClient(create_app(make_settings(), loader=slow_loader), headers=AUTH) as client:
        assert client.get("/healthz").json() == {"status": "ok", "version": "dev"}
        assert client.get("/readyz").status_code == 503
        assert client.post("/v1/classify", json={"texts": ["a"]}).status_code == 503

        release.set()
        wait_ready(client)
        ready = client.get("/readyz").json()
        assert ready["labels"] == ["negative", "positive"]
        assert ready["adapter"]
        assert client.post("/v1/classify", json={"texts": ["a"]}).status_code == 200


def test_a_failed_load_is_generic_in_readyz_and_detailed_in_the_log(
    make_settings: Callable[..., Settings], tmp_path: Path, log_lines: io.StringIO
) -> None:
    canary = tmp_path / "canary-Adapter-Dir-7c03"
    canary.mkdir()
    with TestClient(create_app(make_settings(adapter_path=canary)), headers=AUTH) as client:
        state = settled_state(client)
        anonymous = TestClient(client.app).get("/readyz")

    assert anonymous.status_code == 503
    assert anonymous.json() == state and state["status"] == "failed" and "error" not in state
    assert "canary" not in anonymous.text and "/" not in anonymous.text
    failure = next(json.loads(line) for line in log_lines.getvalue().splitlines() if "loading failed" in line)
    assert str(canary) in failure["error"] and "CLASSIFIER_ADAPTER_PATH" in failure["error"]


def test_metrics_count_requests_texts_and_tokens(client: TestClient) -> None:
    before = client.get("/metrics").text
    body = client.post("/v1/classify", json={"texts": ["one", "two"]}).json()
    after = client.get("/metrics").text

    assert metric(after, "classifier_texts_total") - metric(before, "classifier_texts_total") == 2
    tokens = metric(after, "classifier_input_tokens_total") - metric(before, "classifier_input_tokens_total")
    assert tokens == body["usage"]["input_tokens"]
    route = {"route": "/v1/classify", "status": "200"}
    assert (
        metric(after, "classifier_requests_total", **route) - metric(before, "classifier_requests_total", **route) == 1
    )
    assert metric(after, "classifier_request_duration_seconds_count", route="/v1/classify") >= 1
    assert metric(after, "classifier_ready") == 1


def test_a_body_over_the_limit_is_413(app_factory: Callable[..., FastAPI]) -> None:
    with TestClient(app_factory(max_body_bytes=4096), headers=AUTH) as client:
        response = client.post("/v1/classify", json={"texts": ["z" * 5000]})

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"


def test_past_the_deadline_is_504(app_factory: Callable[..., FastAPI]) -> None:
    with TestClient(app_factory(timeout_s=1e-6), headers=AUTH) as client:
        wait_ready(client)
        response = client.post("/v1/classify", json={"texts": ["a", "b"]})
        metrics = client.get("/metrics").text

    assert response.status_code == 504
    assert response.json()["error"]["code"] == "timeout"
    assert metric(metrics, "classifier_timeouts_total") == 1


def test_logs_are_json_and_hold_neither_texts_nor_key(client: TestClient, log_lines: io.StringIO) -> None:
    answer = client.post("/v1/classify", json={"texts": [CANARY_TEXT]})
    refused = TestClient(client.app).post("/v1/classify", headers={"Authorization": f"Bearer {CANARY_KEY}-"})

    assert answer.status_code == 200
    assert refused.status_code == 403
    records = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    assert {"request", "classified"} <= {r["msg"] for r in records}
    for text in [log_lines.getvalue(), answer.text, refused.text]:
        assert CANARY_KEY not in text
    assert "canary-text" not in log_lines.getvalue()


def test_text_logging_can_be_switched_on(app_factory: Callable[..., FastAPI], log_lines: io.StringIO) -> None:
    with TestClient(app_factory(log_texts=True), headers=AUTH) as client:
        wait_ready(client)
        assert client.post("/v1/classify", json={"texts": [CANARY_TEXT]}).status_code == 200

    assert "canary-text" in log_lines.getvalue()
    assert CANARY_KEY not in log_lines.getvalue()


def test_settings_refuse_to_run_without_keys(demo_model: Path) -> None:
    with pytest.raises(ValueError, match="no API keys configured"):
        Settings(model_path=demo_model)
