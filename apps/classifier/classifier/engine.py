"""The classification model: a sequence-classification base plus an optional PEFT adapter, offline.

Label names come, in order, from the `labels` setting, the adapter's `manifest.json` (what the
workbench's fine-tunes record) and the model config's `id2label`. Inference runs in forward passes
of several texts (one at a time per model: a lock), and stops between passes once the deadline
has passed; the service gathers the texts of concurrent requests into shared passes (`batching`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appkit.adapters import apply_adapter

log = logging.getLogger("classifier.engine")


class LoadError(RuntimeError):
    """The model or adapter cannot be loaded; the message says which and what to set."""


@dataclass(frozen=True)
class Scores:
    """Class probabilities per text, in label order, and the tokens the model read."""

    probabilities: list[list[float]]
    tokens: int


@dataclass
class Classifier:
    """A loaded sequence-classification model, its tokenizer and its label names."""

    model: Any
    tokenizer: Any
    labels: list[str]
    multi_label: bool
    adapter: str | None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def classify(self, texts: list[str], *, max_length: int, batch_size: int, deadline: float) -> Scores | None:
        """Probabilities for `texts` in passes of `batch_size`; None when the deadline passes first
        (blocking: run in a thread). The service gathers concurrent requests first (`batching`)."""
        probabilities: list[list[float]] = []
        tokens = 0
        for start in range(0, len(texts), batch_size):
            if time.monotonic() > deadline:
                return None
            rows, counts = self.forward(texts[start : start + batch_size], max_length=max_length)
            probabilities.extend(rows)
            tokens += sum(counts)
        return Scores(probabilities, tokens)

    def forward(self, texts: list[str], *, max_length: int) -> tuple[list[list[float]], list[int]]:
        """One forward pass over `texts` (padded to the longest): probabilities and tokens read, per text."""
        import torch

        encoded = self.tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        with self.lock, torch.inference_mode():
            logits = self.model(**encoded.to(self.model.device)).logits.float()
        scores = torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=-1)
        counts = [int(n) for n in encoded["attention_mask"].sum(dim=1).tolist()]
        return scores.cpu().tolist(), counts


def load_classifier(
    model_path: Path, adapter_path: Path | None, *, labels: list[str] | None, merge_adapter: bool
) -> Classifier:
    """The base from `model_path` with the adapter from `adapter_path` applied (offline)."""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.disable_default_handler()  # its records go to the root logger's JSON handler instead
    hf_logging.enable_propagation()
    _require_folder(model_path, "CLASSIFIER_MODEL_PATH", "config.json")
    if adapter_path is not None:
        _require_folder(adapter_path, "CLASSIFIER_ADAPTER_PATH", "adapter_config.json")
    names = labels or manifest_labels(adapter_path)
    model = AutoModelForSequenceClassification.from_pretrained(
        model_path, local_files_only=True, **device_kwargs(), **label_kwargs(names)
    )
    if adapter_path is not None:
        model = apply_adapter(model, adapter_path, merge=merge_adapter)
    model.eval()
    tokenizer = _tokenizer(model_path, adapter_path)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return Classifier(
        model=model,
        tokenizer=tokenizer,
        labels=[str(model.config.id2label[i]) for i in range(model.config.num_labels)],
        multi_label=model.config.problem_type == "multi_label_classification",
        adapter=adapter_path.name if adapter_path is not None else None,
    )


def manifest_labels(adapter_path: Path | None) -> list[str] | None:
    """The labels a workbench fine-tune recorded in the adapter's manifest.json, if any."""
    if adapter_path is None or not (adapter_path / "manifest.json").is_file():
        return None
    try:
        found = json.loads((adapter_path / "manifest.json").read_text(encoding="utf-8")).get("labels")
    except (OSError, ValueError, AttributeError):
        return None
    return [str(label) for label in found] if isinstance(found, list) and found else None


def label_kwargs(labels: list[str] | None) -> dict[str, Any]:
    if not labels:
        return {}
    return {
        "num_labels": len(labels),
        "id2label": dict(enumerate(labels)),
        "label2id": {label: i for i, label in enumerate(labels)},
    }


def device_kwargs() -> dict[str, Any]:
    """bf16 on the first CUDA GPU when there is one, fp32 on the CPU."""
    import torch

    if torch.cuda.is_available():
        return {"dtype": torch.bfloat16, "device_map": {"": 0}}
    return {"dtype": torch.float32}


def _tokenizer(model_path: Path, adapter_path: Path | None) -> Any:
    from transformers import AutoTokenizer

    own = adapter_path is not None and (adapter_path / "tokenizer_config.json").is_file()
    tokenizer = AutoTokenizer.from_pretrained(adapter_path if own else model_path, local_files_only=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _require_folder(folder: Path, setting: str, marker: str) -> None:
    if not (folder / marker).is_file():
        raise LoadError(f"{setting}={folder} has no {marker}: mount the model folder there")
