"""Merge a finished job's adapter into its base model and save it as safetensors."""

from __future__ import annotations

import json
from pathlib import Path

from services.errors import UsageError
from services.finetune.model import resolve_model
from services.finetune.spec import load_spec


def merge_adapter(job_dir: Path, *, output: Path | None = None, cache_dir: Path | None = None) -> Path:
    """Base model + adapter folded into plain weights (loads without peft); returns the folder."""
    import torch
    from peft import PeftModel
    from transformers import AutoTokenizer

    from services.finetune.training import model_class

    adapter = job_dir / "adapter"
    if not (adapter / "adapter_config.json").is_file():
        raise UsageError(f"job {job_dir.name} has no adapter yet", hint="wait until it completes")
    spec = load_spec(job_dir / "job.toml")
    manifest = json.loads((adapter / "manifest.json").read_text())
    labels = manifest.get("labels") or []
    kwargs = {"num_labels": len(labels), "id2label": dict(enumerate(labels))} if labels else {}
    base = model_class(spec).from_pretrained(
        resolve_model(spec, cache_dir=cache_dir).path, dtype=torch.float32, **kwargs
    )
    merged = PeftModel.from_pretrained(base, adapter).merge_and_unload()
    output = output or job_dir / "merged"
    merged.save_pretrained(output, safe_serialization=True)
    AutoTokenizer.from_pretrained(adapter).save_pretrained(output)
    (output / "manifest.json").write_text(json.dumps({**manifest, "kind": "merged-model"}, indent=2))
    return output
