"""`workbench chat` and the Playground on the demo model (512 positions) with the demo documents at the
workbench's default chunking: the prompt is budgeted to the model (`appkit.budget`, as in the deployed
chatbot), so the answer comes with the chunks that fit instead of running past the model's context."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from services.chat.session import ChatEngine, collect
from services.chat.variant import Variant
from services.demo import DEMO_MODEL, DemoWorkspace, init_demo
from workbench.config.schema import RagSettings

QUESTION = "How much GPU budget does the team have?"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoWorkspace:
    root = tmp_path_factory.mktemp("demo")
    return init_demo(cache_dir=root / "hub", data_dir=root / "data")


@pytest.fixture(scope="module")
def engine(demo: DemoWorkspace, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChatEngine]:
    from services.rag.chroma import persistent_client
    from services.rag.ingest import ingest

    rag = RagSettings()
    store = tmp_path_factory.mktemp("chroma")
    ingest(
        persistent_client(store),
        [Path(demo.documents)],
        collection="demo-docs",
        model_id=rag.embedding_model,
        cache_dir=Path(demo.cache_dir),
        chunk_size=rag.chunk_size,
        overlap=rag.overlap,
    )
    engine = ChatEngine(cache_dir=Path(demo.cache_dir), rag_client_factory=lambda: persistent_client(store))
    yield engine
    engine.close()


def variant(max_new_tokens: int, k: int = 4) -> Variant:
    return Variant.model_validate(
        {
            "name": "rag",
            "model": DEMO_MODEL,
            "system_prompt": "You are a helpful assistant for the team's internal documentation.",
            "rag": {"collection": "demo-docs", "k": k},
            "params": {"max_new_tokens": max_new_tokens},
        }
    )


@pytest.mark.parametrize("max_new_tokens", [16, 256])
def test_a_local_model_answers_with_the_context_that_fits(engine: ChatEngine, max_new_tokens: int) -> None:
    answer = collect(engine.stream(variant(max_new_tokens), QUESTION))

    assert answer.error is None
    assert answer.context_trimmed
    assert any("06-gpu-budget" in hit.source for hit in answer.hits), [hit.source for hit in answer.hits]
    assert all(hit.text in answer.prompt for hit in answer.hits)
    tokenizer = engine.models.get(variant(16)).tokenizer
    prompt_tokens = len(tokenizer(answer.prompt, add_special_tokens=False)["input_ids"])
    assert prompt_tokens + answer.tokens <= 512


def test_a_question_too_long_for_the_model_is_an_answer_error(engine: ChatEngine) -> None:
    answer = collect(engine.stream(variant(16), "budget " * 600))

    assert answer.error is not None and "without any retrieved context" in answer.error
