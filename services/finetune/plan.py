"""Preflight: everything worth knowing before a job takes the GPU for hours."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

from services.errors import UsageError
from services.finetune.data import (
    Example,
    TokenStats,
    check_columns,
    empty_fields,
    example_lengths,
    load_rows,
    render,
    token_stats,
)
from services.finetune.model import count_parameters, resolve_model
from services.finetune.spec import JobSpec
from services.fit import Device, ModelShape, Workload, assigned_device, host_device, training_bytes, verdict
from services.gpu import Gpu, detect_gpus

BITS = {"lora": 16, "qlora": 4, "lora-8bit": 8}
CHECKPOINT_BYTES_PER_TRAINABLE = 4 + 8  # fp32 adapter weights + AdamW moments


@dataclass(frozen=True)
class MemoryLine:
    """The estimate with and without gradient checkpointing."""

    checkpointing: bool
    bytes: int
    verdict: str


@dataclass(frozen=True)
class Plan:
    """The preflight report of one job."""

    rows: int
    train_rows: int
    eval_rows: int
    empty: list[tuple[int, str]]
    examples: list[Example]
    tokens: TokenStats
    trainable_params: int
    total_params: int
    device: Device
    precision_bits: int
    memory: list[MemoryLine]
    disk_bytes: int
    steps: int
    refusal: str | None
    suggestions: list[str] = field(default_factory=list)

    @property
    def fits(self) -> bool:
        """The job as configured (memory[0]) can run here."""
        return self.refusal is None and self.memory[0].verdict in {"fits", "tight"}


def make_plan(spec: JobSpec, *, cache_dir: Path | None, gpus: list[Gpu] | None = None) -> Plan:
    """Check data, count parameters, estimate memory and disk, and say what to change if it won't fit.

    `gpus`: plan against these GPUs instead of detecting them ([] plans for this CPU machine)."""
    from transformers import AutoTokenizer

    rows = load_rows(spec.dataset.path)
    check_columns(spec, rows)
    resolved = resolve_model(spec, cache_dir=cache_dir)
    tokenizer = AutoTokenizer.from_pretrained(resolved.path)
    lengths = example_lengths(spec, rows, tokenizer)
    trainable, total = count_parameters(spec, resolved)
    gpus = detect_gpus() if gpus is None else gpus
    count = requested_gpus(spec, gpus)
    device = _device_for(gpus, count)
    bits = BITS[spec.lora.method] if device.cuda else 32
    n_eval = max(1, int(len(rows) * spec.dataset.eval_split)) if spec.dataset.eval_split else 0
    memory = _memory(spec, resolved.config, total, device, bits)
    refusal = gpu_count_refusal(spec, gpus) or quantisation_refusal(spec.lora.method, cuda=device.cuda)
    plan = Plan(
        rows=len(rows),
        train_rows=len(rows) - n_eval,
        eval_rows=n_eval,
        empty=empty_fields(spec, rows),
        examples=[render(spec, row, tokenizer) for row in rows[:3]],
        tokens=token_stats(lengths, spec.training.max_seq_length),
        trainable_params=trainable,
        total_params=total,
        device=device,
        precision_bits=bits,
        memory=memory,
        disk_bytes=(spec.training.keep_checkpoints + 1) * trainable * CHECKPOINT_BYTES_PER_TRAINABLE,
        steps=_steps(spec, len(rows) - n_eval),
        refusal=refusal,
    )
    return _with_suggestions(plan, spec)


def _memory(spec: JobSpec, config: dict[str, object], params: int, device: Device, bits: int) -> list[MemoryLine]:
    shape = ModelShape.from_config(config, params=params)
    lines = []  # the job's own setting first, then the other one
    for ckpt in (spec.training.gradient_checkpointing, not spec.training.gradient_checkpointing):
        work = Workload(spec.training.max_seq_length, spec.training.micro_batch_size, spec.lora.r, ckpt)
        need = training_bytes(shape, work, bits)
        lines.append(MemoryLine(ckpt, need, verdict(need, device, needs_cuda=bits < 16)))
    return lines


def requested_gpus(spec: JobSpec, gpus: list[Gpu]) -> int:
    """How many devices the job asks for: `training.gpus` (a number, or "all" of `gpus`), else one per process."""
    wanted = getattr(spec.training, "gpus", None)  # the field arrives with the machine-wide queue
    if wanted == "all":
        return max(len(gpus), 1)
    return int(wanted) if isinstance(wanted, int) and wanted > 0 else spec.training.num_processes


def _device_for(gpus: list[Gpu], count: int) -> Device:
    """The job's devices: MIG instances only for a single-device job (CUDA shows a process one)."""
    usable = gpus if count == 1 else [g for g in gpus if not g.mig]
    return assigned_device(usable, count) if usable else host_device(None, None)


def gpu_count_refusal(spec: JobSpec, gpus: list[Gpu]) -> str | None:
    """Why this machine cannot give the job the GPUs it asks for, or None (always None without GPUs:
    a CPU machine runs several processes with gloo)."""
    if not gpus:
        return None
    processes, count = spec.training.num_processes, requested_gpus(spec, gpus)
    whole = [g for g in gpus if not g.mig]
    found = f"this machine has {len(gpus)} GPU device(s)" + (f", {len(whole)} of them whole GPUs" if count > 1 else "")
    if processes > len(gpus):
        return f"training.num_processes = {processes} but {found}; set it to at most {len(gpus)}"
    if count < processes:
        return f"training.gpus = {count} is fewer than training.num_processes = {processes}; one process per GPU"
    if count > 1 and count > len(whole):
        return f"the job asks for {count} GPUs but {found} (MIG instances serve one single-GPU job each)"
    return None


def _steps(spec: JobSpec, train_rows: int) -> int:
    t = spec.training
    if t.max_steps > 0:
        return t.max_steps
    per_epoch = -(-train_rows // (t.micro_batch_size * t.gradient_accumulation))
    return max(1, int(per_epoch * t.epochs))


def quantisation_refusal(method: str, *, cuda: bool) -> str | None:
    """Why a 4-/8-bit method cannot run here, or None: it needs CUDA and the bitsandbytes package."""
    if method == "lora":
        return None
    if not cuda:
        return f'lora.method = "{method}" needs a CUDA GPU; use lora.method = "lora" on this CPU machine'
    if importlib.util.find_spec("bitsandbytes") is None:
        return f'lora.method = "{method}" needs bitsandbytes: pip install "llm-workbench[gpu]", or use "lora"'
    return None


def require_kbit_support(spec: JobSpec, *, cuda: bool) -> None:
    """Refuse a k-bit job where it cannot run (the same check and words as the plan's refusal)."""
    refusal = quantisation_refusal(spec.lora.method, cuda=cuda)
    if refusal:
        raise UsageError(refusal, hint='lora.method = "lora" runs anywhere')


def _with_suggestions(plan: Plan, spec: JobSpec) -> Plan:
    current = plan.memory[0]
    if current.verdict not in {"does not fit", "tight"}:
        return plan
    t, tips = spec.training, []
    if not t.gradient_checkpointing and plan.memory[1].verdict in {"fits", "tight"}:
        tips.append("set training.gradient_checkpointing = true")
    if spec.lora.method == "lora" and plan.device.cuda:
        tips.append('use lora.method = "qlora" (4-bit base weights)')
    if t.micro_batch_size > 1:
        tips.append(
            f"set training.micro_batch_size = {t.micro_batch_size // 2} and "
            f"training.gradient_accumulation = {t.gradient_accumulation * 2} (same effective batch)"
        )
    if plan.tokens.p95 < t.max_seq_length:
        tips.append(f"set training.max_seq_length = {plan.tokens.p95} (95 % of rows fit)")
    return Plan(**{**plan.__dict__, "suggestions": tips})
