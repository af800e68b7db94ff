"""Resumable file transfers into the Hugging Face cache layout.

huggingface_hub 2.x retries a dropped connection inside one call but deletes partial files when
a download stops (cancel, crash, network gone), so every new attempt starts from zero. For
multi-gigabyte weights we keep the partial file instead: `blobs/<etag>.incomplete` grows until it
is complete, then moves into place exactly where `hf_hub_download` would have put it
(`blobs/<etag>`, `snapshots/<commit>/<file>` as a relative symlink, `refs/<branch>`), so `hf`,
`from_pretrained` and `scan_cache_dir` see an ordinary cache entry. A file lock per blob keeps
two processes from writing the same partial file.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from services.errors import CancelledError

CHUNK_BYTES = 1 << 20
RETRIES = 3


@dataclass(frozen=True)
class RemoteFile:
    """One file to fetch: its resolve URL, its blob name (the etag) and its size."""

    path: str
    url: str
    etag: str
    size: int


def repo_cache_dir(cache: Path, repo_id: str) -> Path:
    return cache / f"models--{repo_id.replace('/', '--')}"


def bytes_present(cache: Path, repo_id: str, files: list[RemoteFile]) -> int:
    """Bytes of `files` already in the cache, complete or partial."""
    blobs = repo_cache_dir(cache, repo_id) / "blobs"
    total = 0
    for f in files:
        blob, partial = blobs / f.etag, blobs / f"{f.etag}.incomplete"
        total += f.size if blob.exists() else (partial.stat().st_size if partial.exists() else 0)
    return total


def fetch_files(
    cache: Path,
    repo_id: str,
    commit: str,
    files: list[RemoteFile],
    *,
    headers: dict[str, str],
    on_bytes: Callable[[int], None],
    should_stop: Callable[[], bool],
    max_workers: int = 8,
) -> Path:
    """Fetch `files` in parallel into the snapshot of `commit`; return the snapshot folder.

    `on_bytes` is called for every chunk received; `should_stop` is polled between chunks and
    stops all workers (leaving resumable partial files) when it returns True. The first error
    stops the other workers too and is re-raised.
    """
    repo_dir = repo_cache_dir(cache, repo_id)
    failed = threading.Event()

    def stop() -> bool:
        return failed.is_set() or should_stop()

    def fetch(f: RemoteFile) -> None:
        try:
            _fetch_one(repo_dir, commit, f, headers, on_bytes, stop)
        except BaseException:
            failed.set()
            raise

    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(files)))) as pool:
        futures = [pool.submit(fetch, f) for f in files]
        wait(futures, return_when=FIRST_EXCEPTION)
    errors = [exc for exc in (fut.exception() for fut in futures) if exc is not None]
    if errors:  # the root cause first: the others only stopped because of it
        raise next((e for e in errors if not isinstance(e, CancelledError)), errors[0])
    return repo_dir / "snapshots" / commit


def write_ref(cache: Path, repo_id: str, ref: str, commit: str) -> None:
    """Point `refs/<ref>` at `commit` (skipped when `ref` is the commit itself)."""
    if ref == commit:
        return
    path = repo_cache_dir(cache, repo_id) / "refs" / ref
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(commit)
    tmp.replace(path)


def _fetch_one(
    repo_dir: Path,
    commit: str,
    f: RemoteFile,
    headers: dict[str, str],
    on_bytes: Callable[[int], None],
    should_stop: Callable[[], bool],
) -> None:
    from filelock import FileLock

    blob = repo_dir / "blobs" / f.etag
    blob.parent.mkdir(parents=True, exist_ok=True)
    lock = repo_dir.parent / ".locks" / repo_dir.name / f"{f.etag}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(lock):
        if not blob.exists():
            partial = blob.with_name(f"{f.etag}.incomplete")
            _stream_with_retries(partial, f, headers, on_bytes, should_stop)
            partial.replace(blob)
    _link(repo_dir / "snapshots" / commit / f.path, blob)


def _stream_with_retries(
    partial: Path,
    f: RemoteFile,
    headers: dict[str, str],
    on_bytes: Callable[[int], None],
    should_stop: Callable[[], bool],
) -> None:
    """Stream into `partial`, resuming with a Range request after a dropped connection."""
    import httpx2

    for attempt in range(RETRIES + 1):
        try:
            return _stream_to(partial, f, headers, on_bytes, should_stop)
        except httpx2.TransportError:
            if attempt == RETRIES or should_stop():
                raise
            time.sleep(0.2 * 2**attempt)


def _stream_to(
    partial: Path,
    f: RemoteFile,
    headers: dict[str, str],
    on_bytes: Callable[[int], None],
    should_stop: Callable[[], bool],
) -> None:
    from huggingface_hub import get_session
    from huggingface_hub.utils import hf_raise_for_status

    have = partial.stat().st_size if partial.exists() else 0
    if have >= f.size and f.size:
        return
    request_headers = {**headers, "Range": f"bytes={have}-"} if have else headers
    with get_session().stream("GET", f.url, headers=request_headers) as response:
        hf_raise_for_status(response)
        mode = "ab" if have and response.status_code == 206 else "wb"  # 200: the server ignored Range
        with partial.open(mode) as out:
            for chunk in response.iter_bytes(CHUNK_BYTES):
                if should_stop():
                    raise CancelledError(f"download of {f.path} stopped", hint="run it again to resume")
                out.write(chunk)
                on_bytes(len(chunk))
    if partial.stat().st_size != f.size:
        raise OSError(f"{f.path}: received {partial.stat().st_size} of {f.size} bytes; run the download again")


def _link(link: Path, blob: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    target = os.path.relpath(blob, link.parent)
    if link.is_symlink() and os.readlink(link) == target:
        return
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    tmp.replace(link)
