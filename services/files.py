"""Files that readers must see whole: written beside their target, flushed to disk, then renamed over it.

A crash, a full disk or a kill at any moment leaves the old file or the new one, never part of one.
Renaming also gives the new bytes a new inode, so a hard link to the old file (the artifact store
links what the workbench wrote) keeps the old bytes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import suppress
from pathlib import Path

NEW_FILE_MODE = 0o644


def write_atomic(path: Path, data: bytes | str) -> None:
    """Replace `path` with `data` (str as UTF-8): temp file in the same folder, fsync, rename, fsync the folder."""
    payload = data.encode() if isinstance(data, str) else data
    mode = path.stat().st_mode & 0o777 if path.exists() else NEW_FILE_MODE
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(payload)
            out.flush()
            os.fchmod(out.fileno(), mode)
            os.fsync(out.fileno())
        os.replace(name, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(name)
        raise
    fsync_folder(path.parent)


def fsync_file(path: Path) -> None:
    """Flush a file's bytes to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (a rename or a new file in it) to disk."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def staging_folder(target: Path) -> Path:
    """A new empty folder beside `target` (same filesystem, so its files can be renamed into `target`)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.staging-"))


def replace_files(staging: Path, target: Path) -> list[str]:
    """Move every file under `staging` into `target` (each flushed, then renamed over the old one) and
    remove `staging`; files of `target` that `staging` lacks stay. Returns the moved paths, relative."""
    moved = []
    for source in sorted(p for p in staging.rglob("*") if p.is_file()):
        rel = source.relative_to(staging)
        dest = target / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        fsync_file(source)
        os.replace(source, dest)
        moved.append(rel.as_posix())
    for folder in {target / Path(rel).parent for rel in moved} | {target}:
        fsync_folder(folder)
    shutil.rmtree(staging)
    return moved
