"""The versions and labels one storage holds: the workspace's own, or a remote's.

A label is a small blob `<kind>/<name>/labels/<label>` naming one version; every move is written to
the workspace audit log (with the version it replaced), so it can be undone.
"""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.artifacts.model import (
    KINDS,
    MANIFEST,
    NAME_PATTERN,
    RESERVED_FILES,
    Manifest,
    Ref,
    check_name,
    check_stored,
    scan_files,
    version_prefix,
)
from services.artifacts.storage import LocalFolderStorage, Storage, copy_file, link_or_copy
from services.errors import (
    ArtifactInUseError,
    IntegrityError,
    NextStep,
    NotFoundError,
    UsageError,
    VersionConflictError,
)
from services.store import Store, utcnow

LABELS = "labels"


@dataclass(frozen=True)
class VersionInfo:
    """A version as listed, with the labels pointing at it."""

    manifest: Manifest
    labels: tuple[str, ...] = field(default=())


class Catalog:
    """Versions and labels in one storage; `where` names it in the audit log ("workspace" or "remote").

    What a storage holds is not trusted: a version's identity is its location, and a manifest or a
    label that says otherwise is refused (listings skip it and keep the error in `rejected`).
    """

    def __init__(self, storage: Storage, store: Store, *, where: str) -> None:
        self.storage = storage
        self.store = store
        self.where = where
        self.rejected: list[IntegrityError] = []
        """Entries the last listing skipped because they failed a check, each once, for the caller to report."""

    # ------------------------------------------------------------------ reading

    def versions(self, *, name: str | None = None, kind: str | None = None) -> list[VersionInfo]:
        """Published versions, newest first, each with its labels; what fails a check is left out and
        kept in `rejected` (which each listing starts afresh)."""
        self.rejected = []
        manifests = [m for k in ((kind,) if kind else KINDS) for m in self._manifests(k, name)]
        labels: dict[tuple[str, str], list[str]] = defaultdict(list)
        for artifact_kind, artifact in {(m.kind, m.name) for m in manifests}:
            for label, version in self.labels(artifact_kind, artifact).items():
                labels[(artifact, version)].append(label)
        manifests.sort(key=lambda m: (m.created_at, m.version), reverse=True)
        return [VersionInfo(m, tuple(sorted(labels[(m.name, m.version)]))) for m in manifests]

    def resolve(self, ref: Ref) -> Manifest:
        """The manifest `ref` names: a version, the version a label points to, or the newest."""
        kind = self.kind_of(ref.name)
        version = ref.version
        if ref.label is not None:
            version = self._label(kind, ref.name, ref.label)
            if version is None:
                raise NotFoundError(
                    f"{ref} : no label {ref.label!r} on {ref.name} in {self.storage.description}",
                    step=NextStep.of("artifacts.show", name=ref.name),
                )
        if version is None:
            return self._newest(kind, ref.name)
        key = f"{version_prefix(kind, ref.name, version)}/{MANIFEST}"
        raw = self.storage.read(key)
        if raw is None:
            raise NotFoundError(
                f"no version {version!r} of {ref.name} in {self.storage.description}",
                step=NextStep.of("artifacts.show", name=ref.name),
            )
        return self._checked(key, raw)

    def _newest(self, kind: str, name: str) -> Manifest:
        found = self.versions(name=name, kind=kind)
        if found:
            return found[0].manifest
        refused = [e for e in self.rejected if f"{kind}/{name}/" in e.message]
        raise (
            refused[0]
            if refused
            else NotFoundError(
                f"no version of {name} in {self.storage.description}", step=NextStep.of("artifacts.show", name=name)
            )
        )

    def info(self, ref: Ref) -> VersionInfo:
        """The version `ref` names, with the labels pointing at it."""
        manifest = self.resolve(ref)
        labels = self.labels(manifest.kind, manifest.name)
        return VersionInfo(manifest, tuple(sorted(label for label, v in labels.items() if v == manifest.version)))

    def kind_of(self, name: str) -> str:
        """The kind artifact `name` has here; NotFoundError when it has no version here."""
        for kind in KINDS:
            if self._manifest_keys(kind, name):
                return kind
        raise NotFoundError(
            f"no artifact named {name!r} in {self.storage.description}",
            step=NextStep("artifacts.ls"),
        )

    def labels(self, kind: str, name: str) -> dict[str, str]:
        """Label to version for one artifact."""
        prefix = f"{kind}/{name}/{LABELS}"
        found = {}
        for key in self.storage.keys(prefix):
            raw = self.storage.read(key)
            try:
                if raw:
                    found[key.rsplit("/", 1)[1]] = self._label_version(key, raw)
            except IntegrityError as exc:
                self._reject(exc)
        return found

    def _label(self, kind: str, name: str, label: str) -> str | None:
        key = f"{kind}/{name}/{LABELS}/{check_name('label', label)}"
        raw = self.storage.read(key)
        return self._label_version(key, raw) if raw else None

    def _label_version(self, key: str, raw: bytes) -> str:
        """The version a label blob names; IntegrityError unless it is a plain version name."""
        try:
            version = json.loads(raw).get("version")
        except (ValueError, AttributeError):
            version = None
        if isinstance(version, str) and NAME_PATTERN.match(version):
            return version
        label = key.rsplit("/", 1)[1]
        raise IntegrityError(
            f"{self.storage.description}: label {label} ({key}) does not name a version of its artifact; refused",
            hint="point it at a version again",
            step=NextStep.of("artifacts.label", label=label),
        )

    def _manifest_keys(self, kind: str, name: str | None) -> list[str]:
        prefix = f"{kind}/{name}" if name else kind
        return [k for k in self.storage.keys(prefix) if k.endswith("/" + MANIFEST) and k.count("/") == 3]

    def _manifests(self, kind: str, name: str | None) -> list[Manifest]:
        """The manifests that pass `_checked`; the others are skipped and kept in `rejected`."""
        manifests = []
        for key in self._manifest_keys(kind, name):
            raw = self.storage.read(key)
            try:
                if raw is not None:
                    manifests.append(self._checked(key, raw))
            except IntegrityError as exc:
                self._reject(exc)
        return manifests

    def _checked(self, key: str, raw: bytes) -> Manifest:
        """The manifest stored at `key`; IntegrityError unless its kind, name and version are the key's."""
        origin = f"{self.storage.description}: {key}"
        try:
            manifest = Manifest.from_json(raw, origin=origin)
        except UsageError as exc:
            raise IntegrityError(exc.message, hint=exc.hint) from None
        return check_stored(manifest, key, origin=origin)

    def _reject(self, error: IntegrityError) -> None:
        if all(str(error) != str(seen) for seen in self.rejected):
            self.rejected.append(error)

    # ------------------------------------------------------------------ labels

    def set_label(self, manifest: Manifest, label: str, *, actor: str) -> str | None:
        """Point `label` at `manifest`'s version; returns the version it pointed to before (audited)."""
        check_name("label", label)
        previous = self.labels(manifest.kind, manifest.name).get(label)
        key = f"{manifest.kind}/{manifest.name}/{LABELS}/{label}"
        self.storage.write(key, json.dumps({"version": manifest.version, "by": actor, "at": utcnow()}).encode())
        self._audit(actor, "label.set", manifest.name, label=label, version=manifest.version, previous=previous)
        return previous

    def undo_label(self, name: str, label: str, *, actor: str) -> str | None:
        """Move `label` back to where its last move took it from (removing it if it was new); the version now."""
        moves = [
            e
            for e in self.store.audit_log(subject=f"artifact:{name}", limit=1000)
            if e.action in ("label.set", "label.undo")
            and e.details.get("label") == label
            and e.details.get("where") == self.where
        ]
        if not moves:
            raise NotFoundError(f"label {label!r} of {name} was never moved in {self.where}; nothing to undo")
        last = moves[0].details
        kind = self.kind_of(name)
        key = f"{kind}/{name}/{LABELS}/{label}"
        target = last.get("previous")
        if target is None:
            self.storage.delete(key)
        else:
            self.storage.write(key, json.dumps({"version": target, "by": actor, "at": utcnow()}).encode())
        self._audit(actor, "label.undo", name, label=label, version=target, previous=last.get("version"))
        return target  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ changing

    def register(
        self,
        kind: str,
        name: str,
        version: str,
        folder: Path,
        *,
        lineage: dict[str, Any],
        actor: str,
        link: bool = True,
    ) -> Manifest:
        """Add `folder`'s files as a new version: hard-linked when `link` (files the workbench wrote, which
        it only ever replaces by renaming, never rewrites in place), else copied (a user's files, which may
        be edited in place later). A hard link shares the file, so push checks every file against the
        manifest before sending it and refuses a changed one. Registering the same files again returns
        the existing version; other files under a taken version are refused."""
        if kind not in KINDS:
            raise UsageError(f"unknown artifact kind {kind!r}", hint=f"one of: {', '.join(KINDS)}")
        storage = self._local()
        check_name("artifact name", name)
        check_name("version", version)
        self._check_kind(name, kind)
        files = scan_files(folder)
        reserved = [f.path for f in files if f.path.split("/")[0] in RESERVED_FILES]
        if reserved:
            raise UsageError(
                f"{folder} holds {reserved[0]}: the artifact storage keeps that name for itself",
                hint="rename or remove it, then register again",
            )
        manifest = Manifest(kind, name, version, files, lineage, actor, utcnow())
        prefix = version_prefix(kind, name, version)
        existing = storage.read(f"{prefix}/{MANIFEST}")
        if existing is not None:
            there = Manifest.from_json(existing, origin=f"{storage.description}: {manifest.ref}")
            if there.digest() == manifest.digest():
                return there
            raise VersionConflictError(f"{manifest.ref} exists with other files", hint="choose another version")
        place = link_or_copy if link else copy_file
        for entry in files:
            place(folder / entry.path, storage.path(f"{prefix}/{entry.path}"))
        if not storage.create(f"{prefix}/{MANIFEST}", manifest.to_json()):
            raise VersionConflictError(f"{manifest.ref} was registered at the same time by another process")
        self.index(manifest)
        self._audit(actor, "register", name, version=version, kind=kind)
        return manifest

    def index(self, manifest: Manifest) -> None:
        """Record a workspace version in the store (after a register or a pull)."""
        with self.store.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO artifacts (kind, name, version, manifest, created_by, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    manifest.kind,
                    manifest.name,
                    manifest.version,
                    manifest.to_json().decode(),
                    manifest.created_by,
                    manifest.created_at,
                ),
            )

    def remove(self, manifest: Manifest, *, actor: str) -> None:
        """Delete a version: refused while a label here or a live release points to it."""
        held = [label for label, v in self.labels(manifest.kind, manifest.name).items() if v == manifest.version]
        if held:
            raise ArtifactInUseError(
                f"{manifest.ref} is labelled {', '.join(held)} in {self.where}; not deleted",
                hint="move the label first",
                step=NextStep.of("artifacts.label", name=manifest.name, label=held[0]),
            )
        releases = live_releases(self.store, manifest.name, manifest.version)
        if releases:
            raise ArtifactInUseError(
                f"{manifest.ref} is used by live release {releases[0]}; not deleted",
                hint="deploy or roll back to a release without it first",
            )
        self.remove_files(version_prefix(manifest.kind, manifest.name, manifest.version))
        if self.where == "workspace":
            with self.store.transaction() as db:
                db.execute(
                    "DELETE FROM artifacts WHERE kind = ? AND name = ? AND version = ?",
                    (manifest.kind, manifest.name, manifest.version),
                )
        self._audit(actor, "remove", manifest.name, version=manifest.version)

    def remove_unpublished(self, name: str, version: str) -> bool:
        """Clear what an abandoned push left of `name@version` (files, lock; no manifest); False if nothing."""
        for kind in KINDS:
            prefix = version_prefix(kind, name, version)
            keys = self.storage.keys(prefix)
            if keys and f"{prefix}/{MANIFEST}" not in keys:
                self.remove_files(prefix)
                return True
        return False

    def remove_files(self, prefix: str) -> None:
        """Unpublish first (the manifest), then the files and any push lock."""
        self.storage.delete(f"{prefix}/{MANIFEST}")
        for key in self.storage.keys(prefix):
            self.storage.delete(key)
        if isinstance(self.storage, LocalFolderStorage):
            shutil.rmtree(self.storage.path(prefix), ignore_errors=True)

    def _local(self) -> LocalFolderStorage:
        if not isinstance(self.storage, LocalFolderStorage):
            raise UsageError("versions are registered in the workspace, then pushed")
        return self.storage

    def _check_kind(self, name: str, kind: str) -> None:
        for other in KINDS:
            if other != kind and self._manifests(other, name):
                raise UsageError(
                    f"{name!r} is already the name of a {other} artifact", hint="give this one another name"
                )

    def _audit(self, actor: str, action: str, name: str, **details: Any) -> None:
        self.store.audit(
            actor=actor, action=action, subject=f"artifact:{name}", details={"where": self.where, **details}
        )


def live_releases(store: Store, name: str, version: str) -> list[str]:
    """Ids of live releases whose bill of materials includes `name@version`."""
    with store.connect() as db:
        rows = db.execute("SELECT id, bom FROM releases WHERE status = 'live'").fetchall()
    using = []
    for row in rows:
        artifacts = json.loads(row["bom"] or "{}").get("artifacts") or []
        if any(a.get("name") == name and a.get("version") == version for a in artifacts):
            using.append(str(row["id"]))
    return using
