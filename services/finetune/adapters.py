"""Adapters that fine-tune jobs registered in the workspace store, with where they lie and what they came from."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.finetune.jobs import jobs_root
from services.store import Store


@dataclass(frozen=True)
class Adapter:
    """One trained adapter: a version of the job's artifact, saved in PEFT format."""

    name: str
    """The job's name, e.g. "demo-run"."""
    version: str
    """The job id, e.g. "demo-run-20260301-120000-000000"."""
    path: Path
    base_model: str | None
    base_revision: str | None
    created_at: str
    size: int
    eval_loss: float | None


def list_adapters(data_dir: Path) -> list[Adapter]:
    """Registered adapters whose folder still exists, newest first."""
    store = Store(data_dir)
    store.migrate()
    with store.connect() as db:
        rows = db.execute(
            "SELECT name, version, manifest, created_at FROM artifacts WHERE kind = 'adapter' "
            "ORDER BY created_at DESC, version DESC"
        ).fetchall()
    found = (_adapter(data_dir, *row) for row in rows)
    return [adapter for adapter in found if adapter is not None]


def _adapter(data_dir: Path, name: str, version: str, manifest: str, created_at: str) -> Adapter | None:
    path = jobs_root(data_dir) / version / "adapter"
    if not (path / "adapter_config.json").is_file():
        return None
    facts: dict[str, Any] = json.loads(manifest or "{}")
    base = facts.get("base_model") or {}
    loss = (facts.get("metrics") or {}).get("eval_loss")
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return Adapter(name, version, path, base.get("id"), base.get("revision"), created_at, size, loss)
