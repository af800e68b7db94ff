"""Artifact verbs: list (registering finished fine-tunes first) and register a source."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from services.errors import UsageError

if TYPE_CHECKING:
    from services.artifacts.catalog import Catalog, VersionInfo
    from services.artifacts.evals import EvalLink
    from services.artifacts.model import Manifest
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
