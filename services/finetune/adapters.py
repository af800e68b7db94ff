"""Adapters that fine-tune jobs saved, with where they lie and what they came from."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from services.finetune.jobs import jobs_root


@dataclass(frozen=True)
class Adapter:
    """One trained adapter in PEFT format, in its job's folder."""

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
    """Adapters saved by the fine-tune jobs under `data_dir`, newest first."""
    root = jobs_root(data_dir)
    configs = list(root.glob("*/adapter/adapter_config.json")) if root.is_dir() else []
    configs.sort(key=lambda config: config.stat().st_mtime, reverse=True)
    return [_adapter(config.parent) for config in configs]


def _adapter(path: Path) -> Adapter:
    manifest, config = read_json_object(path / "manifest.json"), read_json_object(path / "adapter_config.json")
    base = manifest.get("base_model") or {}
    created = datetime.fromtimestamp((path / "adapter_config.json").stat().st_mtime, UTC)
    return Adapter(
        name=manifest.get("name") or path.parent.name,
        version=path.parent.name,
        path=path,
        base_model=base.get("id") or config.get("base_model_name_or_path"),
        base_revision=base.get("revision"),
        created_at=created.isoformat(timespec="seconds"),
        size=sum(f.stat().st_size for f in path.rglob("*") if f.is_file()),
        eval_loss=(manifest.get("metrics") or {}).get("eval_loss"),
    )


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON object from `path`; {} when it is missing or unreadable (an adapter still loads without it)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}
