"""Concurrent requests share forward passes and get the scores they would get alone.

The batcher tests force batches without timing: a long collection window and a `batch_size`
the queued texts fill exactly, so a pass runs when the last of them is queued.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from classifier.batching import Batcher
from classifier.engine import Classifier, Scores
from classifier_support import NEGATIVE, POSITIVE

FAR = float("inf")


def alone(model: Classifier, texts: list[str], max_length: int = 64) -> Scores:
    scores = model.classify(texts, max_length=max_length, batch_size=len(texts), deadline=FAR)
    assert scores is not None
    return scores


def test_texts_of_several_requests_share_one_pass_with_unchanged_scores(loaded: Classifier) -> None:
    requests = [POSITIVE[:1], NEGATIVE[:3], ["neutral words here"], POSITIVE[1:3] + NEGATIVE[3:]]
    batcher = Batcher(window_s=600, batch_size=sum(len(texts) for texts in requests))

    futures = [batcher.classify(loaded, texts, max_length=64, deadline=FAR) for texts in requests]
    results = [future.result(timeout=60) for future in futures]

    assert batcher.batches == 1
    for texts, batched in zip(requests, results, strict=True):
        single = alone(loaded, texts)
        assert batched is not None
        assert batched.tokens == single.tokens
        for got, want in zip(batched.probabilities, single.probabilities, strict=True):
            assert got == pytest.approx(want, abs=1e-5)


def test_requests_with_different_max_length_do_not_share_a_pass(loaded: Classifier) -> None:
    batcher = Batcher(window_s=600, batch_size=2)

    futures = [batcher.classify(loaded, [POSITIVE[i]], max_length=(16, 64)[i % 2], deadline=FAR) for i in range(4)]
    results = [future.result(timeout=60) for future in futures]

    assert batcher.batches == 2
    assert all(result is not None and len(result.probabilities) == 1 for result in results)


def test_a_request_out_of_time_while_queued_is_not_classified(loaded: Classifier) -> None:
    batcher = Batcher(window_s=0, batch_size=4)

    late = batcher.classify(loaded, ["too late"], max_length=64, deadline=time.monotonic() - 1)

    assert late.result(timeout=60) is None
    assert batcher.batches == 0


def test_concurrent_requests_get_the_scores_they_get_alone(client: TestClient) -> None:
    requests = [[text] for text in POSITIVE + NEGATIVE] + [POSITIVE[:2], NEGATIVE[1:]]

    def classify(texts: list[str]) -> list[dict[str, float]]:
        response = client.post("/v1/classify", json={"texts": texts})
        assert response.status_code == 200
        return [result["scores"] for result in response.json()["results"]]

    singles = [classify(texts) for texts in requests]
    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        together = list(pool.map(classify, requests))

    for got, want in zip(together, singles, strict=True):
        assert len(got) == len(want)
        for scores, expected in zip(got, want, strict=True):
            assert scores == pytest.approx(expected, abs=1e-5)
