"""Typed results and progress events of the RAG services."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CREATED_BY = "workbench"
"""Value of the `created_by` collection metadata key on collections the workbench made."""


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk."""

    id: str
    text: str
    source: str
    chunk_index: int
    distance: float
    metadata: dict[str, Any]


@dataclass(frozen=True)
class CollectionInfo:
    """A collection as listed: `model_id` is None when unknown, `read_only` when made elsewhere."""

    name: str
    count: int
    model_id: str | None
    read_only: bool


@dataclass(frozen=True)
class IngestProgress:
    """Posted often during an ingest; consumers coalesce."""

    files_done: int
    files_total: int
    chunks_done: int
    chunks_per_s: float
    current: str


@dataclass(frozen=True)
class IngestReport:
    """What an ingest changed; `skipped` holds (path, reason) for files left out."""

    added_files: int
    replaced_files: int
    unchanged_files: int
    removed_files: int
    chunks_added: int
    chunks_removed: int
    seconds: float
    skipped: list[tuple[str, str]]
