"""Downloads into the HF cache: resumable, cancellable, each file checked against the model listing."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from services.errors import HubResponseError
from services.hub.connection import MALFORMED_HINT, HubConnection, head, headers_for, hub_errors
from services.hub.details import ModelDetails, RepoFile, model_details, require_access
from services.hub.disk import DiskProbe, ensure_disk
from services.progress import CancelToken, OnTransfer, TransferMeter

if TYPE_CHECKING:
    from services import transfer


@dataclass(frozen=True)
class DownloadResult:
    """Where a download landed and what it moved."""

    repo_id: str
    revision: str
    path: Path
    files: tuple[str, ...]
    fetched_bytes: int
    seconds: float


def download_model(
    conn: HubConnection,
    repo_id: str,
    *,
    revision: str | None = None,
    include: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
    on_progress: OnTransfer | None = None,
    cancel: CancelToken | None = None,
    max_workers: int = 8,
    disk: DiskProbe | None = None,
) -> DownloadResult:
    """Download a model into the HF cache; resumable, cancellable, refused when disk is short.

    Complete files are skipped and partial files continue where they stopped, so running it
    again after an interruption (cancel, crash, dropped network) finishes the download.
    """
    from services import transfer

    details = model_details(conn, repo_id, revision=revision, include=include, exclude=exclude)
    require_access(conn, details)
    cache = conn.cache_path
    files = _remote_files(conn, details)
    present = transfer.bytes_present(cache, repo_id, files)
    ensure_disk(cache, sum(f.size for f in files) - present, what=repo_id, probe=disk)
    with hub_errors(conn, f"download of '{repo_id}'", repo_id=repo_id):
        meter = TransferMeter(sum(f.size for f in files), on_progress)
        meter.skip(present)
        started = time.monotonic()
        path = transfer.fetch_files(
            cache,
            repo_id,
            details.sha,
            files,
            headers_for=lambda url: headers_for(conn, url),
            on_bytes=meter.add,
            should_stop=lambda: cancel is not None and cancel.cancelled,
            max_workers=max_workers,
        )
        transfer.write_ref(cache, repo_id, revision or "main", details.sha)
    meter.finish()
    return DownloadResult(
        repo_id=repo_id,
        revision=details.sha,
        path=path,
        files=tuple(f.path for f in files),
        fetched_bytes=meter.done_bytes - present,
        seconds=time.monotonic() - started,
    )


def missing_bytes(conn: HubConnection, details: ModelDetails) -> int:
    """Bytes a download of `details` still has to fetch: complete and partial files count as present."""
    from services import transfer

    files = _remote_files(conn, details)
    return sum(f.size for f in files) - transfer.bytes_present(conn.cache_path, details.id, files)


def _remote_files(conn: HubConnection, details: ModelDetails) -> list[transfer.RemoteFile]:
    with hub_errors(conn, f"download of '{details.id}'", repo_id=details.id):
        return [_remote_file(conn, details.id, details.sha, f) for f in details.files if f.selected]


def _remote_file(conn: HubConnection, repo_id: str, sha: str, f: RepoFile) -> transfer.RemoteFile:
    """Where to GET one file, its ETag and size (a HEAD request), checked against the listing."""
    from huggingface_hub import hf_hub_url

    from services.transfer import RemoteFile, check_commit, check_etag, check_size

    what = f"{repo_id}/{f.path}"
    response, location = head(conn, hf_hub_url(repo_id, f.path, revision=sha, endpoint=conn.url))
    headers = response.headers
    commit = check_commit(headers.get("X-Repo-Commit"), what=what)
    etag = check_etag(_normalize_etag(headers.get("X-Linked-Etag") or headers.get("ETag")), what=what)
    length = headers.get("X-Linked-Size") or (None if response.is_redirect else headers.get("Content-Length"))
    size = check_size(length, what=what)
    mismatch = _mismatch(commit != sha, f.sha256 not in (None, etag), bool(f.size) and size != f.size)
    if mismatch:
        raise HubResponseError(f"{what}: the file's {mismatch} differs from the model listing", hint=MALFORMED_HINT)
    return RemoteFile(f.path, location, etag, size)


def _normalize_etag(etag: str | None) -> str | None:
    """An ETag header without quotes or weak marker, as huggingface_hub reads it."""
    return etag.lstrip("W/").strip('"') if etag else None


def _mismatch(commit: bool, sha256: bool, size: bool) -> str:
    """Which of the HEAD answer's commit, sha256 and size disagree with the listing ("" when none)."""
    return ", ".join(name for name, bad in (("commit", commit), ("sha256", sha256), ("size", size)) if bad)
