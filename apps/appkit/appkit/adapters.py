"""PEFT adapters on a base model, for inference: loaded as they are, or merged into the weights.

An adapter may change a base's tied embeddings and head (the demo job trains both). Merged into the
one matrix they share, each delta would change both layers, so the head gets its own copy first.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TIED_LAYER_WARNING = r"Model has `tie_word_embeddings=True` and a tied layer is part of the adapter"
CHECKPOINTING_WARNING = r"`is_gradient_checkpointing` is deprecated"


def apply_adapter(model: Any, adapter_path: Path, *, merge: bool) -> Any:
    """`model` with the PEFT adapter loaded (for inference), folded into its weights when `merge`."""
    from peft import PeftModel

    if merge and adapts_tied_embeddings(model, adapter_path):
        untie_embeddings(model)
    with peft_warnings_understood():
        peft_model = PeftModel.from_pretrained(model, adapter_path, is_trainable=False)
    return peft_model.merge_and_unload() if merge else peft_model


@contextmanager
def peft_warnings_understood() -> Iterator[None]:
    """Two PEFT warnings that are noise here. PEFT warns whenever an adapter covers a tied embedding or
    head: its merge would fold both deltas into the shared matrix; unmerged, each layer applies its own
    delta, and `apply_adapter` unties before merging. And every `PeftModel` reads transformers'
    deprecated `is_gradient_checkpointing`, a FutureWarning in each process's log that is PEFT's to fix."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=TIED_LAYER_WARNING)
        warnings.filterwarnings("ignore", message=CHECKPOINTING_WARNING, category=FutureWarning)
        yield


def adapts_tied_embeddings(base: Any, adapter: Path) -> bool:
    """Whether the adapter changes the input embeddings or the head of a base that ties the two."""
    input_layer, output_layer = base.get_input_embeddings(), base.get_output_embeddings()
    if output_layer is None or output_layer.weight is not input_layer.weight:
        return False
    targets = json.loads((adapter / "adapter_config.json").read_text()).get("target_modules") or []
    tied = [name for name, module in base.named_modules() if module is input_layer or module is output_layer]
    return any(_targeted(name, targets) for name in tied)


def _targeted(name: str, targets: str | list[str]) -> bool:
    """PEFT's matching: a string is a regular expression for the full name, a list holds name suffixes."""
    if isinstance(targets, str):
        return re.fullmatch(targets, name) is not None
    return any(name == target or name.endswith(f".{target}") for target in targets)


def untie_embeddings(base: Any) -> None:
    """Give the head its own copy of the embeddings, so the embedding and head deltas of an adapter
    each merge into their own layer."""
    import torch

    head = base.get_output_embeddings()
    head.weight = torch.nn.Parameter(base.get_input_embeddings().weight.detach().clone())
    base.config.tie_word_embeddings = False
