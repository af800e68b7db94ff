"""Push and pull: copy one version between the workspace and a remote storage.

Both directions move files in parallel, skip files whose hash already matches (so an interrupted
copy simply resumes), and write the manifest last, so a reader sees a version whole or not at all.
A push first takes the version's push lock (an atomic create): a second pusher with other contents
is refused while the first is at work or after it published; one with the same contents joins in.
Every pushed file is hashed as it is read for sending and becomes visible in the remote only when
its bytes match the manifest (a workspace file may share its inode with what a job wrote, so a changed
one is refused by name); every pulled file is hashed as it is written and takes its place only when it
matches. Small files travel in packs (see `packs`).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path

from services.artifacts.model import MANIFEST, FileEntry, Manifest, sha256_file, version_prefix
from services.artifacts.packs import INDEX, Pack, index_json, plan, read_index
from services.artifacts.storage import LocalFolderStorage, OnBytes, SourceChangedError, Storage
from services.errors import CancelledError, IntegrityError, NextStep, VersionConflictError
from services.files import fsync_file
from services.progress import CancelToken, OnTransfer, TransferMeter
from services.store import utcnow

LOCK = ".push-lock"
WORKERS = 16
FLUSHERS = 32
"""Pulled files flushed to disk at the same time, off the download workers (the disk batches them)."""

Unit = FileEntry | Pack
"""What one worker copies at a time: a file, or a pack of small ones."""


@dataclass(frozen=True)
class CopyReport:
    """What a push or pull moved."""

    ref: str
    files_copied: int
    files_skipped: int
    bytes_copied: int
    bytes_skipped: int
    seconds: float
    already_there: bool
    """The destination had the whole version already (published with the same files)."""


def push(
    manifest: Manifest,
    *,
    workspace: LocalFolderStorage,
    remote: Storage,
    owner: str,
    workers: int = WORKERS,
    on_progress: OnTransfer | None = None,
    cancel: CancelToken | None = None,
) -> CopyReport:
    """Publish a workspace version to `remote`; VersionConflictError when it holds other contents."""
    started = time.monotonic()
    prefix = _prefix(manifest)
    if _published(remote, manifest):
        return _nothing_to_do(manifest, started)
    _take_lock(remote, manifest, owner)
    present = remote.hashes(prefix)
    packs, alone = plan(manifest, prefix)
    todo: list[Unit] = [f for f in alone if present.get(f"{prefix}/{f.path}") != f.sha256]
    todo += [pack for pack in packs if pack.key not in present]

    def send(unit: Unit, on_bytes: OnBytes) -> None:
        if isinstance(unit, Pack):
            _send_pack(unit, manifest, workspace, remote, on_bytes)
            return
        entry, key = unit, f"{prefix}/{unit.path}"
        source = workspace.path(key)
        try:
            remote.upload(key, source, sha256=entry.sha256, on_bytes=on_bytes)
        except SourceChangedError:
            raise _changed(entry, manifest) from None
        except FileNotFoundError:
            if source.exists():
                raise
            raise _changed(entry, manifest) from None

    moved = _copy_all(manifest, todo, send, workers, on_progress, cancel)
    if packs:
        remote.write(f"{prefix}/{INDEX}", index_json(packs))
    if not remote.create(f"{prefix}/{MANIFEST}", manifest.to_json()) and not _published(remote, manifest):
        raise _conflict(manifest, remote)
    remote.delete(f"{prefix}/{LOCK}")
    return _report(manifest, todo, moved, started)


def pull(
    manifest: Manifest,
    *,
    remote: Storage,
    workspace: LocalFolderStorage,
    workers: int = WORKERS,
    on_progress: OnTransfer | None = None,
    cancel: CancelToken | None = None,
) -> CopyReport:
    """Fetch a published version into the workspace, every file verified; IntegrityError names a corrupt one."""
    started = time.monotonic()
    prefix = _prefix(manifest)
    if _published(workspace, manifest):
        return _nothing_to_do(manifest, started)
    needed = {f.path for f in manifest.files if not _intact(workspace.path(f"{prefix}/{f.path}"), f)}
    index = remote.read(f"{prefix}/{INDEX}")
    packs = read_index(index, manifest, prefix, origin=f"{remote.description}: {manifest.ref}")
    todo: list[Unit] = [replace(p, wanted=frozenset(needed)) for p in packs if needed & {m.path for m in p.members}]
    packed = {m.path for pack in packs for m in pack.members}
    todo += [f for f in manifest.files if f.path in needed and f.path not in packed]
    with ThreadPoolExecutor(max_workers=FLUSHERS, thread_name_prefix="flush") as flushers:
        settling: list[Future[None]] = []

        def fetch(unit: Unit, on_bytes: OnBytes) -> None:
            if isinstance(unit, Pack):
                for entry, data in _unpack(unit, remote, workspace.path(prefix), on_bytes):
                    _verify(hashlib.sha256(data).hexdigest(), entry, manifest, remote)
                    target = workspace.path(f"{prefix}/{entry.path}")
                    settling.append(flushers.submit(_settle, _written(_partial(target), data), target))
                    on_bytes(entry.size)
                return
            target = workspace.path(f"{prefix}/{unit.path}")
            partial = _partial(target)
            try:
                _verify(remote.download(f"{prefix}/{unit.path}", partial, on_bytes=on_bytes), unit, manifest, remote)
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
            settling.append(flushers.submit(_settle, partial, target))  # the worker moves on to the next file

        moved = _copy_all(manifest, todo, fetch, workers, on_progress, cancel)
        for future in settling:
            future.result()  # every file on disk before the manifest, written last, says the version is whole
    if not workspace.create(f"{prefix}/{MANIFEST}", manifest.to_json()) and not _published(workspace, manifest):
        raise _conflict(manifest, workspace)
    return _report(manifest, todo, moved, started)


def _partial(target: Path) -> Path:
    """A scratch name beside `target` (its folder made) that no reader takes for a file of the version."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return target.with_name(f".partial-{target.name}-{os.getpid()}-{threading.get_ident()}")


def _written(partial: Path, data: bytes) -> Path:
    """`partial` holding `data` (removed again when the write fails)."""
    try:
        partial.write_bytes(data)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return partial


def _send_pack(
    pack: Pack, manifest: Manifest, workspace: LocalFolderStorage, remote: Storage, on_bytes: OnBytes
) -> None:
    """Upload the pack: its members end to end in a scratch file, each checked against the manifest first."""
    prefix = _prefix(manifest)
    with tempfile.TemporaryDirectory(prefix="workbench-pack-") as scratch:
        path, digest = Path(scratch) / "pack", hashlib.sha256()
        with path.open("wb") as out:
            for member in pack.members:
                try:
                    data = workspace.path(f"{prefix}/{member.path}").read_bytes()
                except FileNotFoundError:
                    raise _changed(member, manifest) from None
                if hashlib.sha256(data).hexdigest() != member.sha256:
                    raise _changed(member, manifest)
                digest.update(data)
                out.write(data)
        remote.upload(pack.key, path, sha256=digest.hexdigest(), on_bytes=on_bytes)


def _unpack(pack: Pack, remote: Storage, folder: Path, on_bytes: OnBytes) -> Iterator[tuple[FileEntry, bytes]]:
    """The bytes the pack holds for each member a pull wants (checked by the caller): the pack is
    downloaded once into a scratch file in `folder`, removed after."""
    scratch = _partial(folder / "pack")
    try:
        remote.download(pack.key, scratch, on_bytes=lambda _: on_bytes(0))  # progress counts the files taken
        wanted = set(pack.entries)
        with scratch.open("rb") as blob:
            for member, offset in pack.offsets():
                if member in wanted:
                    blob.seek(offset)
                    yield member, blob.read(member.size)
    finally:
        scratch.unlink(missing_ok=True)


def _settle(partial: Path, target: Path) -> None:
    """Flush a verified file to disk, then move it into place."""
    try:
        fsync_file(partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def _prefix(manifest: Manifest) -> str:
    return version_prefix(manifest.kind, manifest.name, manifest.version)


def _published(storage: Storage, manifest: Manifest) -> bool:
    """True when `storage` has this version with the same files; VersionConflictError when with others."""
    raw = storage.read(f"{_prefix(manifest)}/{MANIFEST}")
    if raw is None:
        return False
    there = Manifest.from_json(raw, origin=f"{storage.description}: {manifest.ref}")
    if there.digest() != manifest.digest():
        raise _conflict(manifest, storage, there)
    return True


def _conflict(manifest: Manifest, storage: Storage, there: Manifest | None = None) -> VersionConflictError:
    if there is None:
        raw = storage.read(f"{_prefix(manifest)}/{MANIFEST}")
        there = Manifest.from_json(raw, origin=storage.description) if raw else None
    who = f" by {there.created_by} at {there.created_at}" if there else ""
    return VersionConflictError(
        f"{manifest.ref} is already published in {storage.description}{who} with other contents",
        hint="versions are immutable: register yours under a new version",
    )


def _take_lock(remote: Storage, manifest: Manifest, owner: str) -> None:
    """Claim the version for this push, or join a push of the same contents (a resumed one)."""
    key = f"{_prefix(manifest)}/{LOCK}"
    mine = {"owner": owner, "digest": manifest.digest(), "started": utcnow()}
    if remote.create(key, json.dumps(mine).encode()):
        return
    raw = remote.read(key)
    theirs = json.loads(raw) if raw else {}
    if theirs.get("digest") in (None, mine["digest"]):
        return
    raise VersionConflictError(
        f"{manifest.ref} is being pushed to {remote.description} by {theirs.get('owner')} "
        f"(since {theirs.get('started')}) with other contents",
        hint="register yours under a new version; if that push was abandoned, deleting the remote version clears it",
        step=NextStep.of("artifacts.rm_remote", ref=manifest.ref),
    )


def _intact(path: Path, entry: FileEntry) -> bool:
    return path.is_file() and path.stat().st_size == entry.size and sha256_file(path) == entry.sha256


def _changed(entry: FileEntry, manifest: Manifest) -> IntegrityError:
    return IntegrityError(
        f"{manifest.ref}: file {entry.path} in the workspace changed after the version was registered; not pushed",
        hint="register the current files as a new version (versions are immutable), "
        "or pull this version back from a storage that has it intact",
    )


def _verify(sha256: str, entry: FileEntry, manifest: Manifest, remote: Storage) -> None:
    """Refuse a downloaded file whose bytes (hashed as they were written) are not the manifest's."""
    if sha256 != entry.sha256:
        raise IntegrityError(
            f"{manifest.ref}: file {entry.path} from {remote.description} does not match its manifest "
            f"(expected sha256 {entry.sha256[:12]}…, {entry.size} bytes)",
            hint="the stored copy is damaged: push the version again from a workspace that has it intact",
        )


def _copy_all(
    manifest: Manifest,
    todo: Sequence[Unit],
    copy: Callable[[Unit, OnBytes], None],
    workers: int,
    on_progress: OnTransfer | None,
    cancel: CancelToken | None,
) -> int:
    """Run `copy` over `todo` in parallel (largest first) with one progress meter; return bytes moved."""
    already = manifest.size - sum(f.size for f in todo)
    meter = TransferMeter(manifest.size, on_progress)
    meter.skip(already)
    stop = threading.Event()

    def on_bytes(n: int) -> None:
        meter.add(n)
        if stop.is_set() or (cancel is not None and cancel.cancelled):
            raise CancelledError(f"copy of {manifest.ref} cancelled", hint="run it again to resume")

    def task(unit: Unit) -> None:
        on_bytes(0)
        copy(unit, on_bytes)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(task, f) for f in sorted(todo, key=lambda f: -f.size)]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        stop.set()
        errors = [f.exception() for f in done if f.exception() is not None]
        for future in futures:
            future.cancel()
    if errors:
        raise errors[0]  # type: ignore[misc]
    meter.finish()
    return meter.done_bytes - already


def _nothing_to_do(manifest: Manifest, started: float) -> CopyReport:
    return CopyReport(manifest.ref, 0, len(manifest.files), 0, manifest.size, time.monotonic() - started, True)


def _report(manifest: Manifest, todo: Sequence[Unit], moved: int, started: float) -> CopyReport:
    copied = {f.path for unit in todo for f in (unit.entries if isinstance(unit, Pack) else (unit,))}
    skipped = [f for f in manifest.files if f.path not in copied]
    return CopyReport(
        manifest.ref,
        files_copied=len(copied),
        files_skipped=len(skipped),
        bytes_copied=moved,
        bytes_skipped=sum(f.size for f in skipped),
        seconds=time.monotonic() - started,
        already_there=False,
    )
