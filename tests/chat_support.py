"""Helpers for chat and suite tests: the demo workspace and LoRA adapters that really change outputs."""

from __future__ import annotations

from pathlib import Path


def make_adapter(model_path: Path, folder: Path, *, seed: int, scale: float = 0.5) -> Path:
    """A LoRA adapter for the demo model with random non-zero A and B, so it changes what the model says.

    (A freshly initialised LoRA has B = 0 and changes nothing; training takes longer than this.)
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(model_path)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False)
    model = get_peft_model(base, config)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_" in name:
                param.normal_(0.0, scale)
    model.save_pretrained(folder)
    return folder
