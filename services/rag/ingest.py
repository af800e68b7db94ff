"""Incremental, idempotent ingest of files into a workbench collection.

Each file's SHA-256 is stored in its chunks' metadata (`file_hash`). A re-ingest reads only that
index (the `chunk_index == 0` rows), skips unchanged files without embedding them, replaces the
chunks of changed files, and removes the chunks of files that disappeared from an ingested folder
(or a named file that no longer exists). A file's chunk 0 is written last, so a file counts as
ingested only once all its chunks are stored; an interrupted run is repaired by the next one.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.errors import NextStep, ReadOnlyCollectionError, UsageError
from services.rag.chunking import make_splitter
from services.rag.collections import is_workbench, recorded_model, recorded_runtime
from services.rag.embeddings import Embedder, load_embedder, preferred_runtime, prepare_queries
from services.rag.loaders import Discovery, SkipFileError, discover, load_sections
from services.rag.types import CREATED_BY, IngestProgress, IngestReport

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection
    from langchain_text_splitters import TextSplitter

    from services.progress import CancelToken

OnProgress = Callable[[IngestProgress], None]
GROUP_BATCHES = 16
PROGRESS_INTERVAL_S = 0.1


@dataclass(frozen=True)
class Chunk:
    id: str
    text: str
    metadata: dict[str, Any]


@dataclass
class _Run:
    """Mutable state of one ingest: counters, the pending write group and progress timing."""

    collection: Collection
    embedder: Embedder
    group_size: int
    files_total: int
    progress: OnProgress | None
    cancel: CancelToken | None
    started: float
    files_done: int = 0
    chunks_done: int = 0
    chunks_removed: int = 0
    embed_started: float | None = None
    last_emit: float = 0.0
    current: str = ""
    pending: list[Chunk] = field(default_factory=list)
    pending_deletes: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("added", "replaced", "unchanged"), 0))
    skipped: list[tuple[str, str]] = field(default_factory=list)


def ingest(
    client: ClientAPI,
    paths: Sequence[Path],
    *,
    collection: str,
    model_id: str,
    cache_dir: Path,
    chunk_size: int,
    overlap: int,
    progress: OnProgress | None = None,
    cancel: CancelToken | None = None,
    text_column: str = "text",
) -> IngestReport:
    """Bring `collection` in line with the files under `paths` (files and folders, recursively)."""
    started = time.perf_counter()
    existing = _existing(client, collection)
    nothing_to_do = _unchanged_report(existing, paths, model_id, chunk_size, overlap, started)
    if nothing_to_do is not None:
        return nothing_to_do
    # a collection keeps the runtime it was made with; a new one gets the machine's fastest (preferred_runtime)
    runtime = recorded_runtime(existing) if existing is not None else preferred_runtime()
    embedder = load_embedder(model_id, cache_dir=cache_dir, runtime=runtime)
    splitter = make_splitter(embedder, chunk_size=chunk_size, overlap=overlap)
    target = writable_collection(client, collection, embedder, chunk_size=chunk_size, overlap=overlap)
    found = discover(paths)
    index, orphans = file_index(target)
    group = min(client.get_max_batch_size(), embedder.batch_size * GROUP_BATCHES)
    run = _Run(target, embedder, group, len(found.files), progress, cancel, started, skipped=list(found.skipped))
    for path in found.files:
        _check_cancel(run)
        _ingest_file(run, path, index, splitter, text_column=text_column, orphans=orphans)
        run.files_done += 1
        _emit(run)
    _flush(run)
    removed = _remove_deleted(run, found, index)
    _emit(run, force=True)
    report = IngestReport(
        added_files=run.counts["added"],
        replaced_files=run.counts["replaced"],
        unchanged_files=run.counts["unchanged"],
        removed_files=removed,
        chunks_added=run.chunks_done,
        chunks_removed=run.chunks_removed,
        seconds=time.perf_counter() - run.started,
        skipped=run.skipped,
    )
    prepare_queries(embedder, cache_dir=cache_dir)
    return report


def _existing(client: ClientAPI, name: str) -> Collection | None:
    from chromadb.errors import NotFoundError as ChromaNotFound

    try:
        return client.get_collection(name, embedding_function=None)
    except (ChromaNotFound, ValueError):
        return None


def _unchanged_report(
    target: Collection | None, paths: Sequence[Path], model_id: str, chunk_size: int, overlap: int, started: float
) -> IngestReport | None:
    """The report of a re-ingest with nothing to do, found without loading the model; None otherwise."""
    if target is None:
        return None
    meta = target.metadata or {}
    settings = (recorded_model(target), meta.get("chunk_size"), meta.get("chunk_overlap"))
    if not is_workbench(target) or settings != (model_id, chunk_size, overlap):
        return None  # the full path explains the refusal
    found = discover(paths)
    index, orphans = file_index(target)
    if orphans or _gone_sources(found, index) or not all(_same_file(p, index) for p in found.files):
        return None
    missing = [(str(p), "not found") for p in found.missing]
    return IngestReport(0, 0, len(found.files), 0, 0, 0, time.perf_counter() - started, [*found.skipped, *missing])


def _same_file(path: Path, index: dict[str, tuple[str, int]]) -> bool:
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return False
    return index.get(str(path), ("", 0))[0] == digest


def writable_collection(
    client: ClientAPI, name: str, embedder: Embedder, *, chunk_size: int, overlap: int
) -> Collection:
    """The workbench collection `name`, created when missing; refuses one made elsewhere or built
    with another model or chunking."""
    from chromadb.errors import InvalidArgumentError

    metadata: dict[str, str | int | float | bool] = {
        "created_by": CREATED_BY,
        "embedding_model": embedder.model_id,
        "embedding_dimension": embedder.dimension,
        "chunk_size": chunk_size,
        "chunk_overlap": overlap,
        "splitter": "langchain RecursiveCharacterTextSplitter, model tokenizer",
        "embedding_runtime": embedder.runtime,
    }
    if embedder.export:
        metadata["embedding_export"] = embedder.export
    try:
        found = client.get_or_create_collection(
            name, metadata=metadata, configuration={"hnsw": {"space": "cosine"}}, embedding_function=None
        )
    except (InvalidArgumentError, ValueError) as exc:
        raise UsageError(f"collection name {name!r} is not valid: {exc}") from None
    _check_compatible(found, embedder.model_id, chunk_size, overlap)
    return found


def _check_compatible(found: Collection, model_id: str, chunk_size: int, overlap: int) -> None:
    if not is_workbench(found):
        raise ReadOnlyCollectionError(
            f"collection {found.name!r} was not made by the workbench; it is read-only here",
            hint="ingest into a new collection (another name); query this one as it is",
        )
    meta = found.metadata or {}
    if recorded_model(found) != model_id:
        raise UsageError(
            f"collection {found.name!r} was built with {recorded_model(found)}, not {model_id}",
            hint=f"embed with {recorded_model(found)}, the model it was built with, or ingest into a new collection",
        )
    if (meta.get("chunk_size"), meta.get("chunk_overlap")) != (chunk_size, overlap):
        raise UsageError(
            f"collection {found.name!r} was chunked with size {meta.get('chunk_size')} and overlap "
            f"{meta.get('chunk_overlap')}, not {chunk_size} and {overlap}",
            hint="use the recorded values, or remove the collection to rebuild it",
            step=NextStep.of("rag.rm", name=found.name),
        )


def file_index(target: Collection) -> tuple[dict[str, tuple[str, int]], bool]:
    """Source -> (file hash, chunk count) of every completely stored file, and whether the store
    holds chunks of incompletely stored files (an interrupted run)."""
    rows = target.get(where={"chunk_index": 0}, include=["metadatas"])
    index: dict[str, tuple[str, int]] = {}
    for meta in rows["metadatas"] or []:
        index[str(meta["source"])] = (str(meta["file_hash"]), int(meta.get("chunk_count", 1)))  # type: ignore[arg-type]
    orphans = sum(count for _, count in index.values()) != target.count()
    return index, orphans


def _ingest_file(
    run: _Run,
    path: Path,
    index: dict[str, tuple[str, int]],
    splitter: TextSplitter,
    *,
    text_column: str,
    orphans: bool,
) -> None:
    source = str(path)
    run.current = source
    try:
        data = path.read_bytes()
    except OSError as exc:
        run.skipped.append((source, f"cannot be read: {exc.strerror or exc}"))
        return
    file_hash = hashlib.sha256(data).hexdigest()
    before = index.get(source)
    if before is not None and before[0] == file_hash:
        run.counts["unchanged"] += 1
        return
    try:
        chunks = make_chunks(source, file_hash, load_sections(path, data, text_column=text_column), splitter)
    except SkipFileError as exc:
        run.skipped.append((source, str(exc)))
        return
    run.counts["replaced" if before else "added"] += 1
    if before is not None or orphans:
        run.pending_deletes.append(source)
        run.chunks_removed += before[1] if before else 0
    # chunk 0 (the file's completion marker) goes last
    run.pending.extend(chunks[1:] + chunks[:1])
    while len(run.pending) >= run.group_size:
        _flush(run, limit=run.group_size)


def make_chunks(source: str, file_hash: str, sections: Sequence[Any], splitter: TextSplitter) -> list[Chunk]:
    """Chunks of one file's sections with their ids and metadata."""
    texts: list[tuple[str, dict[str, Any]]] = []
    for section in sections:
        texts += [(piece, section.metadata) for piece in splitter.split_text(section.text)]
    prefix = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()[:16]
    return [
        Chunk(
            id=f"{prefix}-{n}",
            text=text,
            metadata={
                **extra,
                "source": source,
                "chunk_index": n,
                "chunk_count": len(texts),
                "content_hash": hashlib.sha256(text.encode()).hexdigest(),
                "file_hash": file_hash,
            },
        )
        for n, (text, extra) in enumerate(texts)
    ]


def _flush(run: _Run, *, limit: int | None = None) -> None:
    """Embed and store the pending chunks (up to `limit`), after deleting the chunks they replace."""
    for source in run.pending_deletes:
        run.collection.delete(where={"source": source})
    run.pending_deletes.clear()
    group, run.pending = run.pending[: limit or len(run.pending)], run.pending[limit or len(run.pending) :]
    if not group:
        return
    if run.embed_started is None:
        run.embed_started = time.perf_counter()
    embeddings = _embed(run, [c.text for c in group])
    run.collection.upsert(
        ids=[c.id for c in group],
        embeddings=embeddings,  # type: ignore[arg-type]
        documents=[c.text for c in group],
        metadatas=[c.metadata for c in group],
    )
    run.chunks_done += len(group)
    _emit(run)


def _embed(run: _Run, texts: list[str]) -> list[list[float]]:
    """Embeddings in the model's batch size, longest texts first (less padding), progress per batch."""
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    vectors: list[list[float]] = [[] for _ in texts]
    size = run.embedder.batch_size
    for start in range(0, len(order), size):
        _check_cancel(run)
        batch = order[start : start + size]
        for i, vector in zip(batch, run.embedder.encode([texts[i] for i in batch]), strict=True):
            vectors[i] = vector
        _emit(run, extra=start + len(batch))
    return vectors


def _gone_sources(found: Discovery, index: dict[str, tuple[str, int]]) -> list[str]:
    """Stored files that disappeared from an ingested folder, or were named and no longer exist."""
    present = {str(p) for p in found.files}
    roots = tuple(str(r) + os.sep for r in found.roots)
    named = {str(p) for p in found.missing}
    return [s for s in index if s not in present and (s in named or s.startswith(roots))]


def _remove_deleted(run: _Run, found: Discovery, index: dict[str, tuple[str, int]]) -> int:
    gone = _gone_sources(found, index)
    for source in gone:
        run.collection.delete(where={"source": source})
        run.chunks_removed += index[source][1]
    known = set(index)
    run.skipped += [(str(p), "not found") for p in found.missing if str(p) not in known]
    return len(gone)


def _check_cancel(run: _Run) -> None:
    if run.cancel is not None:
        run.cancel.raise_if_cancelled("ingest")


def _emit(run: _Run, *, force: bool = False, extra: int = 0) -> None:
    if run.progress is None:
        return
    now = time.perf_counter()
    if not force and now - run.last_emit < PROGRESS_INTERVAL_S:
        return
    run.last_emit = now
    done = run.chunks_done + extra
    elapsed = now - run.embed_started if run.embed_started is not None else 0.0
    rate = done / elapsed if elapsed > 0 else 0.0
    run.progress(IngestProgress(run.files_done, run.files_total, done, rate, run.current))
