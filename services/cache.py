"""The local Hugging Face cache, read and pruned with huggingface_hub's own cache tools.

No store of our own: what the `hf` CLI downloaded shows up here, and what we delete is gone for
`from_pretrained` too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from services.errors import NextStep, NotFoundError

if TYPE_CHECKING:
    from huggingface_hub import CachedRepoInfo, HFCacheInfo


def cached_snapshot(cache_dir: Path, repo_id: str, *, ref: str = "main") -> Path | None:
    """The snapshot folder `refs/<ref>` of `repo_id` points at, if it holds a model; None otherwise."""
    repo_dir = cache_dir / f"models--{repo_id.replace('/', '--')}"
    pointer = repo_dir / "refs" / ref
    if not pointer.is_file():
        return None
    snapshot = repo_dir / "snapshots" / pointer.read_text().strip()
    return snapshot if (snapshot / "config.json").exists() or (snapshot / "modules.json").exists() else None


@dataclass(frozen=True)
class CachedRevision:
    """One revision of a cached repo."""

    commit: str
    refs: tuple[str, ...]
    size: int
    files: int
    last_modified: datetime


@dataclass(frozen=True)
class CachedModel:
    """A model repo in the cache with all its revisions."""

    repo_id: str
    path: Path
    size: int
    last_accessed: datetime
    last_modified: datetime
    revisions: tuple[CachedRevision, ...]


@dataclass(frozen=True)
class CacheListing:
    """Everything in the cache, plus problems the scan found (corrupted folders)."""

    path: Path
    models: tuple[CachedModel, ...]
    warnings: tuple[str, ...]

    @property
    def size(self) -> int:
        return sum(m.size for m in self.models)


def list_cached_models(cache_dir: Path) -> CacheListing:
    """All model repos in the cache, largest first; an empty listing when there is no cache yet."""
    info = _scan(cache_dir)
    if info is None:
        return CacheListing(cache_dir, (), ())
    repos = sorted((r for r in info.repos if r.repo_type == "model"), key=lambda r: -r.size_on_disk)
    warnings = tuple(str(w) for w in info.warnings)
    return CacheListing(cache_dir, tuple(_model(r) for r in repos), warnings)


def delete_cached_model(cache_dir: Path, repo_id: str, *, revision: str | None = None) -> int:
    """Delete one revision (commit, commit prefix or ref name) or the whole repo; return bytes freed."""
    info = _scan(cache_dir)
    repo = next((r for r in info.repos if r.repo_id == repo_id and r.repo_type == "model"), None) if info else None
    if info is None or repo is None:
        raise NotFoundError(f"model '{repo_id}' is not in the cache at {cache_dir}", step=NextStep("models.ls"))
    commits = [r.commit_hash for r in repo.revisions if revision is None or _matches(r.commit_hash, r.refs, revision)]
    if not commits:
        raise NotFoundError(f"revision '{revision}' of {repo_id} is not in the cache", step=NextStep("models.ls"))
    strategy = info.delete_revisions(*commits)
    strategy.execute()
    return strategy.expected_freed_size


def _matches(commit: str, refs: frozenset[str], revision: str) -> bool:
    return revision in refs or (len(revision) >= 7 and commit.startswith(revision))


def _scan(cache_dir: Path) -> HFCacheInfo | None:
    from huggingface_hub import CacheNotFound, scan_cache_dir

    try:
        return scan_cache_dir(cache_dir)
    except CacheNotFound:
        return None


def _model(repo: CachedRepoInfo) -> CachedModel:
    revisions = sorted(repo.revisions, key=lambda r: -r.last_modified)
    return CachedModel(
        repo_id=repo.repo_id,
        path=repo.repo_path,
        size=repo.size_on_disk,
        last_accessed=_time(repo.last_accessed),
        last_modified=_time(repo.last_modified),
        revisions=tuple(
            CachedRevision(r.commit_hash, tuple(sorted(r.refs)), r.size_on_disk, r.nb_files, _time(r.last_modified))
            for r in revisions
        ),
    )


def _time(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)
