"""RAG services end to end: real embedded Chroma, the real MiniLM model, real files in tmp_path."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from services.errors import CancelledError, EmbeddingModelUnknownError, NextStep, ReadOnlyCollectionError, UsageError
from services.progress import CancelToken
from services.rag.chroma import persistent_client
from services.rag.collections import list_collections, remove_collection
from services.rag.embeddings import MINILM, Embedder, load_embedder
from services.rag.ingest import ingest
from services.rag.query import retrieve
from services.rag.types import IngestProgress, IngestReport
from tests.integration.rag_support import copy_demo_documents, write_mixed_folder

Ingest = Callable[..., IngestReport]


@pytest.fixture
def client(tmp_path: Path) -> Any:
    return persistent_client(tmp_path / "chroma")


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    return copy_demo_documents(tmp_path / "docs")


@pytest.fixture
def run_ingest(client: Any, tmp_path: Path) -> Ingest:
    def run(*paths: Path, collection: str = "demo-docs", **options: Any) -> IngestReport:
        values = {"model_id": MINILM, "chunk_size": 64, "overlap": 8, **options}
        return ingest(client, list(paths), collection=collection, cache_dir=tmp_path / "hub", **values)

    return run


@pytest.fixture
def encoded(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Texts passed to the embedding model, per encode call."""
    calls: list[int] = []
    original = Embedder.encode

    def counting(self: Embedder, texts: Any, **kwargs: Any) -> list[list[float]]:
        calls.append(len(texts))
        return original(self, texts, **kwargs)

    monkeypatch.setattr(Embedder, "encode", counting)
    yield calls


def chunks_by_source(client: Any, collection: str = "demo-docs") -> dict[str, dict[str, str]]:
    """source -> {chunk id: content hash}"""
    rows = client.get_collection(collection, embedding_function=None).get(include=["metadatas"])
    found: dict[str, dict[str, str]] = {}
    for id_, meta in zip(rows["ids"], rows["metadatas"], strict=True):
        found.setdefault(meta["source"], {})[id_] = meta["content_hash"]
    return found


def test_ingest_is_incremental_and_idempotent(client: Any, docs: Path, run_ingest: Ingest, encoded: list[int]) -> None:
    files = sorted(docs.iterdir())
    first = run_ingest(docs)
    assert (first.added_files, first.replaced_files, first.unchanged_files, first.removed_files) == (
        len(files),
        0,
        0,
        0,
    )
    assert first.chunks_added > len(files) and first.skipped == []  # 64-token chunks: several per file
    stored = chunks_by_source(client)
    assert set(stored) == {str(f) for f in files}
    meta = client.get_collection("demo-docs", embedding_function=None).metadata
    assert meta["created_by"] == "workbench" and meta["embedding_model"] == MINILM
    assert (meta["chunk_size"], meta["chunk_overlap"]) == (64, 8)
    row = client.get_collection("demo-docs", embedding_function=None).get(limit=1, include=["metadatas"])
    assert {"source", "chunk_index", "content_hash", "file_hash"} <= set(row["metadatas"][0])

    encoded.clear()
    again = run_ingest(docs)
    assert (again.unchanged_files, again.added_files, again.chunks_added) == (len(files), 0, 0)
    assert encoded == []  # nothing re-embedded
    assert chunks_by_source(client) == stored

    changed = files[1]
    changed.write_text(changed.read_text() + "\n\nAppendix: the on-call rota changes every Monday at nine.\n")
    third = run_ingest(docs)
    assert (third.replaced_files, third.unchanged_files, third.added_files) == (1, len(files) - 1, 0)
    assert sum(encoded) == third.chunks_added == len(chunks_by_source(client)[str(changed)])
    assert third.chunks_removed == len(stored[str(changed)])
    after = chunks_by_source(client)
    assert {s: c for s, c in after.items() if s != str(changed)} == {
        s: c for s, c in stored.items() if s != str(changed)
    }
    assert after[str(changed)] != stored[str(changed)]

    files[0].unlink()
    fourth = run_ingest(docs)
    assert (fourth.removed_files, fourth.chunks_removed) == (1, len(stored[str(files[0])]))
    assert str(files[0]) not in chunks_by_source(client)


def test_query_returns_the_expected_source_with_distances(
    client: Any, docs: Path, run_ingest: Ingest, tmp_path: Path
) -> None:
    run_ingest(docs)
    hits = retrieve(client, "demo-docs", "How many GPU hours may fine-tune jobs use?", k=3, cache_dir=tmp_path / "hub")
    assert len(hits) == 3
    assert any(h.source.endswith("06-gpu-budget.txt") for h in hits)
    assert [h.distance for h in hits] == sorted(h.distance for h in hits)
    assert all(0.0 <= h.distance < 2.0 and h.text and h.chunk_index >= 0 for h in hits)

    only = str(docs / "04-release-process.md")
    filtered = retrieve(client, "demo-docs", "GPU hours", k=3, where={"source": only}, cache_dir=tmp_path / "hub")
    assert filtered and {h.source for h in filtered} == {only}
    with pytest.raises(UsageError, match="demo-docs"):
        retrieve(client, "demo-docs", "x", where={"$nonsense": 1}, cache_dir=tmp_path / "hub")


def test_bad_and_binary_files_are_reported_not_fatal(client: Any, tmp_path: Path, run_ingest: Ingest) -> None:
    files = write_mixed_folder(tmp_path / "mixed")
    report = run_ingest(tmp_path / "mixed", tmp_path / "missing.md", collection="mixed")
    reasons = dict(report.skipped)
    assert report.added_files == 3  # html, pdf, jsonl; the csv keeps its text in `body`, see below
    assert "binary" in reasons[str(files["binary"])]
    assert "UTF-8" in reasons[str(files["latin1"])]
    assert "PDF" in reasons[str(files["broken_pdf"])]
    assert "line 2" in reasons[str(files["bad_jsonl"])]
    assert "'text'" in reasons[str(files["no_column"])]
    assert "unsupported" in reasons[str(files["unsupported"])]
    assert reasons[str(tmp_path / "missing.md")] == "not found"
    assert "column 'text'" in reasons[str(files["csv"])]  # its text is in `body`

    with_body = run_ingest(files["csv"], collection="tickets", text_column="body")
    assert with_body.added_files == 1 and with_body.skipped == []
    stored = client.get_collection("mixed", embedding_function=None).get(include=["metadatas", "documents"])
    by_source: dict[str, list[dict[str, Any]]] = {}
    for meta in stored["metadatas"]:
        by_source.setdefault(meta["source"], []).append(meta)
    assert sorted(m["page"] for m in by_source[str(files["pdf"])]) == [1, 2]
    assert {m["topic"] for m in by_source[str(files["jsonl"])]} == {"storage", "rag"}
    assert by_source[str(files["html"])][0]["title"] == "Onboarding"
    assert not any("secret" in doc for doc in stored["documents"])  # script text left out


def test_collection_made_by_plain_chromadb_opens_read_only(client: Any, tmp_path: Path, run_ingest: Ingest) -> None:
    from chromadb.utils.embedding_functions import SentenceTransformerEmbeddingFunction

    model_folder = str(load_embedder(MINILM, cache_dir=tmp_path / "hub").path)
    texts = ["The cafeteria opens at eight.", "Backups run every night at two."]
    known = client.create_collection(
        "made-elsewhere", embedding_function=SentenceTransformerEmbeddingFunction(model_name=model_folder)
    )
    known.add(ids=["a", "b"], documents=texts, metadatas=[{"source": "a.txt"}, {"source": "b.txt"}])
    unknown = client.create_collection("no-model-recorded", embedding_function=None)
    vectors = load_embedder(MINILM, cache_dir=tmp_path / "hub").encode(texts)
    unknown.add(
        ids=["a", "b"], embeddings=vectors, documents=texts, metadatas=[{"source": "a.txt"}, {"source": "b.txt"}]
    )

    listed = {c.name: c for c in list_collections(client)}
    assert listed["made-elsewhere"].read_only and listed["made-elsewhere"].model_id == model_folder
    assert listed["no-model-recorded"].read_only and listed["no-model-recorded"].model_id is None

    hits = retrieve(client, "made-elsewhere", "when are backups?", k=1, cache_dir=tmp_path / "hub")
    assert hits[0].source == "b.txt"
    with pytest.raises(EmbeddingModelUnknownError) as unknown_error:
        retrieve(client, "no-model-recorded", "when are backups?", cache_dir=tmp_path / "hub")
    assert unknown_error.value.step == NextStep.of("rag.query_model", name="no-model-recorded")
    hits = retrieve(client, "no-model-recorded", "when are backups?", k=1, cache_dir=tmp_path / "hub", model_id=MINILM)
    assert hits[0].source == "b.txt"

    with pytest.raises(ReadOnlyCollectionError, match="read-only"):
        run_ingest(tmp_path, collection="made-elsewhere", model_id=model_folder)
    with pytest.raises(ReadOnlyCollectionError):
        remove_collection(client, "no-model-recorded")
    assert known.count() == 2


def test_cancel_then_resume_leaves_a_consistent_collection(client: Any, docs: Path, run_ingest: Ingest) -> None:
    token = CancelToken()

    def cancel_once_embedding(progress: IngestProgress) -> None:
        if progress.chunks_done > 0:
            token.cancel()

    with pytest.raises(CancelledError):
        run_ingest(docs, progress=cancel_once_embedding, cancel=token, chunk_size=16, overlap=0)
    resumed = run_ingest(docs, chunk_size=16, overlap=0)
    assert resumed.added_files == len(list(docs.iterdir())) - resumed.unchanged_files
    stored = client.get_collection("demo-docs", embedding_function=None)
    complete = stored.get(where={"chunk_index": 0}, include=["metadatas"])["metadatas"]
    assert sum(m["chunk_count"] for m in complete) == stored.count()


def test_chunking_is_checked_against_the_model_and_the_collection(docs: Path, run_ingest: Ingest) -> None:
    with pytest.raises(UsageError, match="input length of 256"):
        run_ingest(docs, chunk_size=1000)
    with pytest.raises(UsageError, match="overlap"):
        run_ingest(docs, chunk_size=32, overlap=32)
    run_ingest(docs)
    with pytest.raises(UsageError, match="chunked with size 64"):
        run_ingest(docs, chunk_size=128)


def test_progress_reports_files_chunks_and_rate(docs: Path, run_ingest: Ingest) -> None:
    events: list[IngestProgress] = []
    report = run_ingest(docs, progress=events.append)
    last = events[-1]
    assert (last.files_done, last.files_total, last.chunks_done) == (
        report.added_files,
        report.added_files,
        report.chunks_added,
    )
    assert last.chunks_per_s > 0


def test_unchanged_reingest_does_not_load_the_model(
    docs: Path, run_ingest: Ingest, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = run_ingest(docs)

    def no_model(*args: Any, **kwargs: Any) -> Embedder:
        raise AssertionError("the embedding model was loaded for a re-ingest with nothing to do")

    monkeypatch.setattr("services.rag.ingest.load_embedder", no_model)
    again = run_ingest(docs, docs / "gone.md")
    assert (again.unchanged_files, again.added_files, again.chunks_added) == (first.added_files, 0, 0)
    assert again.skipped == [(str(docs / "gone.md"), "not found")]
    (docs / "new.md").write_text("A new page about the deploy lock.")
    with pytest.raises(AssertionError, match="was loaded"):
        run_ingest(docs)  # a new file needs the model
