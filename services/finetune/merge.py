"""Merge a finished job's adapter into its base model and save it as safetensors.

The merge is written into a staging folder beside the output, then renamed into it file by file: a
merge that dies while writing leaves the previous output as it was, every file is whole at every
moment, and a registered version (whose files the artifact store hard-links) keeps its bytes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from appkit.adapters import apply_adapter

from services.errors import UsageError
from services.files import replace_files, staging_folder, write_atomic
from services.finetune.model import resolve_model
from services.finetune.spec import load_spec


def merge_adapter(job_dir: Path, *, output: Path | None = None, cache_dir: Path | None = None) -> Path:
    """Base model + adapter folded into plain weights (loads without peft); returns the folder."""
    import torch
    from transformers import AutoTokenizer

    from services.finetune.training import model_class

    adapter = job_dir / "adapter"
    if not (adapter / "adapter_config.json").is_file():
        raise UsageError(f"job {job_dir.name} has no adapter yet", hint="wait until it completes")
    spec = load_spec(job_dir / "job.toml")
    manifest = json.loads((adapter / "manifest.json").read_text())
    labels = manifest.get("labels") or []
    kwargs = {"num_labels": len(labels), "id2label": dict(enumerate(labels))} if labels else {}
    dtype = getattr(torch, merge_dtype(manifest))
    base = model_class(spec).from_pretrained(resolve_model(spec, cache_dir=cache_dir).path, dtype=dtype, **kwargs)
    merged = apply_adapter(base, adapter, merge=True)
    output = output or job_dir / "merged"
    staging = staging_folder(output)
    try:
        merged.save_pretrained(staging, safe_serialization=True)
        AutoTokenizer.from_pretrained(adapter).save_pretrained(staging)
        write_atomic(staging / "manifest.json", json.dumps({**manifest, "kind": "merged-model"}, indent=2))
        _drop_stale_shards(output, staging)
        replace_files(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return output


def merge_dtype(manifest: dict[str, Any]) -> str:
    """The torch dtype to merge in: an adapter trained on a k-bit base in its training precision (the
    manifest's; bf16 for manifests without one), since an fp32 merge of a quantised base's model
    doubles its size for no accuracy; a LoRA on a full-precision base in float32."""
    method = manifest.get("job", {}).get("lora", {}).get("method", "lora")
    if method == "lora":
        return "float32"
    names = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
    return names.get(str(manifest.get("precision")), "bfloat16")


def _drop_stale_shards(output: Path, staging: Path) -> None:
    """Remove weight files of an earlier merge that this one does not replace (as save_pretrained would)."""
    if not output.is_dir():
        return
    for old in output.glob("model*.safetensors*"):
        if not (staging / old.name).exists():
            old.unlink()
