"""Free disk space before a download into the HF cache."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from services.errors import InsufficientDiskError
from services.units import human_bytes

DISK_HEADROOM_BYTES = 64 * 1024**2


DiskProbe = Callable[[Path], int]
"""Free bytes on the disk holding a path: `free_disk`, or what a test or snapshot fixes."""


def ensure_disk(path: Path, needed: int, *, what: str, probe: DiskProbe | None = None) -> None:
    """Raise `InsufficientDiskError` when `needed` bytes do not fit on the disk holding `path`."""
    free = (probe or free_disk)(path)
    if needed + DISK_HEADROOM_BYTES > free:
        raise InsufficientDiskError(
            f"{what} needs {human_bytes(needed)} but only {human_bytes(free)} is free at {path}",
            hint="free disk space or point hub.cache_dir at a larger disk",
        )


def free_disk(path: Path) -> int:
    """Free bytes on the disk that holds `path` (or its nearest existing parent)."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free
