"""A merged adapter answers as the unmerged one, also when it changes tied embeddings and head."""

from __future__ import annotations

from pathlib import Path

import pytest

from appkit.adapters import apply_adapter


def tied_model() -> object:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=True,
    )  # fmt: skip
    return LlamaForCausalLM(config).eval()


@pytest.mark.parametrize("targets", [["q_proj", "v_proj"], ["q_proj", "embed_tokens", "lm_head"]])
def test_merged_answers_like_unmerged(tmp_path: Path, targets: list[str]) -> None:
    import torch
    from peft import LoraConfig, get_peft_model

    trained = get_peft_model(tied_model(), LoraConfig(r=4, target_modules=targets, init_lora_weights=False))
    trained.save_pretrained(tmp_path / "adapter")
    ids = torch.tensor([[1, 5, 9, 13, 17]])
    with torch.no_grad():
        unmerged = apply_adapter(tied_model(), tmp_path / "adapter", merge=False)(ids).logits
        merged = apply_adapter(tied_model(), tmp_path / "adapter", merge=True)(ids).logits
    assert torch.allclose(merged, unmerged, atol=1e-5)
    assert not torch.allclose(merged, tied_model()(ids).logits, atol=1e-3)  # the adapter does change answers


def test_no_peft_noise_for_adapters_we_untie(tmp_path: Path) -> None:
    import warnings

    from peft import LoraConfig, get_peft_model

    from appkit.adapters import peft_warnings_understood

    config = LoraConfig(r=4, target_modules=["q_proj", "embed_tokens", "lm_head"])
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with peft_warnings_understood():
            get_peft_model(tied_model(), config).save_pretrained(tmp_path / "adapter")
        for merge in (False, True):
            apply_adapter(tied_model(), tmp_path / "adapter", merge=merge)
    assert not [w for w in seen if "tie_word_embeddings" in str(w.message)]
    assert not [w for w in seen if "is_gradient_checkpointing" in str(w.message)]
    with pytest.warns(UserWarning, match="tie_word_embeddings"):  # peft still warns outside
        get_peft_model(tied_model(), config)
