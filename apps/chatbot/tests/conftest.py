"""Fixtures: the demo model, a LoRA adapter for it, a demo collection mounted read-only, and the app.

The expensive things are built once per session. Apps other than the one real load share its
loaded resources through their `loader`, so each test pays only for the requests it makes.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from appkit import testing
from fastapi import FastAPI

from chatbot.app import Resources, create_app, load_resources
from chatbot.settings import Settings
from chatbot_support import CANARY_KEY, COLLECTION, DOCUMENTS, read_only, tree_digest
from tests import app_fixtures

# shared fixtures: the kit's (they use `canary_key` and `app_factory` below) and the workbench's demo Llama
client = testing.client
key_file = testing.key_file
log_lines = testing.log_lines
demo_model = app_fixtures.demo_llama


@pytest.fixture(scope="session")
def demo_adapter(demo_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA adapter for the demo model, saved as the workbench's fine-tunes save theirs."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = tmp_path_factory.mktemp("adapter")
    torch.manual_seed(7)
    base = AutoModelForCausalLM.from_pretrained(demo_model)
    lora = LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM", init_lora_weights=False
    )
    get_peft_model(base, lora).save_pretrained(str(folder))
    AutoTokenizer.from_pretrained(demo_model).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def demo_collection(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The demo documents ingested by the workbench's own RAG service, in a read-only folder."""
    from services.rag.chroma import persistent_client
    from services.rag.ingest import ingest

    source = tmp_path_factory.mktemp("chroma-src")
    client = persistent_client(source)
    model = "sentence-transformers/all-MiniLM-L6-v2"
    cache = tmp_path_factory.mktemp("hf-cache")
    ingest(client, [DOCUMENTS], collection=COLLECTION, model_id=model, cache_dir=cache, chunk_size=48, overlap=8)
    with read_only(source, tmp_path_factory.mktemp("chroma-ro")) as mounted:
        yield mounted


@pytest.fixture(scope="session")
def canary_key() -> str:
    return CANARY_KEY


@pytest.fixture(scope="session")
def make_settings(
    demo_model: Path,
    demo_adapter: Path,
    demo_collection: Path,
    key_file: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[..., Settings]:
    """Settings for the demo model, adapter and collection; keyword arguments override fields."""
    work = tmp_path_factory.mktemp("work")

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "model_path": demo_model,
            "adapter_path": demo_adapter,
            "collection_path": demo_collection,
            "collection_name": COLLECTION,
            "api_keys_file": key_file,
            "work_dir": work,
            "default_max_tokens": 12,
            "rag_top_k": 1,
        }
        return Settings(**(values | overrides))

    return make


@pytest.fixture(scope="session")
def loaded(make_settings: Callable[..., Settings], demo_collection: Path) -> tuple[Resources, str, str]:
    """The demo resources loaded once by the real loader; with the digests of the mounted
    collection before and after (they must be equal: the mount is only read)."""
    before = tree_digest(demo_collection)
    resources = load_resources(make_settings())
    return resources, before, tree_digest(demo_collection)


@pytest.fixture(scope="session")
def shared_loader(loaded: tuple[Resources, str, str]) -> Callable[[Settings], Resources]:
    return lambda settings: loaded[0]


@pytest.fixture(scope="session")
def app_factory(
    make_settings: Callable[..., Settings], shared_loader: Callable[[Settings], Resources]
) -> Callable[..., FastAPI]:
    """`app_factory(**settings)`: an app on the shared loaded resources."""

    def make(**overrides: Any) -> FastAPI:
        return create_app(make_settings(**overrides), loader=shared_loader)

    return make


@pytest.fixture(scope="session")
def server(app_factory: Callable[..., FastAPI]) -> Iterator[str]:
    """The app served by uvicorn on a loopback port (for the official OpenAI client); its base URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app_factory(), log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    _wait_http(url)
    yield url
    server.should_exit = True
    thread.join(timeout=10)


def _wait_http(url: str, timeout: float = 30.0) -> None:
    import urllib.error
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with opener.open(f"{url}/readyz", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"{url} did not become ready")
