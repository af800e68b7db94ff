"""What an artifact version is: its files, its manifest and its lineage; and how users name one."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from services.errors import IntegrityError, UsageError

Kind = Literal["adapter", "merged-model", "dataset", "collection"]
KINDS: tuple[str, ...] = get_args(Kind)
MANIFEST = "manifest.json"
"""Written last: a version without it is not published and invisible to readers."""

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
PACKS = ".packs"
"""The folder of a version's packs of small files in a remote storage (see `packs`)."""
RESERVED_FILES = (MANIFEST, ".push-lock", PACKS)
"""Names a version's files (and folders) may not have at its top level: the storage keeps its own there."""
HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class FileEntry:
    """One file of a version, relative to the version folder."""

    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    """A version's contents and lineage; the same JSON in the workspace and in remote storage."""

    kind: str
    name: str
    version: str
    files: tuple[FileEntry, ...]
    lineage: dict[str, Any] = field(default_factory=dict)
    """Where it came from: base model and revision, dataset hashes, job config, git revision, ..."""
    created_by: str = ""
    created_at: str = ""

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def digest(self) -> str:
        """sha256 over the file list: two versions with the same files have the same digest."""
        listing = "\n".join(f"{f.path}\0{f.sha256}\0{f.size}" for f in sorted(self.files, key=lambda f: f.path))
        return hashlib.sha256(listing.encode()).hexdigest()

    def to_json(self) -> bytes:
        data = asdict(self)
        data["files"] = [asdict(f) for f in self.files]
        return json.dumps(data, indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes | str, *, origin: str) -> Manifest:
        """Parse a manifest; UsageError naming `origin` when it is not one."""
        try:
            data = json.loads(raw)
            files = tuple(FileEntry(str(f["path"]), str(f["sha256"]), int(f["size"])) for f in data["files"])
            return cls(
                kind=str(data["kind"]),
                name=str(data["name"]),
                version=str(data["version"]),
                files=files,
                lineage=dict(data.get("lineage") or {}),
                created_by=str(data.get("created_by", "")),
                created_at=str(data.get("created_at", "")),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise UsageError(
                f"{origin}: not a valid artifact manifest ({exc})", hint="was it written by the workbench?"
            ) from None


@dataclass(frozen=True)
class Ref:
    """What a user typed: `NAME`, `NAME@VERSION` or `NAME:LABEL`."""

    name: str
    version: str | None = None
    label: str | None = None

    def __str__(self) -> str:
        return self.name + (f"@{self.version}" if self.version else "") + (f":{self.label}" if self.label else "")


def parse_ref(text: str) -> Ref:
    """`NAME[@VERSION|:LABEL]` as a Ref; UsageError on anything else."""
    name, version, label = text, None, None
    if "@" in text:
        name, version = text.split("@", 1)
    elif ":" in text:
        name, label = text.split(":", 1)
    if not all(NAME_PATTERN.match(part) for part in (name, version, label) if part is not None):
        raise UsageError(
            f"{text!r} is not an artifact reference",
            hint="write NAME, NAME@VERSION or NAME:LABEL (letters, digits, '.', '_', '-')",
        )
    return Ref(name, version, label)


def check_name(what: str, value: str) -> str:
    if not NAME_PATTERN.match(value):
        raise UsageError(f"{what} {value!r} is not allowed", hint="use letters, digits, '.', '_' and '-' (max 128)")
    return value


def version_prefix(kind: str, name: str, version: str) -> str:
    """The storage key of a version folder: `<kind>/<name>/<version>`."""
    return f"{kind}/{name}/{version}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def scan_files(folder: Path) -> tuple[FileEntry, ...]:
    """Every regular file under `folder` (symlinks followed, manifest excluded), hashed, sorted by path."""
    entries = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel != MANIFEST:
            entries.append(FileEntry(rel, sha256_file(path), path.stat().st_size))
    return tuple(entries)


def check_stored(manifest: Manifest, key: str, *, origin: str) -> Manifest:
    """`manifest` if it belongs at `key` (`<kind>/<name>/<version>/manifest.json`) and lists only plain
    relative files; IntegrityError otherwise (a storage's contents are not trusted)."""
    prefix = key.rsplit("/", 1)[0]
    hint = f"the workbench did not write this entry; have the storage's owner inspect and delete {prefix}/"
    names = (manifest.name, manifest.version)
    if version_prefix(manifest.kind, *names) != prefix or not all(NAME_PATTERN.match(n) for n in names):
        raise IntegrityError(
            f"{origin} claims to be {manifest.kind} {manifest.ref}, not what its location says; refused", hint=hint
        )
    bad = [f.path for f in manifest.files if not _plain_entry(f)]
    if bad or len({f.path for f in manifest.files}) != len(manifest.files):
        raise IntegrityError(f"{origin} lists unusable or repeated files ({', '.join(bad)[:200]}); refused", hint=hint)
    return manifest


def _plain_entry(entry: FileEntry) -> bool:
    parts = entry.path.split("/")
    return (
        all(part not in ("", ".", "..") and not part.startswith(".partial-") for part in parts)
        and parts[0] not in RESERVED_FILES
        and SHA256_PATTERN.match(entry.sha256) is not None
        and entry.size >= 0
    )


def kind_of(key: str) -> str:
    """The artifact kind a storage key belongs to (its first segment)."""
    return key.split("/", 1)[0]
