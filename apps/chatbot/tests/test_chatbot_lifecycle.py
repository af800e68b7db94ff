"""Startup: health at once, readiness after the background load, failures reported, read-only collection."""

from __future__ import annotations

import io
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from appkit.testing import settled_state, wait_ready
from fastapi.testclient import TestClient

from chatbot.app import Resources, create_app, load_resources
from chatbot.engine import LoadError
from chatbot.retrieval import open_retriever
from chatbot.settings import Settings
from chatbot_support import CANARY_KEY, ask

AUTH = {"Authorization": f"Bearer {CANARY_KEY}"}


def test_health_at_once_and_ready_only_after_loading(
    make_settings: Callable[..., Settings], loaded: tuple[Resources, str, str]
) -> None:
    release = threading.Event()

    def slow_loader(settings: Settings) -> Resources:
        release.wait(30)
        return loaded[0]

    with TestClient(create_app(make_settings(), loader=slow_loader), headers=AUTH) as client:
        assert client.get("/healthz").status_code == 200
        loading = client.get("/readyz")
        assert loading.status_code == 503
        assert loading.json()["status"] == "loading"
        busy = client.post("/v1/chat/completions", json=ask("hi"))
        assert busy.status_code == 503
        assert busy.headers["retry-after"]
        assert "chatbot_ready 0.0" in client.get("/metrics").text

        release.set()
        wait_ready(client)
        ready = client.get("/readyz").json()
        assert ready == {"status": "ready", "model": "chatbot", "adapter": ready["adapter"], "collection": "demo-docs"}
        assert ready["adapter"]
        assert "chatbot_ready 1.0" in client.get("/metrics").text
        assert client.post("/v1/chat/completions", json=ask("hi", max_tokens=2)).status_code == 200


def test_a_failed_load_is_generic_in_readyz_and_detailed_in_the_log(
    make_settings: Callable[..., Settings], tmp_path: Path, log_lines: io.StringIO
) -> None:
    canary = tmp_path / "canary-Model-Dir-5e21"
    settings = make_settings(model_path=canary)

    with TestClient(create_app(settings), headers=AUTH) as client:
        state = settled_state(client)
        anonymous = TestClient(client.app).get("/readyz")
        assert client.post("/v1/chat/completions", json=ask("hi")).json()["error"]["code"] == "model_failed"

    assert anonymous.status_code == 503
    assert anonymous.json() == state == {"status": "failed", "model": "chatbot"}
    assert "canary" not in anonymous.text and "/" not in anonymous.text
    failure = next(json.loads(line) for line in log_lines.getvalue().splitlines() if "loading failed" in line)
    assert str(canary) in failure["error"] and "CHATBOT_MODEL_PATH" in failure["error"]


def test_the_mounted_collection_is_only_read(loaded: tuple[Resources, str, str], demo_collection: Path) -> None:
    resources, before, after = loaded

    assert before == after
    assert resources.retriever is not None
    assert Path(resources.retriever.snapshot.name) not in demo_collection.parents
    if os.geteuid() == 0 and os.path.ismount(demo_collection):
        with pytest.raises(OSError, match="Read-only"):
            (demo_collection / "probe").write_text("x")


def test_retrieval_finds_the_document_that_answers(loaded: tuple[Resources, str, str]) -> None:
    retriever = loaded[0].retriever
    assert retriever is not None

    hits = retriever.search("How much GPU memory does a 7-billion-parameter model need in 4-bit?", k=3)

    assert len(hits) == 3
    assert hits[0].source.endswith("06-gpu-budget.txt")
    assert hits[0].distance <= hits[1].distance <= hits[2].distance
    assert retriever.embedding_model == "sentence-transformers/all-MiniLM-L6-v2"


def test_unknown_collection_name_is_a_load_error(demo_collection: Path, tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="CHATBOT_COLLECTION_NAME"):
        open_retriever(demo_collection, name="no-such", work_dir=tmp_path, embedding_model_path=None)


def test_a_merged_model_needs_no_adapter(make_settings: Callable[..., Settings]) -> None:
    resources = load_resources(make_settings(adapter_path=None, collection_path=None))

    assert resources.lm.adapter is None
    assert resources.retriever is None
