"""The GPU check script (tests/gpu/check_gpu_server.py) imports, generates its model and runs its
CPU-safe parts here; on a machine without CUDA it stops with a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gpu import check_gpu_server
from tests.gpu.gpu_check_support import (
    LLAMA_32_1B,
    TINY,
    build_model,
    job_figures,
    job_spec,
    lora_mfu,
    write_dataset,
)


def test_the_generated_model_loads_with_its_tokenizer_and_runs(tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = build_model(tmp_path / "model", TINY)
    model = AutoModelForCausalLM.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert model.config.hidden_size == 64 and model.dtype == torch.bfloat16
    assert (model.config.num_key_value_heads, model.config.head_dim) == (2, 16)
    ids = tokenizer("which machine has the GPU?", return_tensors="pt")["input_ids"]
    assert model(ids).logits.shape == (1, ids.shape[1], TINY["vocab_size"])
    assert tokenizer.model_max_length == TINY["max_position_embeddings"]


def test_the_full_size_model_has_llama_3_2_1b_dimensions() -> None:
    from services.fit import ModelShape

    assert round(ModelShape.from_config(LLAMA_32_1B).params / 1e9, 2) == 1.24


def test_job_specs_pack_full_blocks_and_figures_skip_the_warm_up(tmp_path: Path) -> None:
    dataset = write_dataset(tmp_path / "rows.jsonl", 10)
    assert len(dataset.read_text().splitlines()) == 10
    spec = job_spec(tmp_path, dataset, method="qlora", checkpointing=True, seq=1024, batch=4, steps=12)
    assert (spec.name, spec.training.packing, spec.training.gradient_checkpointing) == ("qlora-ckpt", True, True)
    metrics = [{"tokens_per_s": 1.0, "gpu_memory_bytes": 5}, {"tokens_per_s": 100.0, "gpu_memory_bytes": 7}]
    assert job_figures(metrics) == {"peak_bytes": 7.0, "tokens_per_s": 100.0}
    assert lora_mfu(1e4, 10**9, "NVIDIA H200") == pytest.approx(4e13 / 989e12)
    assert lora_mfu(1e4, 10**9, "Some GPU") is None


def test_dry_run_prints_the_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check_gpu_server.main(["--dry-run", "--work", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "plan qlora-ckpt" in out and "plan lora-8bit-ckpt" in out and "GPU checks" in out


def test_without_cuda_it_says_so_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert check_gpu_server.main([]) == 2
    assert "no CUDA" in capsys.readouterr().out
