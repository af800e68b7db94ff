"""Retrieval: embed the query with the collection's own model and runtime and return the nearest chunks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.errors import EmbeddingModelUnknownError, NextStep, UsageError
from services.rag.collections import is_workbench, open_collection, recorded_model, recorded_runtime
from services.rag.embeddings import load_embedder, query_runtime
from services.rag.types import Hit

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection


def retrieve(
    client: ClientAPI,
    collection: str,
    text: str,
    *,
    k: int = 4,
    where: dict[str, Any] | None = None,
    cache_dir: Path,
    model_id: str | None = None,
) -> list[Hit]:
    """The `k` chunks nearest to `text`, optionally filtered by chunk metadata (`where`, Chroma syntax).

    `model_id` is needed only for a collection made elsewhere that does not record its model.
    """
    if k < 1:
        raise UsageError(f"k must be at least 1, got {k}")
    found = open_collection(client, collection)
    # the collection's model on a runtime that gives the vectors it was embedded with
    runtime = query_runtime(recorded_runtime(found))
    embedder = load_embedder(query_model(found, model_id), cache_dir=cache_dir, runtime=runtime)
    vector = embedder.encode([text])[0]
    return nearest(found, vector, k=k, where=where)


def query_model(found: Collection, model_id: str | None) -> str:
    """The model to embed queries for `found` with: its recorded one (an explicit one may only
    stand in for a collection made elsewhere)."""
    known = recorded_model(found)
    if model_id and known and model_id != known and is_workbench(found):
        raise UsageError(
            f"collection {found.name!r} was built with {known}, not {model_id}",
            hint=f"leave the model out, or pass {known}",
        )
    if model_id and not is_workbench(found):
        return model_id
    if known:
        return known
    if model_id:
        return model_id
    raise EmbeddingModelUnknownError(
        f"collection {found.name!r} was made outside the workbench and does not record its embedding model",
        step=NextStep.of("rag.query_model", name=found.name),
    )


def nearest(found: Collection, vector: list[float], *, k: int, where: dict[str, Any] | None = None) -> list[Hit]:
    """The `k` stored chunks nearest to `vector`."""
    from chromadb.errors import ChromaError

    try:
        result = found.query(
            query_embeddings=[vector],  # type: ignore[arg-type]
            n_results=k,
            where=where or None,  # type: ignore[arg-type]
            include=["documents", "metadatas", "distances"],
        )
    except (ChromaError, ValueError, TypeError) as exc:
        raise UsageError(f"query on collection {found.name!r} failed: {exc}", hint=_hint(where)) from None
    ids = result["ids"][0]
    documents = (result["documents"] or [[]])[0]
    metadatas = (result["metadatas"] or [[]])[0]
    distances = (result["distances"] or [[]])[0]
    return [
        _hit(id_, doc, meta, dist) for id_, doc, meta, dist in zip(ids, documents, metadatas, distances, strict=True)
    ]


def _hit(id_: str, document: str | None, metadata: Any, distance: float) -> Hit:
    meta = dict(metadata or {})
    source = meta.get("source")
    index = meta.get("chunk_index")
    return Hit(
        id=id_,
        text=document or "",
        source=str(source) if source is not None else "",
        chunk_index=int(index) if isinstance(index, int | float) else -1,
        distance=float(distance),
        metadata=meta,
    )


def _hint(where: dict[str, Any] | None) -> str:
    if where:
        return 'check the --where filter, e.g. {"source": "/path/file.md"} or {"page": {"$gte": 2}}'
    return "check that the query model matches the collection's (embedding dimension)"


def parse_where(text: str | None, *, field: str = "the filter") -> dict[str, Any] | None:
    """A Chroma metadata filter typed as JSON into `field`; None when it is empty."""
    if text is None or not text.strip():
        return None
    try:
        where = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{field} is not valid JSON: {exc.msg} at column {exc.colno}",
            hint='write e.g. {"source": {"$contains": "policy"}}',
        ) from None
    if not isinstance(where, dict):
        raise UsageError(f"{field} must be a JSON object", hint='write e.g. {"chunk_index": 0}')
    return where
