"""What registers itself: adapters of finished fine-tune jobs, merged models, and Chroma collections.

A collection version is a snapshot: a fresh Chroma folder holding only that collection's records
(embeddings included) and its metadata, which names the embedding model. A deploy mounts exactly
that folder, so what serves is what was tested.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.artifacts.model import Manifest
from services.artifacts.storage import copy_file
from services.artifacts.workspace import Artifacts, artifacts_root
from services.finetune.adapters import list_adapters, read_json_object

if TYPE_CHECKING:
    from chromadb.api import ClientAPI

SNAPSHOT_BATCH = 1000


def new_version() -> str:
    """A version id from the clock (UTC, to the millisecond): unique per machine, sorted by time."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")[:-3]


def register_adapter(artifacts: Artifacts, job_dir: Path) -> Manifest:
    """The adapter of a finished job as artifact `<job name>@<job id>`, its job manifest as lineage."""
    adapter = job_dir / "adapter"
    job = read_json_object(adapter / "manifest.json")
    lineage = {
        "source": str(adapter),
        "job_id": job_dir.name,
        "base_model": job.get("base_model"),
        "dataset": job.get("dataset"),
        "job": job.get("job"),
        "git_revision": job.get("git_revision"),
        "metrics": job.get("metrics") or {},
    }
    name = str(job.get("name") or job_dir.name)
    return artifacts.local.register("adapter", name, job_dir.name, adapter, lineage=lineage, actor=artifacts.actor)


def register_merged(artifacts: Artifacts, job_dir: Path, merged: Path) -> Manifest:
    """A merged model (base + adapter folded) as artifact `<job name>-merged@<job id>`."""
    job = read_json_object(merged / "manifest.json")
    lineage = {
        "source": str(merged),
        "job_id": job_dir.name,
        "base_model": job.get("base_model"),
        "adapter": {"name": job.get("name"), "version": job_dir.name},
        "git_revision": job.get("git_revision"),
    }
    name = f"{job.get('name') or job_dir.name}-merged"
    return artifacts.local.register("merged-model", name, job_dir.name, merged, lineage=lineage, actor=artifacts.actor)


def merge_job(
    artifacts: Artifacts, job_dir: Path, *, output: Path | None = None, cache_dir: Path | None = None
) -> tuple[Path, Manifest]:
    """Fold the job's adapter into its base model, register the result; returns its folder and version."""
    from services.finetune.merge import merge_adapter

    folder = merge_adapter(job_dir, output=output, cache_dir=cache_dir)
    return folder, register_merged(artifacts, job_dir, folder)


def register_finished_jobs(artifacts: Artifacts) -> list[Manifest]:
    """Register adapters of finished jobs that are not artifacts yet (jobs from before, failed registrations)."""
    known = {v.manifest.version for v in artifacts.local.versions(kind="adapter")}
    job_dirs = [a.path.parent for a in list_adapters(artifacts.data_dir) if a.version not in known]
    return [register_adapter(artifacts, job_dir) for job_dir in job_dirs]


def register_path(artifacts: Artifacts, kind: str, path: Path, *, name: str, version: str | None = None) -> Manifest:
    """A user's file or folder (a dataset, a merged model) as a new version of `name`, copied in."""
    lineage: dict[str, Any] = {"source": str(path.resolve())}
    version = version or new_version()
    if path.is_dir():
        return artifacts.local.register(kind, name, version, path, lineage=lineage, actor=artifacts.actor, link=False)
    with tempfile.TemporaryDirectory(dir=_staging(artifacts)) as tmp:
        copy_file(path, Path(tmp) / path.name)
        return artifacts.local.register(kind, name, version, Path(tmp), lineage=lineage, actor=artifacts.actor)


def register_collection(artifacts: Artifacts, client: ClientAPI, name: str) -> Manifest:
    """Snapshot collection `name` as a new version, unless the newest version already has the same contents."""
    from services.rag.collections import open_collection, recorded_model

    collection = open_collection(client, name)
    lineage = _collection_lineage(collection, recorded_model(collection))
    existing = artifacts.local.versions(name=name, kind="collection")
    if existing and existing[0].manifest.lineage.get("fingerprint") == lineage["fingerprint"]:
        return existing[0].manifest
    with tempfile.TemporaryDirectory(dir=_staging(artifacts)) as tmp:
        snapshot_collection(collection, Path(tmp))
        return artifacts.local.register(
            "collection", name, new_version(), Path(tmp), lineage=lineage, actor=artifacts.actor
        )


def snapshot_collection(collection: Any, dest: Path) -> int:
    """Copy every record of `collection` (with its embeddings) into a new Chroma store at `dest`."""
    from services.rag.chroma import persistent_client

    client = persistent_client(dest)
    try:
        target = client.create_collection(collection.name, metadata=collection.metadata, embedding_function=None)
        offset = 0
        while batch := _records(collection, offset):
            target.add(**batch)
            offset += len(batch["ids"])
        return offset
    finally:
        client.close()  # type: ignore[attr-defined]  # flushes the store to its files


def _records(collection: Any, offset: int) -> dict[str, Any] | None:
    got = collection.get(include=["embeddings", "documents", "metadatas"], limit=SNAPSHOT_BATCH, offset=offset)
    if not got["ids"]:
        return None
    return {k: got[k] for k in ("ids", "embeddings", "documents", "metadatas")}


def _collection_lineage(collection: Any, model_id: str | None) -> dict[str, Any]:
    """Embedding model, chunking, and each source file's hash; the fingerprint changes with any of them."""
    metadata = dict(collection.metadata or {})
    firsts = collection.get(where={"chunk_index": 0}, include=["metadatas"])["metadatas"] or []
    sources = {str(m.get("source")): str(m.get("file_hash")) for m in firsts}
    basis = json.dumps([model_id, metadata, sorted(sources.items()), collection.count()], sort_keys=True, default=str)
    return {
        "embedding_model": model_id,
        "chunk_size": metadata.get("chunk_size"),
        "chunk_overlap": metadata.get("chunk_overlap"),
        "count": collection.count(),
        "sources": sources,
        "fingerprint": hashlib.sha256(basis.encode()).hexdigest()[:16],
    }


def _staging(artifacts: Artifacts) -> Path:
    """Scratch space on the workspace's filesystem, so registering hard-links instead of copying."""
    path = artifacts_root(artifacts.data_dir) / ".staging"
    path.mkdir(parents=True, exist_ok=True)
    return path
