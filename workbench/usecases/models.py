"""Model verbs: the download pre-check (access, disk) and the download into the HF cache."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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
    from services.hub.disk import ensure_disk, free_disk
    from services.hub.download import missing_bytes

    conn = services.hub
    require_access(conn, details)
    cache = conn.cache_path
    missing = missing_bytes(conn, details)
    ensure_disk(cache, missing, what=details.id)
    return DownloadPlan(details, missing, free_disk(cache), cache)


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
    )
