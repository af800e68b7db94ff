"""Concurrent questions share one embedding call and one Chroma query, each getting its own hits;
and a lone request on an idle engine starts at once, without waiting out a collection window.

Batches are forced without timing: a long window and a `max_batch` equal to the number of requests,
so a batch runs exactly when the last of them is queued; the idle fast path is shown with a window
far longer than any test, so a request that waited it out would time the test out.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from chatbot.app import Resources, create_app
from chatbot.batching import BatchConfig
from chatbot.engine import Generation, GenerationParams, LanguageModel
from chatbot.retrieval import Hit, Query, Retriever
from chatbot.settings import Settings
from chatbot_support import CANARY_KEY, ask

QUESTIONS = {
    "How much GPU memory does a 7-billion-parameter model need in 4-bit?": "06-gpu-budget.txt",
    "How often are the API keys of the apps rotated?": "02-access-policy.md",
    "Which machine pulls images and runs the apps behind a reverse proxy?": "01-platform-overview.md",
    "How do I roll back a release that looks wrong?": "04-release-process.md",
}
FOREVER = 600.0
"""A collection window no test waits out."""


def retriever_like(retriever: Retriever, **batching: float | int | bool) -> Retriever:
    """A retriever on `retriever`'s collection and embedding model, batching as told."""
    return Retriever(
        retriever.collection, retriever.embedder, retriever.embedding_model, retriever.snapshot, BatchConfig(**batching)
    )


def model_like(lm: LanguageModel, **batching: float | int | bool) -> LanguageModel:
    return LanguageModel(lm.model, lm.tokenizer, lm.adapter, lm.quantized, BatchConfig(**batching))


@pytest.fixture(scope="module")
def shared(loaded: tuple[Resources, str, str]) -> Resources:
    return loaded[0]


def search_together(retriever: Retriever, questions: list[str], k: int) -> list[list[Hit]]:
    """Each question's hits, all submitted before any batch could run."""
    queries = [retriever.submit(q, k=k, deadline=time.monotonic() + 120) for q in questions]
    for query in queries:
        assert query.done.wait(120), "a query did not end"
    return [query.result() for query in queries]


def test_concurrent_questions_share_one_batch_and_each_gets_its_own_sources(shared: Resources) -> None:
    assert shared.retriever is not None
    questions = list(QUESTIONS)
    alone = retriever_like(shared.retriever, max_batch=1)
    singles = [alone.search(question, k=2) for question in questions]
    together = retriever_like(shared.retriever, window_s=FOREVER, max_batch=len(questions))
    batches: list[list[Query]] = []
    together.scheduler.on_batch = batches.append

    answers = search_together(together, questions, k=2)

    assert [len(batch) for batch in batches] == [len(questions)]
    for hits, single, expected in zip(answers, singles, QUESTIONS.values(), strict=True):
        assert hits[0].source.endswith(expected)
        assert [(h.source, h.text) for h in hits] == [(h.source, h.text) for h in single]
        assert [h.distance for h in hits] == pytest.approx([h.distance for h in single], abs=1e-4)


def test_questions_asking_for_different_k_never_share_a_query(shared: Resources) -> None:
    assert shared.retriever is not None
    together = retriever_like(shared.retriever, window_s=FOREVER, max_batch=2)
    batches: list[list[Query]] = []
    together.scheduler.on_batch = batches.append
    questions = list(QUESTIONS)
    queries = [
        together.submit(q, k=k, deadline=time.monotonic() + 120) for q, k in zip(questions, [1, 3, 1, 3], strict=True)
    ]
    for query in queries:
        assert query.done.wait(120)

    assert sorted(sorted(q.k for q in batch) for batch in batches) == [[1, 1], [3, 3]]
    assert [len(q.result()) for q in queries] == [1, 3, 1, 3]


def test_an_abandoned_question_is_never_looked_up(shared: Resources) -> None:
    assert shared.retriever is not None
    together = retriever_like(shared.retriever, window_s=FOREVER, max_batch=2)
    batches: list[list[Query]] = []
    together.scheduler.on_batch = batches.append
    questions = list(QUESTIONS)
    gone = together.submit(questions[0], k=1, deadline=time.monotonic() + 120)
    gone.abandoned.set()
    kept = [together.submit(q, k=1, deadline=time.monotonic() + 120) for q in questions[1:3]]
    for query in [gone, *kept]:
        assert query.done.wait(120)

    assert gone.result() == []
    assert [gone in batch for batch in batches] == [False]
    assert all(query.result() for query in kept)


def test_a_lone_request_on_an_idle_engine_starts_at_once(shared: Resources) -> None:
    lm = model_like(shared.lm, window_s=FOREVER, max_batch=16, idle_start=True)
    batches: list[list[Generation]] = []
    lm.scheduler.on_batch = batches.append
    inputs = lm.encode(lm.render([{"role": "user", "content": "hi"}]))

    generation = lm.start(inputs, GenerationParams(3), deadline=time.monotonic() + 120, sink=lambda event: None)

    assert generation.done.wait(30), "the lone request waited for its collection window"
    assert [len(batch) for batch in batches] == [1]


def test_a_batch_waits_for_requests_on_their_way_and_starts_when_the_last_arrives(shared: Resources) -> None:
    lm = model_like(shared.lm, window_s=FOREVER, max_batch=16, idle_start=True)
    batches: list[list[Generation]] = []
    lm.scheduler.on_batch = batches.append
    inputs = lm.encode(lm.render([{"role": "user", "content": "hi"}]))
    tickets = [lm.coming() for _ in range(3)]
    generations = []
    for ticket in tickets:
        params = GenerationParams(3)
        generations.append(
            lm.start(inputs, params, deadline=time.monotonic() + 120, sink=lambda e: None, ticket=ticket)
        )
        time.sleep(0.05)  # the worker looks at the queue in between: the first must not start alone

    for generation in generations:
        assert generation.done.wait(30)
    assert [len(batch) for batch in batches] == [3]
    assert lm.scheduler.on_the_way == 0


def test_generation_waits_for_the_questions_being_embedded(shared: Resources) -> None:
    """The loader makes generation follow retrieval (`Scheduler.feeder`): while a retrieval batch runs, a
    request that was submitted first does not start alone once its window has passed, but waits for the
    one still on its way, and they share one batch."""
    assert shared.retriever is not None
    assert shared.lm.scheduler.feeder is shared.retriever.scheduler
    lm = model_like(shared.lm, window_s=0.010, max_batch=16, idle_start=True, hold_s=FOREVER)
    retrieval = retriever_like(shared.retriever, idle_start=True)
    lm.scheduler.feeder = retrieval.scheduler
    batches: list[list[Generation]] = []
    lm.scheduler.on_batch = batches.append
    inputs = lm.encode(lm.render([{"role": "user", "content": "hi"}]))
    first, second = lm.coming(), lm.coming()
    gate = threading.Event()
    retrieval.scheduler.on_batch = lambda batch: gate.wait(60)  # the retrieval batch runs until the gate opens
    query = retrieval.submit(next(iter(QUESTIONS)), k=1, deadline=time.monotonic() + 120)
    try:
        deadline = time.monotonic() + 30
        while not retrieval.scheduler.running and time.monotonic() < deadline:
            time.sleep(0.005)
        generations = [lm.start(inputs, GenerationParams(3), deadline=time.monotonic() + 120, sink=lambda e: None,
                                ticket=first)]  # fmt: skip
        time.sleep(0.2)  # twenty windows: without the feeder it would have started alone
        assert batches == []
        generations.append(
            lm.start(inputs, GenerationParams(3), deadline=time.monotonic() + 120, sink=lambda e: None, ticket=second)
        )
    finally:
        gate.set()

    for generation in generations:
        assert generation.done.wait(30)
    assert [len(batch) for batch in batches] == [2]
    assert query.done.wait(30) and query.result()


def test_a_dropped_ticket_no_longer_holds_a_batch(shared: Resources) -> None:
    lm = model_like(shared.lm, window_s=FOREVER, max_batch=16, idle_start=True)
    inputs = lm.encode(lm.render([{"role": "user", "content": "hi"}]))
    dropped, submitted = lm.coming(), lm.coming()
    params = GenerationParams(3)
    generation = lm.start(inputs, params, deadline=time.monotonic() + 120, sink=lambda e: None, ticket=submitted)
    time.sleep(0.05)
    assert not generation.done.is_set()  # it waits for the one still on its way

    dropped.release()
    dropped.release()  # idempotent: counted once

    assert generation.done.wait(30)
    assert lm.scheduler.on_the_way == 0


@pytest.fixture(scope="module")
def fast_app(make_settings: Callable[..., Settings], shared: Resources) -> FastAPI:
    """The app with a window no request could wait out: only the idle fast path lets requests through."""
    assert shared.retriever is not None
    lm = model_like(shared.lm, window_s=FOREVER, max_batch=16, idle_start=True)
    retriever = retriever_like(shared.retriever, window_s=FOREVER, max_batch=16, idle_start=True)
    return create_app(make_settings(), loader=lambda settings: Resources(lm, retriever))


def test_the_app_answers_a_lone_request_without_waiting_its_windows(fast_app: FastAPI) -> None:
    question = next(iter(QUESTIONS))
    with TestClient(fast_app, headers={"Authorization": f"Bearer {CANARY_KEY}"}) as client:
        deadline = time.monotonic() + 60
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        answer = client.post("/v1/chat/completions", json=ask(question, max_tokens=4), timeout=30)

    assert answer.status_code == 200
    assert any(source.endswith("06-gpu-budget.txt") for source in answer.json()["sources"])


def test_concurrent_requests_through_the_app_each_get_their_own_sources(fast_app: FastAPI) -> None:
    results: dict[str, list[str]] = {}
    with TestClient(fast_app, headers={"Authorization": f"Bearer {CANARY_KEY}"}) as client:
        deadline = time.monotonic() + 60
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)

        def one(question: str) -> None:
            body = client.post("/v1/chat/completions", json=ask(question, max_tokens=4), timeout=60).json()
            results[question] = body["sources"]

        threads = [threading.Thread(target=one, args=(q,)) for q in QUESTIONS]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(90)

    assert set(results) == set(QUESTIONS)
    for question, expected in QUESTIONS.items():
        assert results[question][0].endswith(expected), (question, results[question])
