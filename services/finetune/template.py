"""Commented job files: `workbench finetune init` and the demo workspace write these."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from services.finetune.spec import DatasetSpec, JobSpec, ModelRef, TrainingSpec

MAX_DEFAULT_SEQ = 1024


def default_spec(model_id: str, dataset: str, *, model_folder: Path | None = None) -> JobSpec:
    """A job with defaults for this model: sequence length from its config, capped for memory."""
    name = model_id.rstrip("/").rsplit("/", 1)[-1] + "-lora"
    seq = MAX_DEFAULT_SEQ
    if model_folder is not None and (model_folder / "config.json").is_file():
        config = json.loads((model_folder / "config.json").read_text())
        seq = min(int(config.get("max_position_embeddings", seq)), MAX_DEFAULT_SEQ)
    return JobSpec(
        name=name,
        model=ModelRef(id=model_id),
        dataset=DatasetSpec(path=dataset),
        training=TrainingSpec(max_seq_length=seq),
    )


def commented_toml(spec: JobSpec) -> str:
    """The job as TOML with each field's documentation as a comment above it."""
    import tomli_w

    lines = ["# Fine-tune job: `workbench finetune plan FILE` checks it, `workbench finetune run FILE` runs it.", ""]
    lines += _fields(spec, tomli_w)
    for section in ("model", "dataset", "lora", "training"):
        lines += ["", f"[{section}]", *_fields(getattr(spec, section), tomli_w)]
    return "\n".join(lines) + "\n"


def _fields(model: BaseModel, tomli_w: object) -> list[str]:
    lines = []
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            continue
        if info.description:
            lines.append(f"# {info.description}")
        if value is None:
            lines.append(f"# {name} = ")
            continue
        rendered = tomli_w.dumps({name: value}).strip()  # type: ignore[attr-defined]
        lines.append(rendered)
    return lines
