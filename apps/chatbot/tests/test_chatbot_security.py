"""API keys (401/403, file rotation, environment), public endpoints, logs without prompts or keys."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from appkit.observability import REDACTED, JsonFormatter
from appkit.security import ApiKeys
from appkit.testing import wait_ready
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError

from chatbot.settings import Settings
from chatbot_support import CANARY_KEY, CANARY_PROMPT, OTHER_KEY, ask


@pytest.fixture
def anonymous(client: TestClient) -> TestClient:
    """The shared app, without the default Authorization header."""
    return TestClient(client.app)


@pytest.mark.parametrize("path", ["/v1/models", "/v1/chat/completions", "/metrics", "/docs", "/nowhere"])
def test_no_key_is_401_with_a_bearer_challenge(anonymous: TestClient, path: str) -> None:
    response = anonymous.post(path, json=ask("hi")) if "chat" in path else anonymous.get(path)

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["error"]["code"] == "missing_api_key"


@pytest.mark.parametrize("header", [f"Bearer {OTHER_KEY}", f"Bearer {CANARY_KEY}x", f"bearer {CANARY_KEY[:-1]}"])
def test_wrong_key_is_403(anonymous: TestClient, header: str) -> None:
    response = anonymous.get("/v1/models", headers={"Authorization": header})

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "invalid_api_key"


@pytest.mark.parametrize("header", [f"Basic {CANARY_KEY}", "Bearer", "Bearer   ", CANARY_KEY])
def test_malformed_authorization_is_401(anonymous: TestClient, header: str) -> None:
    assert anonymous.get("/v1/models", headers={"Authorization": header}).status_code == 401


def test_health_and_readiness_need_no_key(anonymous: TestClient) -> None:
    health = anonymous.get("/healthz")

    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert anonymous.get("/readyz").status_code == 200


def test_metrics_may_be_made_public(app_factory: Callable[..., FastAPI]) -> None:
    with TestClient(app_factory(metrics_public=True)) as client:
        assert client.get("/metrics").status_code == 200
        assert client.get("/v1/models").status_code == 401


def test_key_file_is_reread_when_it_changes(app_factory: Callable[..., FastAPI], tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text(f"{OTHER_KEY}\n")
    with TestClient(app_factory(api_keys_file=keys)) as client:
        assert client.get("/v1/models", headers={"Authorization": f"Bearer {OTHER_KEY}"}).status_code == 200
        keys.write_text(f"# rotated\n{CANARY_KEY}\n")
        assert client.get("/v1/models", headers={"Authorization": f"Bearer {OTHER_KEY}"}).status_code == 403
        assert client.get("/v1/models", headers={"Authorization": f"Bearer {CANARY_KEY}"}).status_code == 200


def test_keys_from_the_environment(monkeypatch: pytest.MonkeyPatch, demo_model: Path) -> None:
    monkeypatch.setenv("CHATBOT_API_KEYS", f" {OTHER_KEY} , {CANARY_KEY} ")
    monkeypatch.setenv("CHATBOT_MODEL_PATH", str(demo_model))
    settings = Settings()  # type: ignore[call-arg]
    keys = ApiKeys(env_keys=settings.api_keys, key_file=settings.api_keys_file)

    assert keys.check(CANARY_KEY)
    assert keys.check(OTHER_KEY)
    assert not keys.check(CANARY_KEY[:-1])
    assert CANARY_KEY not in repr(settings)


def test_settings_refuse_to_run_without_keys(demo_model: Path) -> None:
    with pytest.raises(ValidationError, match="no API keys configured"):
        Settings(model_path=demo_model)


def test_logs_are_json_and_hold_neither_prompt_nor_key(client: TestClient, log_lines: io.StringIO) -> None:
    answer = client.post("/v1/chat/completions", json=ask(CANARY_PROMPT, max_tokens=4))
    refused = TestClient(client.app).get("/v1/models", headers={"Authorization": f"Bearer {CANARY_KEY}-wrong"})
    streamed = client.post("/v1/chat/completions", json=ask(CANARY_PROMPT, max_tokens=4, stream=True))

    assert answer.status_code == 200
    assert refused.status_code == 403
    assert streamed.status_code == 200
    lines = log_lines.getvalue().splitlines()
    records = [json.loads(line) for line in lines]
    assert {"request", "chat completion"} <= {r["msg"] for r in records}
    assert all({"ts", "level", "logger", "msg"} <= r.keys() for r in records)
    for text in [log_lines.getvalue(), answer.text, refused.text, streamed.text]:
        assert CANARY_KEY not in text
    assert "canary-prompt" not in log_lines.getvalue()


def test_prompt_logging_can_be_switched_on(app_factory: Callable[..., FastAPI], log_lines: io.StringIO) -> None:
    with TestClient(app_factory(log_prompts=True), headers={"Authorization": f"Bearer {CANARY_KEY}"}) as client:
        wait_ready(client)
        assert client.post("/v1/chat/completions", json=ask(CANARY_PROMPT, max_tokens=2)).status_code == 200

    assert "canary-prompt" in log_lines.getvalue()
    assert CANARY_KEY not in log_lines.getvalue()


def test_formatter_redacts_keys_that_reach_a_message() -> None:
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter(lambda: [CANARY_KEY]))
    logger = logging.getLogger("chatbot.test-redaction")
    logger.addHandler(handler)
    try:
        logger.error("header was %s", f"Bearer {CANARY_KEY}", extra={"detail": {"key": CANARY_KEY}})
    finally:
        logger.removeHandler(handler)

    record = json.loads(buffer.getvalue())
    assert record["msg"] == f"header was Bearer {REDACTED}"
    assert CANARY_KEY not in buffer.getvalue()


def test_settings_keep_keys_secret() -> None:
    settings = Settings(model_path=Path("/models/base"), api_keys=SecretStr(CANARY_KEY))

    assert CANARY_KEY not in repr(settings)
    assert CANARY_KEY not in settings.model_dump_json()
