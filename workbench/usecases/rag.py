"""RAG verbs: ingest files into a collection (with its recorded model and chunking) and register it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from chromadb.api import ClientAPI

    from services.progress import CancelToken
    from services.rag.types import IngestProgress, IngestReport
    from workbench.wiring import Services

T = TypeVar("T")


@dataclass(frozen=True)
class Chunking:
    """The embedding model and chunking an ingest uses."""

    model_id: str
    chunk_size: int
    overlap: int


@dataclass(frozen=True)
class Ingested:
    """What an ingest changed and the collection's artifact version afterwards."""

    report: IngestReport
    chunking: Chunking
    artifact: str
    """The collection's artifact ref (a new snapshot when anything changed)."""


def chunking_for(
    services: Services,
    client: ClientAPI,
    collection: str,
    *,
    model: str | None = None,
    chunk_size: int | None = None,
    overlap: int | None = None,
) -> Chunking:
    """Each value from the caller, else what the collection recorded when it was built, else the `rag` settings.

    A collection keeps one model and chunking, so a re-ingest that does not say otherwise uses its own."""
    from services.rag.collections import recorded

    before = recorded(client, collection)
    rag = services.settings.rag
    return Chunking(
        model_id=_first(model, before.model_id if before else None, rag.embedding_model),
        chunk_size=_first(chunk_size, before.chunk_size if before else None, rag.chunk_size),
        overlap=_first(overlap, before.overlap if before else None, rag.overlap),
    )


def ingest(
    services: Services,
    paths: Sequence[Path],
    *,
    collection: str,
    model: str | None = None,
    chunk_size: int | None = None,
    overlap: int | None = None,
    text_column: str = "text",
    progress: Callable[[IngestProgress], None] | None = None,
    cancel: CancelToken | None = None,
    client: ClientAPI | None = None,
) -> Ingested:
    """Bring `collection` in line with the files under `paths`, then register its new artifact version.

    Model, chunk size and overlap: each as given, else as the collection recorded, else the `rag` settings.
    `client`: an open Chroma client to use (default: the one `services` opens)."""
    from services.artifacts.sources import register_collection
    from services.rag.ingest import ingest as run_ingest

    client = client or services.chroma()
    chunking = chunking_for(services, client, collection, model=model, chunk_size=chunk_size, overlap=overlap)
    report = run_ingest(
        client,
        list(paths),
        collection=collection,
        model_id=chunking.model_id,
        cache_dir=services.cache_dir,
        chunk_size=chunking.chunk_size,
        overlap=chunking.overlap,
        progress=progress,
        cancel=cancel,
        text_column=text_column,
    )
    snapshot = register_collection(services.artifacts(), client, collection)
    return Ingested(report, chunking, snapshot.ref)


def _first(*values: T | None) -> T:
    return next(v for v in values if v is not None)
