"""The scenario a new user meets: the chatbot on the demo model (512 positions) with the demo
documents ingested at the workbench's default chunking answers, with the retrieved context cut to
fit the model, instead of refusing every question (the prompt counted with the chat model's
tokenizer, not the embedding model's)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from appkit.testing import wait_ready
from fastapi.testclient import TestClient
from workbench.config.schema import RagSettings

from chatbot.app import Resources, create_app
from chatbot.engine import LanguageModel
from chatbot.retrieval import open_retriever
from chatbot.settings import Settings
from chatbot_support import CANARY_KEY, COLLECTION, DOCUMENTS, ask, read_only

QUESTION = "How much GPU budget does the team have?"
AUTH = {"Authorization": f"Bearer {CANARY_KEY}"}


@pytest.fixture(scope="module")
def default_collection(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The demo documents as `workbench rag ingest` chunks them by default (256 embedding tokens, 32 shared)."""
    from services.rag.chroma import persistent_client
    from services.rag.ingest import ingest

    rag = RagSettings()
    source = tmp_path_factory.mktemp("chroma-default")
    ingest(
        persistent_client(source),
        [DOCUMENTS],
        collection=COLLECTION,
        model_id=rag.embedding_model,
        cache_dir=tmp_path_factory.mktemp("hf-cache-default"),
        chunk_size=rag.chunk_size,
        overlap=rag.overlap,
    )
    with read_only(source, tmp_path_factory.mktemp("chroma-default-ro")) as mounted:
        yield mounted


@pytest.fixture(scope="module")
def demo_client(
    make_settings: Callable[..., Settings],
    loaded: tuple[Resources, str, str],
    default_collection: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., TestClient]]:
    """`demo_client(**settings)`: the demo model with the default-chunked collection, the chatbot's
    own defaults (4 chunks, 256 tokens of answer) unless overridden."""
    retriever = open_retriever(
        default_collection, name=COLLECTION, work_dir=tmp_path_factory.mktemp("work"), embedding_model_path=None
    )
    resources = Resources(loaded[0].lm, retriever)
    clients: list[TestClient] = []

    def make(**overrides: object) -> TestClient:
        defaults = {"rag_top_k": 4, "default_max_tokens": 256, "collection_path": default_collection}
        app = create_app(make_settings(**(defaults | overrides)), loader=lambda settings: resources)
        client = TestClient(app, headers={"Authorization": f"Bearer {CANARY_KEY}"})
        clients.append(client.__enter__())
        wait_ready(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def test_the_demo_chatbot_answers_with_the_context_that_fits(demo_client: Callable[..., TestClient]) -> None:
    response = demo_client().post("/v1/chat/completions", json=ask(QUESTION))

    assert response.status_code == 200, response.text
    body = response.json()
    assert any("06-gpu-budget" in source for source in body["sources"]), body["sources"]
    assert body["context_trimmed"] is True
    assert body["usage"]["total_tokens"] <= 512
    assert body["choices"][0]["message"]["role"] == "assistant"


@pytest.mark.parametrize("top_k", [1, 4])
def test_every_top_k_fits_a_512_position_model(demo_client: Callable[..., TestClient], top_k: int) -> None:
    response = demo_client(rag_top_k=top_k).post("/v1/chat/completions", json=ask(QUESTION, max_tokens=8))

    assert response.status_code == 200, response.text
    assert 1 <= len(response.json()["sources"]) <= top_k


def test_an_answer_longer_than_the_room_is_shortened_not_refused(demo_client: Callable[..., TestClient]) -> None:
    response = demo_client(max_tokens_limit=1024).post("/v1/chat/completions", json=ask(QUESTION, max_tokens=1000))

    assert response.status_code == 200, response.text
    body = response.json()
    assert any("06-gpu-budget" in source for source in body["sources"]), body["sources"]
    assert body["usage"]["total_tokens"] <= 512


def test_small_chunks_that_fit_are_sent_whole(client: TestClient) -> None:
    """The shared app's collection has 48-token chunks and retrieves one: it fits untouched."""
    body = client.post("/v1/chat/completions", json=ask(QUESTION, max_tokens=4)).json()

    assert body["context_trimmed"] is False
    assert len(body["sources"]) == 1


def test_only_a_question_that_cannot_fit_is_refused(demo_client: Callable[..., TestClient]) -> None:
    response = demo_client().post("/v1/chat/completions", json=ask("budget " * 600))

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "context_length_exceeded"
    assert "without any retrieved context" in error["message"]


class RecordingTokenizer:
    """A tokenizer that records each text it encodes, and the last one encoded as tensors (for `generate`)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.texts, self.as_tensors = inner, [], ""

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __call__(self, text: str, **kwargs: Any) -> Any:
        self.texts.append(text)
        if kwargs.get("return_tensors"):
            self.as_tensors = text
        return self.inner(text, **kwargs)


def test_the_prompt_the_budget_settles_on_is_encoded_once(
    make_settings: Callable[..., Settings],
    loaded: tuple[Resources, str, str],
    default_collection: Path,
    tmp_path: Path,
) -> None:
    shared = loaded[0].lm
    tokenizer = RecordingTokenizer(shared.tokenizer)
    lm = LanguageModel(shared.model, tokenizer, shared.adapter, shared.quantized)
    retriever = open_retriever(default_collection, name=COLLECTION, work_dir=tmp_path, embedding_model_path=None)
    settings = make_settings(rag_top_k=4, collection_path=default_collection)
    with TestClient(create_app(settings, loader=lambda _: Resources(lm, retriever)), headers=AUTH) as client:
        wait_ready(client)
        response = client.post("/v1/chat/completions", json=ask(QUESTION, max_tokens=8))

    assert response.status_code == 200, response.text
    assert response.json()["context_trimmed"] is True  # the budget counted, cut and counted again
    assert tokenizer.texts.count(tokenizer.as_tensors) == 1  # the prompt generated from
