"""The service skeleton: health at once, readiness after the background load, keys, body limit,
metrics under the app's prefix, error shapes, request ids and redacted JSON logs."""

from __future__ import annotations

import gc
import json
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict

from appkit.errors import ApiError
from appkit.observability import Metrics
from appkit.service import create_service
from appkit.settings import ServiceSettings
from appkit.testing import captured_logs, wait_ready

KEY = "sk-kit-canary-2b7d9e4f6a8c0e1f3a5b7c9d"
AUTH = {"Authorization": f"Bearer {KEY}"}


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DEMO_")


def make_app(load: Callable[[], str], **settings: Any) -> TestClient:
    service = create_service(
        DemoSettings(api_keys=KEY, max_body_bytes=2048, **settings),
        name="demo",
        load=load,
        metrics=Metrics("demo"),
        describe=lambda loaded: {"loaded": loaded},
    )

    @service.app.post("/echo")
    async def echo(body: dict[str, Any]) -> dict[str, Any]:
        return {"loaded": service.readiness.require(), "body": body}

    @service.app.get("/teapot")
    async def teapot() -> None:
        raise ApiError(418, "no coffee here", kind="invalid_request_error", code="teapot")

    return TestClient(service.app, headers=AUTH)


@pytest.fixture
def client() -> Iterator[TestClient]:
    with make_app(lambda: "weights") as test_client:
        wait_ready(test_client)
        yield test_client


def test_health_at_once_and_ready_after_the_load() -> None:
    release = threading.Event()

    def slow() -> str:
        release.wait(30)
        return "weights"

    with make_app(slow) as client:
        assert client.get("/healthz").json() == {"status": "ok", "version": "dev"}
        assert client.get("/readyz").status_code == 503
        busy = client.post("/echo", json={})
        assert busy.status_code == 503 and busy.headers["retry-after"] == "5"
        assert busy.json()["error"]["code"] == "model_loading"
        assert "demo_ready 0.0" in client.get("/metrics").text
        release.set()
        wait_ready(client)
        assert client.get("/readyz").json() == {"status": "ready", "model": "model", "loaded": "weights"}
        assert "demo_ready 1.0" in client.get("/metrics").text


def test_what_the_load_made_is_frozen_before_the_service_is_ready() -> None:
    class Weights:
        """Tracked by the garbage collector, as a model's modules are."""

    loaded: list[Weights] = []

    def load() -> str:
        loaded.append(Weights())
        return "weights"

    with make_app(load) as client:
        wait_ready(client)
        tracked = gc.get_objects()  # every generation but the permanent one
    try:
        assert loaded and all(obj is not loaded[0] for obj in tracked)
    finally:
        del tracked
        gc.unfreeze()  # the rest of the test session collects as usual


def test_a_failed_load_is_generic_to_anyone_and_detailed_in_the_log() -> None:
    def broken() -> str:
        raise OSError("no weights in /secret/path")

    with captured_logs() as logs, make_app(broken) as client:
        for _ in range(500):
            if client.get("/readyz").json()["status"] != "loading":
                break
            threading.Event().wait(0.01)
        state = TestClient(client.app).get("/readyz")

    assert state.status_code == 503 and state.json() == {"status": "failed", "model": "model"}
    failure = next(json.loads(line) for line in logs.getvalue().splitlines() if "loading failed" in line)
    assert "/secret/path" in failure["error"]


def test_keys_are_required_except_on_public_paths(client: TestClient) -> None:
    anonymous = TestClient(client.app)
    assert anonymous.get("/healthz").status_code == 200 and anonymous.get("/readyz").status_code == 200
    missing = anonymous.post("/echo", json={})
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    assert missing.json()["error"]["code"] == "missing_api_key"
    wrong = anonymous.post("/echo", json={}, headers={"Authorization": "Bearer sk-wrong"})
    assert wrong.status_code == 403 and wrong.json()["error"]["type"] == "authentication_error"
    assert anonymous.get("/metrics").status_code == 401
    assert client.post("/echo", json={"a": 1}).json() == {"loaded": "weights", "body": {"a": 1}}


def test_bodies_over_the_limit_are_refused_before_parsing(client: TestClient) -> None:
    answer = client.post("/echo", content=b"x" * 4096, headers={"content-type": "application/json"})

    assert answer.status_code == 413 and answer.json()["error"]["code"] == "body_too_large"


def test_errors_have_one_shape(client: TestClient) -> None:
    assert client.get("/teapot").json() == {
        "error": {"message": "no coffee here", "type": "invalid_request_error", "code": "teapot", "param": None}
    }
    invalid = client.post("/echo", content=b"[1]", headers={"content-type": "application/json"})
    assert invalid.status_code == 400 and invalid.json()["error"]["code"] == "invalid_request"
    assert client.get("/nowhere").json()["error"]["type"] == "invalid_request_error"


def test_requests_are_counted_under_the_prefix_with_an_id_and_logged_without_keys(client: TestClient) -> None:
    with captured_logs() as logs:
        answer = client.post("/echo", json={"key": KEY}, headers={"X-Request-ID": "req-1"})
    assert answer.headers["x-request-id"] == "req-1"
    assert client.get("/healthz", headers={"X-Request-ID": "bad id!"}).headers["x-request-id"] != "bad id!"

    metrics = client.get("/metrics").text
    assert re.search(r'^demo_requests_total\{method="POST",route="/echo",status="200"\} 1\.0$', metrics, re.M)
    assert "demo_request_duration_seconds_bucket" in metrics
    request = next(json.loads(line) for line in logs.getvalue().splitlines() if '"request"' in line)
    assert request["request_id"] == "req-1" and request["status"] == 200


def test_settings_need_a_key_and_say_which_variable(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="set DEMO_API_KEYS_FILE"):
        DemoSettings()
    assert DemoSettings(api_keys_file=tmp_path / "keys").api_keys_file == tmp_path / "keys"


def test_a_metric_prefix_must_be_a_prometheus_name() -> None:
    with pytest.raises(ValueError, match="not a Prometheus name"):
        Metrics("my-app")


def test_the_kit_never_imports_the_workbench_or_an_app() -> None:
    kit = Path(__file__).parents[1] / "appkit"
    for source in kit.rglob("*.py"):
        text = source.read_text()
        assert not re.search(r"^\s*(from|import) (services|workbench|screens|chatbot|classifier)\b", text, re.M)
