"""Resumable, checked file transfers into the Hugging Face cache layout.

Why not `hf_hub_download`: huggingface_hub 2.4 downloads each file into a process-unique
temporary file and deletes it when the download stops (cancel, crash, network gone), so every new
attempt at a multi-gigabyte file starts from zero (`bench/download.py` measures a resumed run
against `hf download`). We keep the partial file instead: `blobs/<etag>.incomplete` grows until it
is complete, then moves into place exactly where `hf_hub_download` would have put it
(`blobs/<etag>`, `snapshots/<commit>/<file>` as a relative symlink, `refs/<branch>`), so `hf`,
`from_pretrained` and `scan_cache_dir` see an ordinary cache entry. A file lock per blob keeps two
processes from writing the same partial file.

Every part of a hub's answer that becomes a path is checked first, as huggingface_hub checks it and
more: file names are relative POSIX paths without `..`, absolute, drive or UNC forms
(`_validate_relative_filename`), commit ids are 40 hex digits, ETags are a git blob sha1 or an LFS
sha256, and every path built from them must stay inside the repo's cache folder. Bytes are checked
too: never more than the announced size, a partial file larger than the file is discarded, a 206
answer must continue exactly where the partial file ends, and LFS files must hash to the sha256
the hub publishes for them.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING, BinaryIO

from services.errors import CancelledError, HubResponseError, IntegrityError

if TYPE_CHECKING:
    import httpx2

CHUNK_BYTES = 1 << 20
RETRIES = 3
COMMIT_RE = re.compile(r"[0-9a-f]{40}")
ETAG_RE = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
CONTENT_RANGE_RE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")
HeadersFor = Callable[[str], dict[str, str]]


@dataclass(frozen=True)
class RemoteFile:
    """One file to fetch: its name in the repo, where to GET it, its blob name (the ETag) and its size."""

    path: str
    url: str
    etag: str
    size: int

    @property
    def is_lfs(self) -> bool:
        """LFS blobs are named by the sha256 of their content, which a download verifies."""
        return len(self.etag) == 64


def check_commit(commit: object, *, what: str) -> str:
    """`commit` if it is a full commit id (40 lowercase hex digits); `HubResponseError` otherwise."""
    if not isinstance(commit, str) or not COMMIT_RE.fullmatch(commit):
        raise HubResponseError(f"{what}: the hub sent {_shown(commit)} as commit id, not 40 hex digits")
    return commit


def check_etag(etag: object, *, what: str) -> str:
    """`etag` if it is a git blob sha1 or an LFS sha256 (lowercase hex); `HubResponseError` otherwise."""
    if not isinstance(etag, str) or not ETAG_RE.fullmatch(etag):
        raise HubResponseError(f"{what}: the hub sent {_shown(etag)} as ETag, not a sha1 or sha256")
    return etag


def check_name(name: object, *, what: str) -> str:
    """`name` if it is a safe relative file name, checked as huggingface_hub checks repo file names."""
    if not isinstance(name, str) or not name or "\0" in name:
        raise HubResponseError(f"{what}: the hub listed an empty or invalid file name {_shown(name)}")
    anchored = [PurePosixPath(name), *(PureWindowsPath(part) for part in name.split("/"))]
    if ".." in name.replace("\\", "/").split("/") or any(p.drive or p.root for p in anchored):
        raise HubResponseError(
            f"{what}: the hub listed the file {_shown(name)}, which would be written outside the cache",
            hint="the hub or mirror is broken or hostile; nothing was downloaded",
        )
    return name


def check_size(size: object, *, what: str) -> int:
    """`size` as a non-negative integer (a header's text or a JSON number); `HubResponseError` otherwise."""
    text = str(size).strip() if isinstance(size, (str, int)) and not isinstance(size, bool) else ""
    if not text.isdigit():
        raise HubResponseError(f"{what}: the hub sent {_shown(size)} as size, not a number of bytes")
    return int(text)


def _shown(value: object) -> str:
    return repr(value if not isinstance(value, str) else value[:80])


def repo_cache_dir(cache: Path, repo_id: str) -> Path:
    return cache / f"models--{repo_id.replace('/', '--')}"


def bytes_present(cache: Path, repo_id: str, files: list[RemoteFile]) -> int:
    """Bytes of `files` already in the cache, complete or partial (an oversized partial counts as none)."""
    repo_dir = repo_cache_dir(cache, repo_id)
    total = 0
    for f in files:
        blob, partial = _blob_paths(repo_dir, f)
        total += f.size if blob.exists() else _kept_bytes(partial, f, discard=False)
    return total


def fetch_files(
    cache: Path,
    repo_id: str,
    commit: str,
    files: list[RemoteFile],
    *,
    headers_for: HeadersFor,
    on_bytes: Callable[[int], None],
    should_stop: Callable[[], bool],
    max_workers: int = 8,
) -> Path:
    """Fetch `files` in parallel into the snapshot of `commit`; return the snapshot folder.

    `headers_for(url)` gives the request headers for a URL (the caller decides which hosts get the
    token). `on_bytes` is called for every chunk received; `should_stop` is polled between chunks and
    stops all workers (leaving resumable partial files) when it returns True. The first error
    stops the other workers too and is re-raised. Nothing is fetched unless every name, the commit
    and every ETag pass the checks above.
    """
    repo_dir = repo_cache_dir(cache, repo_id)
    _check_paths(repo_dir, commit, files)
    failed = threading.Event()

    def fetch(f: RemoteFile) -> None:
        try:
            _fetch_one(repo_dir, commit, f, headers_for, on_bytes, lambda: failed.is_set() or should_stop())
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
    refs = repo_cache_dir(cache, repo_id) / "refs"
    path = _inside(refs, refs / ref, what=f"{repo_id}: ref {ref!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(check_commit(commit, what=repo_id))
    tmp.replace(path)


def _check_paths(repo_dir: Path, commit: str, files: list[RemoteFile]) -> None:
    """Raise `HubResponseError` unless every path the download would write lies inside `repo_dir`."""
    check_commit(commit, what=repo_dir.name)
    for f in files:
        _snapshot_link(repo_dir, commit, f)
        _blob_paths(repo_dir, f)


def _inside(root: Path, path: Path, *, what: str) -> Path:
    """`path` if it lies inside `root` (by its absolute path, symlinks not followed), as huggingface_hub checks."""
    if Path(os.path.abspath(root)) not in Path(os.path.abspath(path)).parents:
        raise HubResponseError(f"{what}: refusing to write {path} outside {root}")
    return path


def _blob_paths(repo_dir: Path, f: RemoteFile) -> tuple[Path, Path]:
    blobs = repo_dir / "blobs"
    etag = check_etag(f.etag, what=f.path)
    return _inside(blobs, blobs / etag, what=f.path), _inside(blobs, blobs / f"{etag}.incomplete", what=f.path)


def _snapshot_link(repo_dir: Path, commit: str, f: RemoteFile) -> Path:
    snapshot = repo_dir / "snapshots" / check_commit(commit, what=f.path)
    return _inside(snapshot, snapshot.joinpath(*check_name(f.path, what=f.path).split("/")), what=f.path)


def _fetch_one(
    repo_dir: Path,
    commit: str,
    f: RemoteFile,
    headers_for: HeadersFor,
    on_bytes: Callable[[int], None],
    should_stop: Callable[[], bool],
) -> None:
    from filelock import FileLock

    blob, partial = _blob_paths(repo_dir, f)
    link = _snapshot_link(repo_dir, commit, f)
    blob.parent.mkdir(parents=True, exist_ok=True)
    lock = repo_dir.parent / ".locks" / repo_dir.name / f"{f.etag}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(lock):
        if not blob.exists():
            _stream_with_retries(partial, f, headers_for, on_bytes, should_stop)
            partial.replace(blob)
    _link(link, blob)


def _stream_with_retries(
    partial: Path,
    f: RemoteFile,
    headers_for: HeadersFor,
    on_bytes: Callable[[int], None],
    should_stop: Callable[[], bool],
) -> None:
    """Stream into `partial`, resuming with a Range request after a dropped connection."""
    import httpx2

    for attempt in range(RETRIES + 1):
        try:
            return _stream_to(partial, f, headers_for(f.url), on_bytes, should_stop)
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

    have = _kept_bytes(partial, f, discard=True)
    if have and have == f.size:
        return _verify(partial, _prefix_digest(partial, have, f), f)
    request_headers = {**headers, "Range": f"bytes={have}-"} if have else headers
    with get_session().stream("GET", f.url, headers=request_headers) as response:
        hf_raise_for_status(response)
        start = _resume_offset(response, have, f)
        digest = _prefix_digest(partial, start, f)
        with partial.open("r+b" if start else "wb") as out:
            out.seek(start)
            out.truncate()
            _copy(_chunks(response, f, should_stop), out, digest, start, f, on_bytes)
    _verify(partial, digest, f)


def _kept_bytes(partial: Path, f: RemoteFile, *, discard: bool) -> int:
    """Bytes of a usable partial file; one larger than the file is corrupt and counts (or is deleted) as none."""
    have = partial.stat().st_size if partial.exists() else 0
    if have <= f.size:
        return have
    if discard:
        partial.unlink()
    return 0


def _resume_offset(response: httpx2.Response, have: int, f: RemoteFile) -> int:
    """Where the body starts in the file: 0 for a 200 (the server ignored Range), `have` for a matching 206."""
    if response.status_code != 206:
        return 0
    match = CONTENT_RANGE_RE.fullmatch(response.headers.get("Content-Range", "").strip())
    if not match or (int(match[1]), int(match[3])) != (have, f.size):
        raise HubResponseError(
            f"{f.path}: asked for bytes {have}- of {f.size} but the hub answered "
            f"{_shown(response.headers.get('Content-Range'))}",
            hint="run the download again",
        )
    return have


def _prefix_digest(partial: Path, length: int, f: RemoteFile) -> hashlib._Hash | None:
    """A sha256 fed with the first `length` bytes of `partial` (LFS files only)."""
    if not f.is_lfs:
        return None
    digest = hashlib.sha256()
    if length == 0:
        return digest
    with partial.open("rb") as kept:
        while length > 0 and (block := kept.read(min(CHUNK_BYTES, length))):
            digest.update(block)
            length -= len(block)
    return digest


def _chunks(response: httpx2.Response, f: RemoteFile, should_stop: Callable[[], bool]) -> Iterator[bytes]:
    for chunk in response.iter_bytes(CHUNK_BYTES):
        if should_stop():
            raise CancelledError(f"download of {f.path} stopped", hint="run it again to resume")
        yield chunk


def _copy(
    chunks: Iterator[bytes],
    out: BinaryIO,
    digest: hashlib._Hash | None,
    written: int,
    f: RemoteFile,
    on_bytes: Callable[[int], None],
) -> None:
    """Write `chunks` after `written` bytes, refusing more bytes than the file's announced size."""
    for chunk in chunks:
        written += len(chunk)
        if written > f.size:
            out.truncate(0)
            raise HubResponseError(f"{f.path}: the hub sent more than the {f.size} bytes it announced")
        out.write(chunk)
        if digest is not None:
            digest.update(chunk)
        on_bytes(len(chunk))


def _verify(partial: Path, digest: hashlib._Hash | None, f: RemoteFile) -> None:
    """Refuse a partial file of the wrong size, or an LFS file whose sha256 is not the one published."""
    size = partial.stat().st_size
    if size != f.size:
        raise HubResponseError(f"{f.path}: received {size} of {f.size} bytes", hint="run the download again to resume")
    if digest is not None and digest.hexdigest() != f.etag:
        partial.unlink()
        raise IntegrityError(
            f"{f.path}: the downloaded bytes have sha256 {digest.hexdigest()[:12]}…, "
            f"but the hub publishes {f.etag[:12]}…; the file was discarded",
            hint="run the download again; if it happens again, the hub or mirror serves altered files",
        )


def _link(link: Path, blob: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    target = os.path.relpath(blob, link.parent)
    if link.is_symlink() and os.readlink(link) == target:
        return
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    tmp.replace(link)
