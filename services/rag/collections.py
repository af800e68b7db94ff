"""Collections: open, describe, list and remove; the workbench changes only collections it made.

A collection made elsewhere (plain `chromadb` code, another tool) opens read-only. Its embedding
model comes from its metadata (`embedding_model` and similar keys) or from the embedding-function
configuration Chroma persists; when neither names one, queries need the model given explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from services.errors import NextStep, NotFoundError, ReadOnlyCollectionError, UsageError
from services.rag.embeddings import MINILM, RUNTIMES, TORCH
from services.rag.types import CREATED_BY, CollectionInfo

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

MODEL_KEYS = ("embedding_model", "embedding_model_id", "embedding_model_name", "model_name", "model")
"""Collection metadata keys that may name the embedding model, first match wins."""


@dataclass(frozen=True)
class Recorded:
    """What a workbench collection records about how it was built."""

    model_id: str | None
    chunk_size: int | None
    overlap: int | None
    read_only: bool


def open_collection(client: ClientAPI, name: str) -> Collection:
    """The collection `name` (no embedding function attached); NotFoundError when missing."""
    from chromadb.errors import NotFoundError as ChromaNotFound

    try:
        return client.get_collection(name, embedding_function=None)
    except (ChromaNotFound, ValueError) as exc:
        if isinstance(exc, ValueError) and "does not exist" not in str(exc):
            raise UsageError(f"collection {name!r}: {exc}") from None
        raise NotFoundError(f"collection {name!r} does not exist", step=NextStep("rag.ls")) from None


def is_workbench(collection: Collection) -> bool:
    """True when the workbench made this collection (and may change it)."""
    return (collection.metadata or {}).get("created_by") == CREATED_BY


def recorded_model(collection: Collection) -> str | None:
    """The embedding model the collection records, or None when it names none."""
    metadata = collection.metadata or {}
    for key in MODEL_KEYS:
        value = metadata.get(key)
        if isinstance(value, str) and value:
            return value
    return _model_from_function(_function_config(collection))


def recorded_runtime(collection: Collection) -> str:
    """The runtime the collection was embedded with (`embedding_runtime`); torch when it records none
    (collections from before the ONNX runtime, or made elsewhere)."""
    value = (collection.metadata or {}).get("embedding_runtime")
    return value if isinstance(value, str) and value in RUNTIMES else TORCH


def _function_config(collection: Collection) -> dict[str, Any]:
    try:
        config = collection.configuration_json or {}
    except Exception:  # older stores keep no configuration
        return {}
    function = config.get("embedding_function")
    return function if isinstance(function, dict) else {}


def _model_from_function(function: dict[str, Any]) -> str | None:
    name = function.get("name")
    if name == "default":  # chromadb's built-in embedder is all-MiniLM-L6-v2 (ONNX export)
        return MINILM
    if name == "sentence_transformer":
        model = (function.get("config") or {}).get("model_name")
        return str(model) if model else None
    return None


def recorded(client: ClientAPI, name: str) -> Recorded | None:
    """How collection `name` was built, or None when it does not exist yet."""
    try:
        collection = open_collection(client, name)
    except NotFoundError:
        return None
    metadata = collection.metadata or {}
    size, overlap = metadata.get("chunk_size"), metadata.get("chunk_overlap")
    return Recorded(
        model_id=recorded_model(collection),
        chunk_size=size if isinstance(size, int) else None,
        overlap=overlap if isinstance(overlap, int) else None,
        read_only=not is_workbench(collection),
    )


def describe(collection: Collection) -> CollectionInfo:
    """Name, size, recorded model and writability of a collection."""
    return CollectionInfo(
        name=collection.name,
        count=collection.count(),
        model_id=recorded_model(collection),
        read_only=not is_workbench(collection),
    )


def list_collections(client: ClientAPI) -> list[CollectionInfo]:
    """Every collection in the store, sorted by name."""
    return sorted((describe(c) for c in client.list_collections()), key=lambda info: info.name)


def remove_collection(client: ClientAPI, name: str) -> None:
    """Delete a workbench collection; NotFoundError when missing, ReadOnlyCollectionError when made elsewhere."""
    collection = open_collection(client, name)
    if not is_workbench(collection):
        raise ReadOnlyCollectionError(
            f"collection {name!r} was not made by the workbench; it is read-only here",
            hint="delete it with the tool that made it",
        )
    client.delete_collection(name)
