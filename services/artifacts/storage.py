"""Where artifact versions are kept: one small interface, a local folder and (in `blob.py`) Azure Blob Storage.

Keys are `/`-separated paths: `<kind>/<name>/<version>/<file>` for files and manifests,
`<kind>/<name>/labels/<label>` for labels. `create` is the one atomic primitive everything else
relies on: it writes a key only if it does not exist yet, so a published manifest is never
overwritten and exactly one of two concurrent writers wins. In a folder every write goes to a temporary
file that is flushed to disk before it is renamed (or linked) into place, so a crash never leaves part
of a manifest or a label.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Protocol

from services.artifacts.model import sha256_file
from services.errors import IntegrityError, NotFoundError, UsageError
from services.files import fsync_folder

OnBytes = Callable[[int], None]
COPY_CHUNK = 1 << 20


class SourceChangedError(IntegrityError):
    """An upload's source did not hash to the sha256 it was sent under; nothing was stored."""


class Storage(Protocol):
    """A flat key space of blobs."""

    @property
    def description(self) -> str:
        """Where it is, for messages (never a secret)."""
        ...

    def read(self, key: str) -> bytes | None:
        """The blob's bytes, or None when it does not exist."""
        ...

    def create(self, key: str, data: bytes) -> bool:
        """Write `data` only if `key` does not exist; False when it already did."""
        ...

    def write(self, key: str, data: bytes) -> None:
        """Write or replace a small blob."""
        ...

    def delete(self, key: str) -> None:
        """Remove a blob (missing is fine)."""
        ...

    def keys(self, prefix: str) -> list[str]:
        """Every key under `prefix/`, sorted."""
        ...

    def hashes(self, prefix: str) -> dict[str, str]:
        """sha256 of every file under `prefix/` whose content hash the storage knows."""
        ...

    def upload(self, key: str, source: Path, *, sha256: str, on_bytes: OnBytes) -> None:
        """Store the file `source` under `key` (replacing it), reporting bytes as they go. The bytes are
        hashed as they are read: unless they hash to `sha256`, nothing becomes visible under `key` and
        SourceChangedError is raised."""
        ...

    def download(self, key: str, dest: Path, *, on_bytes: OnBytes) -> str:
        """Write the blob `key` into the file `dest`, reporting bytes as they come; the sha256 of the bytes written."""
        ...


class LocalFolderStorage:
    """Blobs as files under a root folder: the workspace's own store, or a shared mount as a remote."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def description(self) -> str:
        return f"folder {self.root}"

    def path(self, key: str) -> Path:
        parts = key.split("/")
        if any(part in ("", ".", "..") for part in parts):
            raise UsageError(f"invalid storage key {key!r}")
        return self.root.joinpath(*parts)

    def read(self, key: str) -> bytes | None:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            return None

    def create(self, key: str, data: bytes) -> bool:
        staged = self._stage(key, data)
        try:
            os.link(staged, self.path(key))  # atomic, and fails when the target exists
        except FileExistsError:
            return False
        finally:
            staged.unlink()
        fsync_folder(staged.parent)
        return True

    def write(self, key: str, data: bytes) -> None:
        staged = self._stage(key, data)
        os.replace(staged, self.path(key))
        fsync_folder(staged.parent)

    def delete(self, key: str) -> None:
        path = self.path(key)
        path.unlink(missing_ok=True)
        self._prune(path.parent)

    def keys(self, prefix: str) -> list[str]:
        folder = self.path(prefix)
        if not folder.is_dir():
            return []
        files = (p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".partial-"))
        return sorted(f"{prefix}/{p.relative_to(folder).as_posix()}" for p in files)

    def hashes(self, prefix: str) -> dict[str, str]:
        return {key: sha256_file(self.path(key)) for key in self.keys(prefix)}

    def upload(self, key: str, source: Path, *, sha256: str, on_bytes: OnBytes) -> None:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, prefix=".partial-", delete=False) as out:
            try:
                with source.open("rb") as src:
                    if _pump(src, out, on_bytes) != sha256:
                        raise SourceChangedError(f"{source} does not hash to {sha256[:12]}… any more; not stored")
                out.flush()
                os.fsync(out.fileno())
            except BaseException:
                os.unlink(out.name)
                raise
        os.replace(out.name, target)
        fsync_folder(target.parent)

    def download(self, key: str, dest: Path, *, on_bytes: OnBytes) -> str:
        try:
            with self.path(key).open("rb") as src, dest.open("wb") as out:
                return _pump(src, out, on_bytes)
        except FileNotFoundError:
            raise NotFoundError(f"{key} is missing from {self.description}") from None

    def _stage(self, key: str, data: bytes) -> Path:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, prefix=".partial-", delete=False) as out:
            try:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            except BaseException:
                os.unlink(out.name)
                raise
        return Path(out.name)

    def _prune(self, folder: Path) -> None:
        """Remove empty folders from `folder` up to the root."""
        while folder != self.root and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
            folder = folder.parent


def _pump(src: IO[bytes], out: IO[bytes], on_bytes: OnBytes) -> str:
    """Copy `src` to `out`; the sha256 of the bytes copied."""
    digest = hashlib.sha256()
    while chunk := src.read(COPY_CHUNK):
        digest.update(chunk)
        out.write(chunk)
        on_bytes(len(chunk))
    return digest.hexdigest()


def link_or_copy(source: Path, target: Path) -> None:
    """Hard-link `source` to `target` (same bytes, no space), copying across filesystems."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def copy_file(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)
