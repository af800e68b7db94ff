"""`POST /v1/classify`: labels and scores per text, the adapter's effect, label names, bad requests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from classifier.engine import load_classifier
from classifier.settings import Settings
from classifier_support import NEGATIVE, POSITIVE


def test_each_text_gets_a_label_and_scores_for_every_label(client: TestClient) -> None:
    response = client.post("/v1/classify", json={"texts": ["great work", "awful work", "neutral"]})

    assert response.status_code == 200
    body = response.json()
    assert body["model"] == "classifier"
    assert len(body["results"]) == 3
    for result in body["results"]:
        assert set(result["scores"]) == {"negative", "positive"}
        assert sum(result["scores"].values()) == pytest.approx(1.0, abs=1e-4)
        assert result["score"] == max(result["scores"].values())
        assert result["label"] == max(result["scores"], key=result["scores"].get)
    assert body["usage"]["input_tokens"] > 0


def test_the_trained_adapter_decides_the_labels(client: TestClient) -> None:
    body = client.post("/v1/classify", json={"texts": POSITIVE + NEGATIVE}).json()

    labels = [result["label"] for result in body["results"]]
    assert labels == ["positive"] * len(POSITIVE) + ["negative"] * len(NEGATIVE)


def test_batches_and_merging_do_not_change_the_scores(
    make_settings: Callable[..., Settings], client: TestClient
) -> None:
    settings = make_settings()
    unmerged = load_classifier(settings.model_path, settings.adapter_path, labels=None, merge_adapter=False)
    texts = POSITIVE + NEGATIVE
    merged = client.post("/v1/classify", json={"texts": texts}).json()["results"]

    scores = unmerged.classify(texts, max_length=64, batch_size=3, deadline=float("inf"))

    assert scores is not None
    for result, row in zip(merged, scores.probabilities, strict=True):
        assert result["scores"]["positive"] == pytest.approx(row[1], abs=1e-3)


def test_labels_come_from_a_workbench_adapter_manifest(tiny_llama: Path, workbench_adapter: Path) -> None:
    model = load_classifier(tiny_llama, workbench_adapter, labels=None, merge_adapter=True)

    assert model.labels == ["bug", "question", "praise"]
    scores = model.classify(["it crashes"], max_length=32, batch_size=8, deadline=float("inf"))
    assert scores is not None
    assert len(scores.probabilities[0]) == 3


def test_labels_setting_overrides_the_config(demo_model: Path) -> None:
    model = load_classifier(demo_model, None, labels=["bad", "good"], merge_adapter=True)

    assert model.labels == ["bad", "good"]


def test_labels_setting_reads_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch, demo_model: Path) -> None:
    monkeypatch.setenv("CLASSIFIER_LABELS", "bad, good")
    monkeypatch.setenv("CLASSIFIER_MODEL_PATH", str(demo_model))
    monkeypatch.setenv("CLASSIFIER_API_KEYS", "k" * 20)

    assert Settings().labels == ["bad", "good"]  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"texts": []}, 400, "invalid_request"),
        ({"text": ["a"]}, 400, "invalid_request"),
        ({"texts": "a single string"}, 400, "invalid_request"),
        ({"texts": ["a"], "model": "other"}, 404, "model_not_found"),
        ({"texts": ["a"] * 65}, 400, "too_many_texts"),
        ({"texts": ["a" * 20_001]}, 400, "text_too_long"),
    ],
)
def test_bad_requests_are_refused(client: TestClient, body: dict[str, Any], status: int, code: str) -> None:
    response = client.post("/v1/classify", json=body)

    assert response.status_code == status
    assert response.json()["error"]["code"] == code


def test_long_texts_are_truncated_to_max_length(client: TestClient) -> None:
    body = client.post("/v1/classify", json={"texts": ["great " * 2000]}).json()

    assert body["usage"]["input_tokens"] <= 512
