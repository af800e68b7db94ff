"""The GPU server check: everything issue 16 asks of a machine with NVIDIA GPUs, about ten minutes on one.

Run from the repository root on the GPU machine (CUDA torch must be installed; see below):

    python -m tests.gpu.check_gpu_server [--wheels DIR] [--work DIR] [--steps N] [--json FILE]
    python -m tests.gpu.check_gpu_server --dry-run      # any machine: the CPU-safe parts at demo size

It generates a model with Llama-3.2-1B's dimensions (random bf16 weights, the demo tokenizer; nothing is
downloaded) and a packed instruction dataset, then checks, printing one table:

- detection: NVML and the `nvidia-smi` fallback list the same devices as torch (name, memory, uuid),
  and `CUDA_VISIBLE_DEVICES=<uuid>` (what a job is given) shows a child process exactly that GPU;
- precision: `auto` resolves to bf16 only where the GPU has it natively (never emulated bf16);
- jobs end to end through the workbench's own launcher: LoRA, QLoRA with and without gradient
  checkpointing, 8-bit LoRA; each must complete with an adapter; peak memory (the trainer's
  max_memory_allocated + the CUDA context) against the plan's estimate (goal: within 15 %);
- LoRA tokens/s and MFU (4·N FLOPs per token over the GPU's dense bf16 peak);
- merge of the QLoRA adapter (saved in bf16, not fp32);
- 4-bit chat with the adapter (the Playground's local backend) and the chatbot engine in 4-bit.

Exit status: 0 when every check passed, 1 when one failed, 2 without CUDA (unless --dry-run).

**A bare GPU machine.** The check needs CUDA torch and the project's libraries. A lent machine that
cannot reach an index installs from wheels carried with the working tree: on a machine with the same
Python and architecture, `pip download -d gpu-wheels bitsandbytes==0.50.2 peft accelerate datasets
nvidia-ml-py pydantic pydantic-settings platformdirs tomli-w fastapi prometheus-client httpx` (plus
`torch==2.13.0` from PyPI, a CUDA build, when the machine lacks torch: it is too big for a 64 MiB
carry, so such a machine must bring its own), then run with `--wheels gpu-wheels`: whatever of
`REQUIRED` (gpu_check_support.py) is missing is installed with `pip install --no-index --find-links`.
Inside a fresh venv use `python -m venv --system-site-packages` so a preinstalled CUDA torch is used.

**Multi-rank, queue and cancel checks** (issue 16 section 3: what only a GPU can show; in
`multi_rank_checks.py`, on a small generated model, a few steps each). Those marked (2 GPUs) give a
row "skip: needs 2 GPUs, this machine has N" on a machine with fewer; the others run on one GPU too:

- [x] DDP LoRA (nccl): completes, each step logged once in metrics.jsonl, one adapter; a cancel stops
  both ranks at the same step (one checkpoint-N) through the CUDA-tensor all-reduce (2 GPUs)
- [x] QLoRA and lora-8bit DDP: each rank on its own GPU in `nvidia-smi --query-compute-apps` (2 GPUs)
- [x] QLoRA + FSDP with and without gradient checkpointing: trains in bf16 (its quant storage); the
  FULL_STATE_DICT adapter has whole, trained LoRA weights and loads onto a 4-bit base; a cancel
  checkpoints within the grace period (2 GPUs)
- [x] LoRA + FSDP in bf16 (2 GPUs)
- [x] the parent (status.json's pid) never holds CUDA memory while its ranks run (2 GPUs)
- [x] precision `auto`: bf16 only with native bf16, else fp16; every job's manifest records it
- [x] a QLoRA merge is saved in bf16 (the `merge (qlora)` row)
- [x] the queue's grant reaches the job: a `gpus = 1` job's train.log holds one GPU uuid and its process
  is seen on that GPU only; with a 4-bit chat model registered on GPU 0 a fine-tune gets another GPU,
  or waits until the chat model is gone on a one-GPU machine
- [x] out of memory on a rank fails the job with "CUDA out of memory at step N" within 300 s
- [x] a forced cancel (grace 0.1 s) leaves no process of the job on a GPU
- [x] k-bit with gradient checkpointing logs no "use_reentrant" / "requires_grad" warning

With nvidia-smi showing another PID namespace's pids (a container), the rows that match pids say
"info" with what they could not check.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.gpu import gpu_check_support as support
from tests.gpu import multi_rank_checks as ranks
from tests.gpu.gpu_check_support import Observed, Row

GIB = 1024**3
JOBS = [("lora", False), ("qlora", True), ("qlora", False), ("lora-8bit", True)]
GOAL = 0.15


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.wheels:
        support.install_from_wheels(args.wheels, support.missing_modules())
    import torch

    if not torch.cuda.is_available() and not args.dry_run:
        print("no CUDA: this check needs an NVIDIA GPU and a CUDA build of torch", end=" ")
        print(f"(torch {torch.__version__}); `--dry-run` runs the CPU-safe parts", file=sys.stdout)
        return 2
    work = args.work or Path(tempfile.mkdtemp(prefix="gpu-check-"))
    rows = dry_run(work) if args.dry_run else gpu_checks(work, steps=args.steps)
    print(support.table(rows))
    if args.json:
        args.json.write_text(json.dumps([row.__dict__ for row in rows], indent=2, default=str))
    return 1 if any(row.status == "FAIL" for row in rows) else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tests.gpu.check_gpu_server", description=__doc__.split("\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="the CPU-safe parts at demo size; no GPU needed")
    parser.add_argument("--wheels", type=Path, help="install missing packages from this folder of wheels first")
    parser.add_argument("--work", type=Path, help="folder for the model, data and jobs (default: a temp folder)")
    parser.add_argument("--steps", type=int, default=12, help="optimiser steps per job (default 12)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    return parser


def dry_run(work: Path) -> list[Row]:
    """What runs without a GPU: detection, the tiny model, the dataset and each job's plan."""
    from services.finetune.plan import make_plan
    from services.gpu import Gpu, describe, detect_gpus

    rows = [Row("detection", "info", describe(detect_gpus()))]
    model = support.build_model(work / "model", support.TINY)
    dataset = support.write_dataset(work / "rows.jsonl", 200)
    rows.append(Row("model", "ok", f"{_params(model) / 1e6:.2f} M parameters (demo size)"))
    pretend = [Gpu(0, "NVIDIA H200", 141 * GIB, 140 * GIB, uuid="GPU-dry-run")]
    for method, ckpt in JOBS:
        spec = support.job_spec(model, dataset, method=method, checkpointing=ckpt, seq=128, batch=2, steps=2)
        plan = make_plan(spec, cache_dir=work / "hub", gpus=pretend)
        refused = f"; refused here: {plan.refusal}" if plan.refusal else ""
        rows.append(Row(f"plan {spec.name}", "ok", f"estimate {plan.memory[0].bytes / GIB:.2f} GiB{refused}"))
    multi = ranks.specs(model, model, dataset, gpus=len(detect_gpus()))
    rows.append(Row("multi-rank job specs", "ok", ", ".join(multi)))
    rows.append(Row("GPU checks", "skip", "--dry-run"))
    return rows


def gpu_checks(work: Path, *, steps: int) -> list[Row]:
    """The one-process checks (on the GPU the queue grants), then the multi-rank ones (multi_rank_checks)."""
    context = support.context_bytes()
    rows = [*detection_rows(), precision_row()]
    started = time.monotonic()
    model = support.build_model(work / "model", support.LLAMA_32_1B, device="cuda")
    dataset = support.write_dataset(work / "rows.jsonl", 4000)
    params = _params(model)
    rows.append(Row("model", "ok", f"{params / 1e9:.3f} B parameters in {time.monotonic() - started:.0f} s"))
    observed: dict[str, Observed] = {}
    for method, ckpt in JOBS:
        spec = support.job_spec(model, dataset, method=method, checkpointing=ckpt, seq=1024, batch=4, steps=steps)
        row, obs = support.guarded(f"job {spec.name}", lambda s=spec: job_row(s, work, context, params))
        rows.append(row)
        if obs is not None:
            observed[spec.name] = obs
    rows.append(precision_jobs_row([obs.folder for obs in observed.values()]))
    qlora = observed["qlora-ckpt"].folder if "qlora-ckpt" in observed else None
    rows.append(support.guarded("merge (qlora)", lambda: merge_row(qlora, work))[0])
    rows.append(support.guarded("chat 4-bit + adapter", lambda: chat_row(model, qlora, work))[0])
    rows.append(support.guarded("chatbot engine 4-bit", lambda: chatbot_row(model, qlora))[0])
    return rows + ranks.checks(work, dataset=dataset, single=observed)


def detection_rows() -> list[Row]:
    """NVML, nvidia-smi and torch agree; a uuid in CUDA_VISIBLE_DEVICES selects that GPU."""
    import torch

    from services.gpu import _nvml_devices, _smi_devices, visible_devices

    nvml, smi = _nvml_devices() or [], _smi_devices()
    props = [torch.cuda.get_device_properties(i) for i in range(torch.cuda.device_count())]
    seen = [(p.name, "GPU-" + str(p.uuid).removeprefix("GPU-")) for p in props]
    same = [(g.name, g.uuid) for g in nvml] == seen and [g.uuid for g in smi] == [g.uuid for g in nvml]
    memory_ok = all(
        abs(g.total_bytes - p.total_memory) / g.total_bytes < 0.02 for g, p in zip(nvml, props, strict=False)
    )
    rows = [Row("detection: NVML = nvidia-smi = torch", "ok" if same and memory_ok else "FAIL", f"{seen}")]
    if nvml:
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": visible_devices(nvml[:1])}
        code = "import torch; print(torch.cuda.device_count(), torch.cuda.get_device_properties(0).uuid)"
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
        ok = out.stdout.split()[:1] == ["1"] and nvml[0].uuid.removeprefix("GPU-") in out.stdout
        rows.append(Row("CUDA_VISIBLE_DEVICES=<uuid>", "ok" if ok else "FAIL", out.stdout.strip() or out.stderr[-200:]))
    return rows


def precision_row() -> Row:
    import torch

    from services.finetune.training import resolve_precision

    native = torch.cuda.is_bf16_supported(including_emulation=False)
    spec = support.job_spec(Path("m"), Path("d"), method="lora", checkpointing=False, seq=8, batch=1, steps=1)
    chosen = resolve_precision(spec)
    ok = chosen == ("bf16" if native else "fp16")
    return Row("precision auto", "ok" if ok else "FAIL", f"{chosen} (native bf16: {native})")


def precision_jobs_row(folders: list[Path]) -> Row:
    """Every completed job trained in what `auto` (or its explicit precision) resolves to here (its manifest)."""
    from services.finetune.spec import load_spec
    from services.finetune.training import resolve_precision

    check = "precision in the jobs"
    wrong = []
    for folder in folders:
        manifest = json.loads((folder / "adapter" / "manifest.json").read_text())
        expected = resolve_precision(load_spec(folder / "job.toml"))
        if manifest.get("precision") != expected:
            wrong.append(f"{folder.name}: {manifest.get('precision')}, not {expected}")
    if not folders:
        return Row(check, "skip", "no job completed")
    return Row(check, "FAIL" if wrong else "ok", "; ".join(wrong) or f"{len(folders)} manifests as resolved")


def job_row(spec: Any, work: Path, context: int, params: int) -> tuple[Row, Observed | None]:
    """Launch the job as `finetune run` would, watch it, and compare its peak memory with the plan."""
    from services.finetune import jobs
    from services.finetune.plan import make_plan

    plan = make_plan(spec, cache_dir=work / "hub")
    obs = support.watch(support.start_job(spec, work), timeout=420)
    folder, status = obs.folder, obs.status
    if status.state != "completed" or not (folder / "adapter" / "adapter_config.json").is_file():
        tail = (folder / "train.log").read_text()[-300:] if (folder / "train.log").exists() else ""
        return Row(f"job {spec.name}", "FAIL", f"{status.state}: {status.error or tail}"), None
    figures = support.job_figures(jobs.read_metrics(folder))
    measured = figures["peak_bytes"] + context
    estimate = plan.memory[0].bytes
    error = (estimate - measured) / measured if measured else float("inf")
    detail = f"peak {measured / GIB:.2f} GiB, estimate {estimate / GIB:.2f} GiB ({error:+.0%})"
    detail += f", {figures['tokens_per_s']:.0f} tokens/s"
    if spec.lora.method == "lora":
        mfu = support.lora_mfu(figures["tokens_per_s"], params, plan.device.name)
        detail += f", MFU {mfu:.0%}" if mfu is not None else ", MFU n/a (GPU not in the table)"
    status_word = "ok" if abs(error) <= GOAL else "FAIL"
    return Row(f"job {spec.name}", status_word, detail, {**figures, "estimate": estimate}), obs


def merge_row(job: Path | None, work: Path) -> Row:
    from safetensors import safe_open

    from services.finetune.merge import merge_adapter

    if job is None:
        return Row("merge (qlora)", "skip", "the QLoRA job failed")
    out = merge_adapter(job, output=work / "merged", cache_dir=work / "hub")
    first = sorted(out.glob("*.safetensors"))[0]
    with safe_open(str(first), framework="pt") as weights:
        dtype = str(weights.get_tensor(next(iter(weights.keys()))).dtype)
    return Row("merge (qlora)", "ok" if dtype == "torch.bfloat16" else "FAIL", f"saved as {dtype}")


def chat_row(model: Path, job: Path | None, work: Path) -> Row:
    from services.chat.session import ChatEngine, collect
    from services.chat.variant import Variant

    if job is None:
        return Row("chat 4-bit + adapter", "skip", "the QLoRA job failed")
    engine = ChatEngine(cache_dir=work / "hub")
    data = {"name": "q", "model": str(model), "adapter": str(job / "adapter"), "load_4bit": True}
    variant = Variant.model_validate({**data, "params": {"max_new_tokens": 16}})
    answer = collect(engine.stream(variant, "What is the GPU server?"))
    four_bit = bool(getattr(engine.models.get(variant).model, "is_loaded_in_4bit", False))
    engine.models.close()
    ok = answer.error is None and four_bit
    return Row("chat 4-bit + adapter", "ok" if ok else "FAIL", f"4-bit: {four_bit}, error: {answer.error}")


def chatbot_row(model: Path, job: Path | None) -> Row:
    support.use_apps()
    from chatbot.engine import load_language_model

    adapter = job / "adapter" if job is not None else None
    lm = load_language_model(model, adapter, load_4bit=True, merge_adapter=True)
    ids = lm.tokenizer("hello", return_tensors="pt")["input_ids"].to("cuda")
    out = lm.model.generate(input_ids=ids, attention_mask=ids.ne(-1), max_new_tokens=8, do_sample=False)
    ok = lm.quantized and out.shape[1] > ids.shape[1]
    return Row("chatbot engine 4-bit", "ok" if ok else "FAIL", f"quantized: {lm.quantized}, adapter: {lm.adapter}")


def _params(model: Path) -> int:
    from safetensors import safe_open

    total = 0
    for file in model.glob("*.safetensors"):
        with safe_open(str(file), framework="pt") as weights:
            total += sum(_numel(weights, key) for key in weights.keys())  # noqa: SIM118
    return total


def _numel(weights: Any, key: str) -> int:
    count = 1
    for size in weights.get_slice(key).get_shape():
        count *= int(size)
    return count


if __name__ == "__main__":
    sys.exit(main())
