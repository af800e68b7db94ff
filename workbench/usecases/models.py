"""Model verbs: the download pre-check (access, disk), the download into the HF cache, the hub check,
and the demo workspace (made on request, or at the first start when the cache is empty)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.demo import DemoWorkspace
    from services.hub.details import ModelDetails
    from services.hub.download import DownloadResult
    from services.progress import CancelToken, OnTransfer
    from workbench.wiring import Services


@dataclass(frozen=True)
class DownloadPlan:
    """A download that passed its pre-checks: the model, what is still missing and where it goes."""

    details: ModelDetails
    missing_bytes: int
    """Bytes still to fetch (complete and partial files count as present)."""
    free_bytes: int
    """Free disk space at `cache` now."""
    cache: Path


def check_download(services: Services, details: ModelDetails) -> DownloadPlan:
    """The download pre-check: the token may download the model (gated access), and what is missing
    fits on the cache's disk; raises `AccessDeniedError` or `InsufficientDiskError` otherwise."""
    from services.hub.details import require_access
    from services.hub.disk import ensure_disk
    from services.hub.download import missing_bytes

    conn = services.hub
    require_access(conn, details)
    cache = conn.cache_path
    missing = missing_bytes(conn, details)
    ensure_disk(cache, missing, what=details.id, probe=services.free_disk)
    return DownloadPlan(details, missing, services.free_disk(cache), cache)


def download(
    services: Services,
    repo_id: str,
    *,
    revision: str | None = None,
    include: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
    on_progress: OnTransfer | None = None,
    cancel: CancelToken | None = None,
) -> DownloadResult:
    """Download a model into the HF cache; resumable, cancellable.

    The service repeats `check_download` on the details it fetches now (the revision may have moved
    since a front-end asked), so a download never starts without access or disk space."""
    from services.hub.download import download_model

    return download_model(
        services.hub,
        repo_id,
        revision=revision,
        include=include,
        exclude=exclude,
        on_progress=on_progress,
        cancel=cancel,
        disk=services.free_disk,
    )


def hub_online(services: Services) -> bool:
    """Whether the hub answers now (False in offline mode or when it cannot be reached)."""
    from services.errors import HubUnavailableError
    from services.hub.connection import check_online

    try:
        check_online(services.hub)
    except HubUnavailableError:
        return False
    return True


def init_demo(services: Services) -> DemoWorkspace:
    """Create the demo model, embedding model, dataset, documents, job and suite (idempotent, offline)."""
    from services.demo import init_demo as made

    return made(cache_dir=services.cache_dir, data_dir=services.data_dir)


def first_start(services: Services) -> bool:
    """Whether this is a first start: the HF cache holds no model yet (so the demo workspace is wanted)."""
    from services.cache import list_cached_models

    return not list_cached_models(services.cache_dir).models
