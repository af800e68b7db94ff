"""Base models for fine-tuning: where they are on disk, and their parameters counted on the meta device."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.errors import NextStep, NotFoundError
from services.finetune.spec import JobSpec


@dataclass(frozen=True)
class ResolvedModel:
    """A base model found locally: its folder, config and the commit it came from."""

    id: str
    path: Path
    revision: str
    config: dict[str, Any]


def resolve_model(spec: JobSpec, *, cache_dir: Path | None) -> ResolvedModel:
    """The base model folder: a local path, or a snapshot in the HF cache (never downloads)."""
    local = Path(spec.model.id).expanduser()
    if local.is_dir():
        return ResolvedModel(spec.model.id, local, "local", _config(local))
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        folder = Path(
            snapshot_download(spec.model.id, revision=spec.model.revision, cache_dir=cache_dir, local_files_only=True)
        )
    except (LocalEntryNotFoundError, FileNotFoundError, ValueError):
        raise NotFoundError(
            f"model.id: '{spec.model.id}' (revision {spec.model.revision}) is not in the HF cache",
            step=NextStep.of("models.download", repo=spec.model.id),
        ) from None
    return ResolvedModel(spec.model.id, folder, folder.name, _config(folder))


def _config(folder: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((folder / "config.json").read_text()))
    except FileNotFoundError:
        raise NotFoundError(f"model.id: {folder} has no config.json", hint="is it a transformers model?") from None


def count_parameters(spec: JobSpec, model: ResolvedModel) -> tuple[int, int]:
    """(trainable, total) parameters with the job's LoRA applied, counted without allocating weights."""
    from accelerate import init_empty_weights
    from appkit.adapters import peft_warnings_understood
    from peft import get_peft_model

    from services.finetune.training import lora_config, model_class

    config = _transformers_config(model)
    with warnings.catch_warnings(), init_empty_weights():
        warnings.simplefilter("ignore", FutureWarning)
        base = model_class(spec).from_config(config)
        with peft_warnings_understood():
            peft_model = get_peft_model(base, lora_config(spec, base))
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in peft_model.parameters())
    return trainable, total


def _transformers_config(model: ResolvedModel) -> Any:
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(model.path)
