"""The fast runtimes for RAG embeddings (ONNX, torch under bfloat16): same vectors as torch,
recorded per collection, chosen by the machine; a damaged or impossible export handled. Real
MiniLM, real torch.onnx export, real onnxruntime, torch autocast and Chroma."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from services.errors import UsageError
from services.rag import embeddings
from services.rag.chroma import persistent_client
from services.rag.chunking import make_splitter
from services.rag.embeddings import (
    MINILM,
    ONNX,
    TORCH,
    TORCH_BF16,
    Embedder,
    load_embedder,
    packaged_minilm,
    preferred_runtime,
)
from services.rag.ingest import ingest
from services.rag.onnx_runtime import ExportError, build_export, export_folder, load_export
from services.rag.query import nearest, retrieve
from tests.integration.rag_support import DEMO_DOCUMENTS, copy_demo_documents

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An HF cache folder with the MiniLM export already built beside it."""
    cache = tmp_path_factory.mktemp("cache") / "hub"
    load_export(MINILM, packaged_minilm(), cache)
    return cache


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """No embedder loaded yet in this process (each test sees its own loading path)."""
    monkeypatch.setattr(embeddings, "_loaded", {})


def prefer(monkeypatch: pytest.MonkeyPatch, runtime: str) -> None:
    """New collections get `runtime`, whatever this machine's CPU prefers."""
    monkeypatch.setattr("services.rag.ingest.preferred_runtime", lambda: runtime)


def demo_chunks(embedder: Embedder) -> list[str]:
    splitter = make_splitter(embedder, chunk_size=256, overlap=32)
    files = sorted(p for p in DEMO_DOCUMENTS.rglob("*") if p.is_file())
    return [piece for path in files for piece in splitter.split_text(path.read_text(errors="replace"))]


def cosines(a: list[list[float]], b: list[list[float]]) -> np.ndarray:
    x, y = np.asarray(a), np.asarray(b)
    return (x * y).sum(1) / np.linalg.norm(x, axis=1) / np.linalg.norm(y, axis=1)  # type: ignore[no-any-return]


def test_onnx_vectors_match_torch_on_the_demo_corpus(hub: Path, fresh: None) -> None:
    onnx = load_embedder(MINILM, cache_dir=hub, runtime=ONNX)
    torch = load_embedder(MINILM, cache_dir=hub, runtime=TORCH)
    assert (onnx.runtime, torch.runtime) == (ONNX, TORCH)
    texts = [*demo_chunks(onnx), "x", "  spaces and\nnew lines  ", "Ünïcödé – dashes", "long text " * 400]
    assert len(texts) > 10
    similarity = cosines(onnx.encode(texts), torch.encode(texts))
    assert similarity.min() >= 0.999, similarity.min()
    assert onnx.dimension == torch.dimension and onnx.max_tokens == torch.max_tokens
    assert export_folder(MINILM, onnx.path, hub).parent.parent == hub.parent / "hub-onnx"


def test_bf16_vectors_match_torch_on_the_demo_corpus(hub: Path, fresh: None) -> None:
    bf16 = load_embedder(MINILM, cache_dir=hub, runtime=TORCH_BF16)
    torch = load_embedder(MINILM, cache_dir=hub, runtime=TORCH)
    assert (bf16.runtime, torch.runtime) == (TORCH_BF16, TORCH) and bf16.model is torch.model  # loaded once
    texts = [*demo_chunks(bf16), "x", "  spaces and\nnew lines  ", "Ünïcödé – dashes", "long text " * 400]
    similarity = cosines(bf16.encode(texts), torch.encode(texts))
    assert similarity.min() >= 0.999, similarity.min()
    assert similarity.min() < 1 - 1e-7, "bf16 gave torch's float32 vectors bit for bit: autocast did not run"


@pytest.mark.parametrize(
    ("flags", "expected"),
    [("fpu sse2 avx512f avx512_bf16 avx512_vnni", TORCH_BF16), ("fpu sse2 amx_bf16 amx_tile", TORCH_BF16),
     ("fpu sse2 avx2 avx512f", ONNX), (None, ONNX)],
)  # fmt: skip
def test_new_collections_get_bf16_only_where_the_cpu_multiplies_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flags: str | None, expected: str
) -> None:
    real_exists = os.path.exists
    monkeypatch.setattr(embeddings.os.path, "exists", lambda p: p != "/dev/nvidiactl" and real_exists(p))
    cpuinfo = tmp_path / "cpuinfo"
    if flags is not None:
        cpuinfo.write_text(f"processor\t: 0\nmodel name\t: some CPU\nflags\t\t: {flags}\n\nprocessor\t: 1\n")
    assert preferred_runtime(cpuinfo) == expected


@pytest.mark.parametrize(("runtime", "asks"), [(ONNX, ONNX), (TORCH_BF16, ONNX)])
def test_runtime_is_recorded_and_queries_embed_with_its_vectors(
    hub: Path, tmp_path: Path, fresh: None, monkeypatch: pytest.MonkeyPatch, runtime: str, asks: str
) -> None:
    prefer(monkeypatch, runtime)
    client = persistent_client(tmp_path / "chroma")
    docs = copy_demo_documents(tmp_path / "docs")
    options = {"model_id": MINILM, "cache_dir": hub, "chunk_size": 128, "overlap": 16}
    ingest(client, [docs], collection="fast", **options)  # type: ignore[arg-type]
    meta = client.get_collection("fast", embedding_function=None).metadata
    assert meta["embedding_runtime"] == runtime
    assert (runtime != ONNX) or meta["embedding_export"].startswith(f"{MINILM}@")
    asked: list[str] = []
    original = embeddings.load_embedder

    def spy(model_id: str, *, cache_dir: Path, runtime: str = TORCH) -> Embedder:
        asked.append(runtime)
        return original(model_id, cache_dir=cache_dir, runtime=runtime)

    monkeypatch.setattr("services.rag.query.load_embedder", spy)
    hits = retrieve(client, "fast", "Who approves GPU budget requests?", k=2, cache_dir=hub)
    assert asked == [asks] and "06-gpu-budget" in hits[0].source
    client.get_collection("fast").modify(metadata={**meta, "embedding_runtime": TORCH})
    retrieve(client, "fast", "Who approves GPU budget requests?", k=2, cache_dir=hub)
    assert asked == [asks, TORCH]


def test_questions_embedded_on_onnx_find_what_bf16_questions_find(
    hub: Path, tmp_path: Path, fresh: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A torch-bf16 collection takes its questions on ONNX (float32): the nearest chunks are the same."""
    prefer(monkeypatch, TORCH_BF16)
    client = persistent_client(tmp_path / "chroma")
    docs = copy_demo_documents(tmp_path / "docs")
    ingest(client, [docs], collection="bf16", model_id=MINILM, cache_dir=hub, chunk_size=96, overlap=16)
    found = client.get_collection("bf16", embedding_function=None)
    questions = [
        "Who approves GPU budget requests?",
        "How do I roll back a deploy?",
        "What is the on-call rota?",
        "Which regions may hold customer data?",
        "How long are logs kept?",
        "onboarding laptop setup",
    ]

    def nearest_ids(runtime: str) -> list[list[str]]:
        vectors = load_embedder(MINILM, cache_dir=hub, runtime=runtime).encode(questions)
        return [[hit.id for hit in nearest(found, vector, k=5)] for vector in vectors]

    assert nearest_ids(ONNX) == nearest_ids(TORCH_BF16)


def test_a_bf16_ingest_builds_the_export_its_questions_need(
    tmp_path: Path, fresh: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefer(monkeypatch, TORCH_BF16)
    cache = tmp_path / "hub"
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("The deploy lock is a lease renewed every 15 seconds.")
    client = persistent_client(tmp_path / "chroma")
    ingest(client, [tmp_path / "docs"], collection="bf16", model_id=MINILM, cache_dir=cache, chunk_size=64, overlap=8)
    assert export_folder(MINILM, packaged_minilm(), cache).is_dir()

    def no_export(*_: object) -> None:
        raise AssertionError("the first question built the export")

    monkeypatch.setattr("services.rag.onnx_runtime.build_export", no_export)
    hits = retrieve(client, "bf16", "How often is the lease renewed?", k=1, cache_dir=cache)
    assert hits[0].source.endswith("a.md") and embeddings._loaded[(str(packaged_minilm()), ONNX)].runtime == ONNX


def test_a_damaged_export_is_built_again_with_a_warning(
    hub: Path, tmp_path: Path, fresh: None, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tmp_path / "hub"
    folder = export_folder(MINILM, packaged_minilm(), cache)
    shutil.copytree(export_folder(MINILM, packaged_minilm(), hub), folder)
    with (folder / "model.onnx").open("r+b") as model:  # same size, other bytes: only the hash can tell
        model.seek(os.path.getsize(folder / "model.onnx") // 2)
        model.write(b"\0" * 4096)
    with caplog.at_level(logging.WARNING, logger="services.rag.embeddings"):
        embedder = load_embedder(MINILM, cache_dir=cache, runtime=ONNX)
    assert embedder.runtime == ONNX
    assert "cached ONNX export is damaged" in caplog.text and "does not match its recorded sha256" in caplog.text
    reference = load_embedder(MINILM, cache_dir=cache, runtime=TORCH)
    assert cosines(embedder.encode(["GPU budget"]), reference.encode(["GPU budget"])).min() >= 0.999


def test_no_export_falls_back_to_torch_and_the_collection_says_so(
    tmp_path: Path, fresh: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # the exporter cannot write the model
    prefer(monkeypatch, ONNX)
    client = persistent_client(tmp_path / "chroma")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("The deploy lock is a lease renewed every 15 seconds.")
    with caplog.at_level(logging.WARNING, logger="services.rag.embeddings"):
        ingest(client, [tmp_path / "docs"], collection="slow", model_id=MINILM, cache_dir=tmp_path / "hub",
               chunk_size=64, overlap=8)  # fmt: skip
    assert "ONNX runtime unavailable" in caplog.text and "embedding with torch" in caplog.text
    assert client.get_collection("slow", embedding_function=None).metadata["embedding_runtime"] == TORCH
    assert [p for p in (tmp_path / "hub-onnx").rglob("*") if p.is_file()] == [], "a failed export left files"


def test_a_failed_export_leaves_no_folder_that_would_be_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)
    folder = export_folder(MINILM, packaged_minilm(), tmp_path / "hub")
    with pytest.raises(ExportError, match=r"exporting .* to ONNX failed"):
        build_export(MINILM, packaged_minilm(), folder)
    assert not folder.exists() and list(folder.parent.iterdir()) == []


def test_queries_on_a_cached_export_never_import_torch(hub: Path) -> None:
    script = (
        "import sys; from pathlib import Path; from services.rag.embeddings import load_embedder, MINILM\n"
        f"e = load_embedder(MINILM, cache_dir=Path({str(hub)!r}), runtime='onnx')\n"
        "assert e.runtime == 'onnx' and len(e.encode(['a question'])[0]) == 384\n"
        "print(sorted(m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], check=False, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_an_unknown_runtime_is_a_usage_error(hub: Path) -> None:
    with pytest.raises(UsageError, match="unknown embedding runtime 'tensorrt'"):
        load_embedder(MINILM, cache_dir=hub, runtime="tensorrt")
