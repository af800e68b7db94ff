"""The workspace's artifacts and the remote it pushes to: the entry point the CLI and the TUI use."""

from __future__ import annotations

import getpass
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from services.artifacts import sync
from services.artifacts.catalog import Catalog
from services.artifacts.model import Manifest, Ref
from services.artifacts.storage import LocalFolderStorage, Storage
from services.errors import NotFoundError
from services.progress import CancelToken, OnTransfer
from services.store import Store


def default_actor() -> str:
    """Who is acting, as the audit log and manifests record it: `user@host`."""
    return f"{getpass.getuser()}@{socket.gethostname()}"


def artifacts_root(data_dir: Path) -> Path:
    return data_dir / "artifacts"


@dataclass
class Artifacts:
    """Artifacts of the workspace under `data_dir`, and the remote storage `open_remote` opens on first use
    (it returns None when none is configured)."""

    data_dir: Path
    open_remote: Callable[[], Storage | None] = lambda: None
    actor: str = field(default_factory=default_actor)
    workers: int = sync.WORKERS

    @cached_property
    def store(self) -> Store:
        store = Store(self.data_dir)
        store.migrate()
        return store

    @cached_property
    def local(self) -> Catalog:
        return Catalog(LocalFolderStorage(artifacts_root(self.data_dir)), self.store, where="workspace")

    @cached_property
    def remote(self) -> Catalog:
        storage = self.open_remote()
        if storage is None:
            raise NotFoundError(
                "no remote artifact storage is configured",
                hint="set artifacts.blob_endpoint (Azure Blob Storage) or artifacts.remote_dir",
            )
        return Catalog(storage, self.store, where="remote")

    def catalog(self, *, remote: bool) -> Catalog:
        return self.remote if remote else self.local

    def folder(self, manifest: Manifest) -> Path:
        """Where a workspace version's files are."""
        return artifacts_root(self.data_dir) / manifest.kind / manifest.name / manifest.version

    def push(
        self, ref: Ref, *, on_progress: OnTransfer | None = None, cancel: CancelToken | None = None
    ) -> sync.CopyReport:
        """Publish a workspace version to the remote (resumes; refuses other contents under the same version)."""
        manifest = self.local.resolve(ref)
        report = sync.push(
            manifest,
            workspace=self._workspace_storage,
            remote=self.remote.storage,
            owner=self.actor,
            workers=self.workers,
            on_progress=on_progress,
            cancel=cancel,
        )
        self.store.audit(actor=self.actor, action="push", subject=f"artifact:{manifest.name}", details=_details(report))
        return report

    def pull(
        self, ref: Ref, *, on_progress: OnTransfer | None = None, cancel: CancelToken | None = None
    ) -> sync.CopyReport:
        """Fetch a remote version (by version or label) into the workspace, verified file by file."""
        manifest = self.remote.resolve(ref)
        report = sync.pull(
            manifest,
            remote=self.remote.storage,
            workspace=self._workspace_storage,
            workers=self.workers,
            on_progress=on_progress,
            cancel=cancel,
        )
        self.local.index(manifest)
        self.store.audit(actor=self.actor, action="pull", subject=f"artifact:{manifest.name}", details=_details(report))
        return report

    @property
    def _workspace_storage(self) -> LocalFolderStorage:
        storage = self.local.storage
        assert isinstance(storage, LocalFolderStorage)
        return storage


def _details(report: sync.CopyReport) -> dict[str, object]:
    return {
        "ref": report.ref,
        "files_copied": report.files_copied,
        "files_skipped": report.files_skipped,
        "bytes_copied": report.bytes_copied,
    }
