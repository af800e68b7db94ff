"""Artifact verbs: list (registering finished fine-tunes first), register a source, push and pull,
move labels, delete a version."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from services.errors import UsageError

if TYPE_CHECKING:
    from services.artifacts.catalog import Catalog, VersionInfo
    from services.artifacts.evals import EvalLink
    from services.artifacts.model import Manifest, Ref
    from services.artifacts.sync import CopyReport
    from services.progress import CancelToken, OnTransfer
    from workbench.wiring import Services


@dataclass(frozen=True)
class Listing:
    """The versions of one storage, newest first, and what its listing refused."""

    catalog: Catalog
    versions: list[VersionInfo]
    refused: tuple[str, ...]
    evals: dict[str, list[EvalLink]] = field(default_factory=dict)
    """Eval runs per version ref (only when asked for)."""


def list_versions(
    services: Services, *, remote: bool = False, kind: str | None = None, with_evals: bool = False
) -> Listing:
    """Register the workspace's finished fine-tunes (workspace listings only), then list versions."""
    from services.artifacts.evals import evals_for
    from services.artifacts.sources import register_finished_jobs

    artifacts = services.artifacts()
    if not remote:
        register_finished_jobs(artifacts)
    catalog = artifacts.catalog(remote=remote)
    infos = catalog.versions(kind=kind)
    evals = (
        {i.manifest.ref: evals_for(artifacts.store, i.manifest.name, i.manifest.version) for i in infos}
        if with_evals
        else {}
    )
    return Listing(catalog, infos, tuple(str(error) for error in catalog.rejected), evals)


def register(
    services: Services, kind: str, source: str, *, name: str | None = None, version: str | None = None
) -> Manifest:
    """Register `source` as a new version: a collection's name, a job (adapter), or a file or folder."""
    from services.artifacts import sources

    artifacts = services.artifacts()
    if kind == "collection":
        return sources.register_collection(artifacts, services.chroma(), source)
    if kind == "adapter":
        from services.finetune.jobs import job_dir_for

        return sources.register_adapter(artifacts, job_dir_for(services.data_dir, source))
    path = Path(source)
    if not path.exists():
        raise UsageError(f"{source} does not exist", hint="give a file or folder")
    return sources.register_path(artifacts, kind, path, name=name or path.stem, version=version)


@dataclass(frozen=True)
class Copied:
    """A push or a pull: the copy's report and where the version now is."""

    report: CopyReport
    where: str


def push(
    services: Services, ref: str, *, on_progress: OnTransfer | None = None, cancel: CancelToken | None = None
) -> Copied:
    """Publish a workspace version to remote storage (parallel, resumable, manifest last)."""
    artifacts = services.artifacts()
    report = artifacts.push(_parsed(ref), on_progress=on_progress, cancel=cancel)
    return Copied(report, artifacts.remote.storage.description)


def pull(
    services: Services, ref: str, *, on_progress: OnTransfer | None = None, cancel: CancelToken | None = None
) -> Copied:
    """Fetch a remote version (NAME@VERSION or NAME:LABEL) into the workspace, every file verified."""
    artifacts = services.artifacts()
    report = artifacts.pull(_parsed(ref), on_progress=on_progress, cancel=cancel)
    return Copied(report, str(artifacts.folder(artifacts.local.resolve(_parsed(report.ref)))))


@dataclass(frozen=True)
class LabelMove:
    """Where a label of `name` points after a move (None: removed), where it pointed before, and the storage."""

    name: str
    label: str
    version: str | None
    previous: str | None
    where: str


def set_label(services: Services, ref: str, label: str, *, remote: bool) -> LabelMove:
    """Point `label` at NAME@VERSION (audited)."""
    artifacts = services.artifacts()
    catalog = artifacts.catalog(remote=remote)
    parsed = _parsed(ref)
    if parsed.version is None:
        raise UsageError(f"say which version to label: {parsed.name}@VERSION")
    manifest = catalog.resolve(parsed)
    previous = catalog.set_label(manifest, label, actor=artifacts.actor)
    return LabelMove(manifest.name, label, manifest.version, previous, _where(catalog))


def undo_label(services: Services, name: str, label: str, *, remote: bool) -> LabelMove:
    """Move `label` of `name` back to where its last move took it from (audited)."""
    artifacts = services.artifacts()
    catalog = artifacts.catalog(remote=remote)
    now = catalog.undo_label(name, label, actor=artifacts.actor)
    return LabelMove(name, label, now, None, _where(catalog))


@dataclass(frozen=True)
class Removed:
    """A deleted version, or (`unpublished`) the leftovers of a push that never published it."""

    ref: str
    where: str
    unpublished: bool = False


def remove(services: Services, ref: str, *, remote: bool) -> Removed:
    """Delete NAME@VERSION (refused while a label or a live release points to it); in remote storage a
    version an abandoned push left unpublished is cleared instead."""
    from services.errors import NotFoundError

    artifacts = services.artifacts()
    catalog = artifacts.catalog(remote=remote)
    parsed = _parsed(ref)
    if parsed.version is None:
        raise UsageError(f"say which version to delete: {parsed.name}@VERSION")
    where = _where(catalog)
    try:
        manifest = catalog.resolve(parsed)
    except NotFoundError:
        if remote and catalog.remove_unpublished(parsed.name, parsed.version):
            return Removed(str(parsed), where, unpublished=True)
        raise
    catalog.remove(manifest, actor=artifacts.actor)
    return Removed(manifest.ref, where)


def _parsed(ref: str) -> Ref:
    from services.artifacts.model import parse_ref

    return parse_ref(ref)


def _where(catalog: Catalog) -> str:
    return catalog.storage.description if catalog.where == "remote" else "the workspace"
