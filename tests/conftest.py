"""Shared pytest fixtures."""

import gc
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.rag import embeddings
from tests.fakehub import FakeHub
from tests.markers import mark_costs


@pytest.fixture
def fake_hub() -> Iterator[FakeHub]:
    """A running fake Hugging Face Hub on 127.0.0.1; pass `fake_hub.endpoint` to the client."""
    with FakeHub() as hub:
        yield hub


@pytest.fixture(autouse=True)
def _no_shared_gpu_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    """Trainers started by tests queue in their own workspace, never in this machine's shared queue."""
    monkeypatch.setenv("WORKBENCH_SERVER__STATE_DIR", "/nonexistent/llm-workbench")


@pytest.fixture(autouse=True)
def _nothing_kept_frozen() -> Iterator[None]:
    """The TUI freezes what it built at start (`WorkbenchApp.on_ready`): one app per process. Here many
    run in one process, so what one test froze is handed back to the collector after it."""
    yield
    if gc.get_freeze_count():
        gc.unfreeze()


@pytest.fixture(autouse=True)
def _new_collections_on_onnx(monkeypatch: pytest.MonkeyPatch) -> None:
    """New RAG collections embed on ONNX in tests, whatever this machine's CPU would choose (torch-bf16
    where it multiplies bfloat16): the distances a snapshot shows must not depend on the machine.
    Tests of the choice pass their own cpuinfo or set the runtime (`test_rag_onnx.prefer`)."""
    monkeypatch.setattr(embeddings, "CPUINFO", Path("/nonexistent/cpuinfo"))


@pytest.fixture(autouse=True)
def _no_chroma_store_kept() -> Iterator[None]:
    """Chroma keeps one store per folder path for the whole process. A passed test's tmp_path is
    removed and its name can come again (the next test of the same name prefix gets it): without
    this, that test would open the removed store, still in memory, with the last test's collections."""
    yield
    if "chromadb" in sys.modules:
        from chromadb.api.shared_system_client import SharedSystemClient

        SharedSystemClient.clear_system_cache()


@pytest.fixture(autouse=True)
def _no_ambient_hub_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never use a token from the developer's environment."""
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)


@pytest.fixture(scope="session")
def tiny_llama_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo tiny Llama, built once per session."""
    from services.demo import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture
def tiny_llama_hub(fake_hub: FakeHub, tiny_llama_folder: Path) -> FakeHub:
    """A fake hub serving the demo tiny Llama as workbench-demo/tiny-llama."""
    fake_hub.add_folder_repo(
        "workbench-demo/tiny-llama", tiny_llama_folder, pipeline_tag="text-generation", license="apache-2.0"
    )
    return fake_hub


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test `testbed`, `images` or `training` from what it uses (tests/markers.py)."""
    mark_costs(items)
