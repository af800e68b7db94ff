"""The GPU check script (tests/gpu/check_gpu_server.py, multi_rank_checks.py) imports, generates its
model and runs its CPU-safe parts here: job specs, skip rows, reading nvidia-smi's compute apps,
metrics and train.log; on a machine without CUDA it stops with a clear message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.gpu import check_gpu_server, multi_rank_checks
from tests.gpu.gpu_check_support import (
    LLAMA_32_1B,
    TINY,
    Observed,
    Row,
    build_model,
    checkpoint_warnings,
    guarded,
    held_devices,
    job_figures,
    job_spec,
    lora_mfu,
    parse_compute_apps,
    steps_logged_once,
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
    assert "multi-rank job specs" in out and "fsdp-qlora-ckpt" in out


def test_without_cuda_it_says_so_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert check_gpu_server.main([]) == 2
    assert "no CUDA" in capsys.readouterr().out


def test_multi_rank_job_specs_ask_for_what_each_check_proves(tmp_path: Path) -> None:
    dataset = write_dataset(tmp_path / "rows.jsonl", 10)
    job = multi_rank_checks.specs(tmp_path / "small", tmp_path / "wide", dataset, gpus=1)
    assert all(spec.name == name for name, spec in job.items())
    fsdp = job["fsdp-qlora-ckpt"].training
    assert (fsdp.num_processes, fsdp.distributed, fsdp.precision, fsdp.gradient_checkpointing) == (
        2,
        "fsdp",
        "bf16",
        True,
    )
    assert (job["ddp-lora-8bit"].lora.method, job["ddp-lora-8bit"].training.distributed) == ("lora-8bit", "none")
    assert job["ddp-lora-cancel"].training.max_steps > 1000 and job["chat-held"].training.gpus == 1
    assert job["oom"].model.id == str(tmp_path / "wide") and job["oom"].training.micro_batch_size >= 4096
    assert job["forced-cancel"].training.num_processes == 1  # one GPU: the ranks that fit
    assert multi_rank_checks.specs(tmp_path, tmp_path, dataset, gpus=8)["oom"].training.num_processes == 2


@pytest.mark.parametrize("gpus", [0, 1])
def test_two_gpu_checks_are_skipped_with_a_row_that_says_why(gpus: int) -> None:
    rows = multi_rank_checks.two_gpu_skips(gpus)
    assert [row.check for row in rows] == multi_rank_checks.TWO_GPU_CHECKS
    assert {(row.status, row.detail) for row in rows} == {("skip", f"needs 2 GPUs, this machine has {gpus}")}
    assert multi_rank_checks.two_gpu_skips(2) == []


def test_compute_apps_output_is_parsed_and_anything_else_left_out() -> None:
    text = (
        "pid, gpu_uuid\n"
        "4242, GPU-5a1b2c3d-0000-1111-2222-333344445555\n"
        "No running processes found\n"
        "77, MIG-9f8e7d6c-aaaa-bbbb-cccc-ddddeeeeffff\n"
        "12x, GPU-1\n"
        "13, GPU-$(rm -rf)\n"
        "14, GPU-1, extra\n"
    )
    assert parse_compute_apps(text) == [
        (4242, "GPU-5a1b2c3d-0000-1111-2222-333344445555"),
        (77, "MIG-9f8e7d6c-aaaa-bbbb-cccc-ddddeeeeffff"),
    ]
    assert parse_compute_apps("") == []


def test_rank_placement_needs_one_distinct_gpu_per_rank(tmp_path: Path) -> None:
    def seen(apps: set[tuple[int, str]], parent: int = 1) -> Observed:
        return Observed(tmp_path, None, apps, parent, [10, 11], 5.0)

    assert multi_rank_checks.placement(seen({(10, "GPU-a"), (11, "GPU-b"), (99, "GPU-a")})) == []
    both_on_0 = multi_rank_checks.placement(seen({(10, "GPU-a"), (11, "GPU-a")}))
    assert both_on_0 and "not one per GPU" in both_on_0[0]
    assert multi_rank_checks.placement(seen({(10, "GPU-a"), (10, "GPU-b"), (11, "GPU-b")}))
    assert multi_rank_checks.placement(seen(set()))  # never seen: not proven
    parent = multi_rank_checks.parent_row(seen({(1, "GPU-a"), (10, "GPU-a"), (11, "GPU-b")}), True)
    assert parent.status == "FAIL" and "parent 1" in parent.detail
    assert multi_rank_checks.parent_row(seen({(10, "GPU-a"), (11, "GPU-b")}), True).status == "ok"
    assert multi_rank_checks.parent_row(seen(set()), False).status == "info"


def test_metrics_steps_queue_line_and_checkpoint_warnings_are_read() -> None:
    rows: list[dict[str, Any]] = [
        {"step": 1, "loss": 2.0},
        {"step": 2, "loss": 1.5},
        {"step": 2, "loss": None, "train_runtime_s": 3},
    ]
    assert steps_logged_once(rows, 2) is None
    assert "more than once: [2]" in str(steps_logged_once([*rows, {"step": 2, "loss": 1.5}], 2))
    assert "never logged: [3]" in str(steps_logged_once(rows, 3))
    log = "loading\nqueue: holding GPU-5a1b-22 after 3 s\nstep 1\n"
    assert held_devices(log) == ["GPU-5a1b-22"]
    assert held_devices("queue: holding GPU-a,GPU-b after 0 s\n") == ["GPU-a", "GPU-b"]
    assert held_devices("queue: holding the CPU slot after 0 s\n") == []
    warning = "UserWarning: None of the inputs have requires_grad=True. Gradients will be None"
    assert checkpoint_warnings(f"step 1\n{warning}\nstep 2\n") == [warning]
    assert checkpoint_warnings("step 1\nstep 2\n") == []


def test_a_failed_check_becomes_a_row_and_verdicts_name_their_problems() -> None:
    def boom() -> Row:
        raise RuntimeError("no GPU 1")

    assert guarded("x", boom) == (Row("x", "FAIL", "RuntimeError: no GPU 1"), None)
    assert multi_rank_checks.verdict("x", ["a", "b"], "fine").detail == "a; b"
    assert multi_rank_checks.verdict("x", [], "fine", unverified="why").status == "info"
    assert multi_rank_checks.verdict("x", [], "fine") == Row("x", "ok", "fine")
