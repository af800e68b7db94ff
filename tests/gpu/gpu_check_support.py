"""Pieces of the GPU check (tests/gpu/check_gpu_server.py) that also run on a CPU: carried wheels, the
generated models and dataset, the job specs, the figures (context memory, MFU), and watching a job
(its status and which process uses which GPU, from `nvidia-smi --query-compute-apps`)."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
LLAMA_32_1B = {
    "vocab_size": 128256,
    "hidden_size": 2048,
    "intermediate_size": 8192,
    "num_hidden_layers": 16,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 64,
    "max_position_embeddings": 4096,
    "rope_theta": 500000.0,
    "tie_word_embeddings": True,
}
"""Llama-3.2-1B's dimensions (1.24 B parameters); the weights are random, nothing is downloaded."""
TINY = {**LLAMA_32_1B, "vocab_size": 512, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2}
TINY |= {"num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "max_position_embeddings": 512}
"""The same architecture at demo size, for `--dry-run` and the CPU test."""
SMALL = {**TINY, "hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 4, "head_dim": 64}
SMALL |= {"max_position_embeddings": 2048}
"""A small model for the multi-rank and queue checks: they prove behaviour, not speed."""
WIDE_VOCAB = {**SMALL, "vocab_size": 1 << 20}
"""SMALL with a 1M-token output layer: its logits (2 MB a token in bf16) put any large batch out of memory."""
UUID = re.compile(r"(GPU|MIG)-[0-9A-Za-z-]{1,64}")

REQUIRED = {  # module -> pip name: what the check imports beyond the standard library
    "torch": "torch",
    "transformers": "transformers",
    "peft": "peft",
    "accelerate": "accelerate",
    "bitsandbytes": "bitsandbytes",
    "datasets": "datasets",
    "safetensors": "safetensors",
    "tokenizers": "tokenizers",
    "pynvml": "nvidia-ml-py",
    "pydantic": "pydantic",
    "pydantic_settings": "pydantic-settings",
    "platformdirs": "platformdirs",
    "huggingface_hub": "huggingface_hub",
    "tomli_w": "tomli-w",
    "fastapi": "fastapi",
    "prometheus_client": "prometheus-client",
    "httpx": "httpx",
}

PEAK_BF16_FLOPS = {  # dense bf16 tensor-core peak per GPU (vendor datasheets, no sparsity)
    "H200": 989e12,
    "H100 PCIe": 756e12,
    "H100": 989e12,
    "A100": 312e12,
    "L40S": 362e12,
    "L4": 121e12,
    "A10": 125e12,
}


@dataclass
class Row:
    """One line of the check's table."""

    check: str
    status: str  # ok, FAIL, skip, info
    detail: str = ""
    figures: dict[str, Any] = field(default_factory=dict)


def missing_modules() -> list[str]:
    """The pip names of the required modules this interpreter cannot import."""
    return [pip for module, pip in REQUIRED.items() if importlib.util.find_spec(module) is None]


def install_from_wheels(wheels: Path, names: list[str]) -> None:
    """`pip install --no-index --find-links WHEELS NAMES` into this interpreter (nothing from an index)."""
    if names:
        command = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--find-links", str(wheels), *names]
        subprocess.run(command, check=True)


def use_apps() -> None:
    """Make the chatbot and the app kit importable from their folders (as the project's venv does)."""
    for folder in (ROOT / "apps" / "appkit", ROOT / "apps" / "chatbot"):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))


def build_model(folder: Path, dims: dict[str, Any], *, device: str = "cpu") -> Path:
    """A Llama with `dims` and random bf16 weights, with the demo tokenizer, saved to `folder`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from services.demo import TOKEN_IDS, demo_tokenizer

    config = LlamaConfig(**dims, **TOKEN_IDS, hidden_act="silu", rms_norm_eps=1e-5, dtype="bfloat16")
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer = demo_tokenizer()
    tokenizer.model_max_length = int(dims["max_position_embeddings"])
    tokenizer.save_pretrained(folder)
    del model
    return folder


def write_dataset(path: Path, rows: int) -> Path:
    """The demo instruction rows, `rows` of them, as JSONL."""
    from services.demo import instruction_rows

    path.write_text("".join(json.dumps(row) + "\n" for row in instruction_rows(count=rows)))
    return path


def job_spec(
    model: Path,
    dataset: Path,
    *,
    method: str,
    checkpointing: bool,
    seq: int,
    batch: int,
    steps: int,
    name: str | None = None,
    **training_extra: Any,
) -> Any:
    """A job on the generated model: packed full-length blocks, so memory is what the plan assumes;
    `training_extra` adds training fields (num_processes, distributed, gpus, precision)."""
    from services.finetune.spec import parse_spec

    name = name or f"{method}-{'ckpt' if checkpointing else 'nockpt'}"
    training = {"max_steps": steps, "micro_batch_size": batch, "max_seq_length": seq, "packing": True}
    training |= {"gradient_checkpointing": checkpointing, "save_every": steps, "eval_every": steps}
    training |= training_extra
    data = {
        "name": name,
        "model": {"id": str(model)},
        "dataset": {"path": str(dataset), "eval_split": 0},
        "lora": {"method": method, "r": 16},
        "training": training,
    }
    return parse_spec(data, source=name)


def context_bytes() -> int:
    """Memory the CUDA context takes on device 0 beyond PyTorch's pool (NVML's used memory before and
    after the first allocation, less what PyTorch reserved); call it before anything else uses CUDA."""
    import torch

    before = _nvml_used()
    torch.zeros(1, device="cuda")
    torch.cuda.synchronize()
    return max(0, _nvml_used() - before - int(torch.cuda.memory_reserved()))


def _nvml_used() -> int:
    import pynvml

    pynvml.nvmlInit()
    try:
        return int(pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(0)).used)
    finally:
        pynvml.nvmlShutdown()


def peak_flops(name: str) -> float | None:
    """The dense bf16 peak of a GPU by its name, or None for one not in the table."""
    return next((flops for key, flops in PEAK_BF16_FLOPS.items() if key in name), None)


def lora_mfu(tokens_per_s: float, params: int, name: str) -> float | None:
    """Model FLOPs utilisation of LoRA: 4·N per token (forward 2N, activation gradients 2N; the frozen
    base has no weight gradients and the adapter's are negligible), over the GPU's bf16 peak."""
    peak = peak_flops(name)
    return None if peak is None else 4 * params * tokens_per_s / peak


def job_figures(metrics: list[dict[str, Any]]) -> dict[str, float]:
    """Peak memory allocated and the median tokens/s (first logged step left out: warm-up)."""
    peaks = [m["gpu_memory_bytes"] for m in metrics if m.get("gpu_memory_bytes")]
    speeds = sorted(m["tokens_per_s"] for m in metrics[1:] if m.get("tokens_per_s"))
    return {
        "peak_bytes": float(max(peaks, default=0)),
        "tokens_per_s": speeds[len(speeds) // 2] if speeds else 0.0,
    }


def table(rows: list[Row]) -> str:
    """The rows as a fixed-width table."""
    width = max(len(r.check) for r in rows) + 2
    lines = [f"{'check':<{width}}{'status':<8}detail", "-" * (width + 60)]
    lines += [f"{r.check:<{width}}{r.status:<8}{r.detail}" for r in rows]
    return "\n".join(lines)


@dataclass
class Observed:
    """A job as the check saw it: its last status, the (pid, GPU uuid) pairs nvidia-smi listed while it
    ran, the parent's pid (status.json) and the ranks' (their pid files), and the seconds it was watched."""

    folder: Path
    status: Any
    apps: set[tuple[int, str]]
    parent: int | None
    ranks: list[int]
    seconds: float

    def gpus_of(self, pid: int | None) -> set[str]:
        """The GPUs nvidia-smi ever showed `pid` on."""
        return {uuid for app_pid, uuid in self.apps if app_pid == pid}


def parse_compute_apps(text: str) -> list[tuple[int, str]]:
    """`nvidia-smi --query-compute-apps=pid,gpu_uuid --format=csv,noheader` as (pid, uuid) pairs; any
    other line (a header, "No running processes found", a malformed row) is left out."""
    pairs = []
    for line in text.splitlines():
        parts = [part.strip() for part in line.split(",")]
        if len(parts) == 2 and parts[0].isdigit() and UUID.fullmatch(parts[1]):
            pairs.append((int(parts[0]), parts[1]))
    return pairs


def compute_apps() -> list[tuple[int, str]]:
    """The processes holding CUDA memory now, with their GPU; [] without nvidia-smi."""
    from services.gpu import _smi_run

    return parse_compute_apps(_smi_run("--query-compute-apps=pid,gpu_uuid", "--format=csv,noheader") or "")


def start_job(spec: Any, work: Path) -> Path:
    """Create the job in the check's workspace and launch it as `finetune run` does; its folder."""
    from services.finetune import jobs
    from services.store import Store

    folder = jobs.create_job(spec, data_dir=work / "data", store=Store(work / "data"))
    jobs.launch(folder, cache_dir=work / "hub")
    return folder


def watch(folder: Path, *, timeout: float, until: Any = None) -> Observed:
    """Poll the job about once a second until it ends, `until(status)` holds or `timeout` passes,
    noting the processes nvidia-smi shows on each GPU meanwhile."""
    from services.finetune import jobs
    from services.finetune.distributed import rank_pids

    started = time.monotonic()
    apps: set[tuple[int, str]] = set()
    while True:
        status = jobs.read_status(folder)
        elapsed = time.monotonic() - started
        if status.state not in jobs.ACTIVE or elapsed > timeout or (until is not None and until(status)):
            return Observed(folder, status, apps, status.pid, rank_pids(folder), elapsed)
        apps |= set(compute_apps())
        time.sleep(1)


def stop_if_active(folder: Path) -> None:
    """Cancel the job if it still runs (a check that gave up on it), so it frees its GPUs for the next check."""
    from services.errors import UsageError
    from services.finetune import jobs

    if jobs.read_status(folder).state in jobs.ACTIVE:
        with suppress(UsageError):  # it ended meanwhile
            jobs.cancel(folder, grace_s=30)


def guarded(check: str, run: Callable[[], Any]) -> tuple[Row, Any]:
    """`run()`'s (row, value), or a FAIL row naming the exception (the table always completes)."""
    try:
        result = run()
    except Exception as exc:
        return Row(check, "FAIL", f"{type(exc).__name__}: {str(exc)[:300]}"), None
    return result if isinstance(result, tuple) else (result, None)


def steps_logged_once(metrics: list[dict[str, Any]], max_steps: int) -> str | None:
    """None when metrics.jsonl has one training row (with a loss) for each step 1..max_steps, else what is wrong."""
    steps = [row["step"] for row in metrics if row.get("loss") is not None]
    twice = sorted({step for step in steps if steps.count(step) > 1})
    if twice:
        return f"steps logged more than once: {twice[:5]}"
    missing = sorted(set(range(1, max_steps + 1)) - set(steps))
    return f"steps never logged: {missing[:5]}" if missing else None


def held_devices(log: str) -> list[str]:
    """The devices in the trainer's `queue: holding ... after N s` line of train.log ([] without one)."""
    found = re.search(r"^queue: holding (\S+) after", log, flags=re.MULTILINE)
    return [] if found is None else [d for d in found.group(1).split(",") if UUID.fullmatch(d)]


def checkpoint_warnings(log: str) -> list[str]:
    """train.log lines of the warnings gradient checkpointing gives without use_reentrant=False."""
    return [line.strip() for line in log.splitlines() if "use_reentrant" in line or "requires_grad" in line]


def log_tail(folder: Path, chars: int = 300) -> str:
    path = folder / "train.log"
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def skip_row(check: str, *, have: int, need: int = 2) -> Row:
    """The row of a check this machine cannot run for want of GPUs."""
    return Row(check, "skip", f"needs {need} GPUs, this machine has {have}")
