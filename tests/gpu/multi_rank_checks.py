"""The GPU check's multi-rank and queue rows (tests/gpu/check_gpu_server.py): what issue 16 section 3
asks of multi-GPU, k-bit and cancelled jobs that only NVIDIA GPUs can show.

Every job runs through the workbench's own launcher (`jobs.create_job` / `jobs.launch`, as `finetune
run` does) on the small generated model (`SMALL`; `WIDE_VOCAB` for the out-of-memory job), a few steps
each: they prove behaviour, not speed. Which process holds which GPU comes from `nvidia-smi
--query-compute-apps=pid,gpu_uuid`, sampled while each job runs. Checks that need two GPUs give a skip
row on a machine with fewer; the others run with as many ranks as the machine has GPUs (at most two).

In a container nvidia-smi may list the host's pids, which match no process here: the rows that match
pids then say so ("info") instead of passing or failing.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.gpu import gpu_check_support as support
from tests.gpu.gpu_check_support import Observed, Row

JOB_TIMEOUT_S = 420
OOM_LIMIT_S = 300
"""A job with a rank out of memory must be reported failed within this (torchrun's shutdown timeout)."""
GRACE_S = 120.0
"""The cancels that must checkpoint get this long before they are forced."""
FORCE_S = 0.1
"""The forced cancel's grace: too short for any checkpoint."""
FREED_S = 60.0
HOLD_S = 20.0
"""How long a job must stay queued while a chat model holds the only GPU."""
STEPS = 8
LONG = 100_000
"""max_steps of a job the check cancels (it never gets there)."""
NO_PIDS = "nvidia-smi lists no pid of this PID namespace (a container?)"
TWO_GPU_CHECKS = [
    "ddp lora: steps, adapter",
    "parent holds no CUDA memory",
    "ddp lora: cancel",
    "ddp qlora: a GPU per rank",
    "ddp lora-8bit: a GPU per rank",
    "fsdp qlora-ckpt",
    "fsdp qlora-nockpt",
    "fsdp qlora: cancel",
    "fsdp lora bf16",
]


def specs(small: Path, wide: Path, dataset: Path, *, gpus: int) -> dict[str, Any]:
    """Every job these checks run, by name (the unit test builds them on a CPU)."""
    ranks = max(1, min(2, gpus))
    ddp: dict[str, Any] = {"num_processes": 2}
    fsdp: dict[str, Any] = {"num_processes": 2, "distributed": "fsdp", "precision": "bf16"}

    def job(name: str, method: str, model: Path = small, **extra: Any) -> Any:
        fields: dict[str, Any] = {"checkpointing": False, "seq": 256, "batch": 2, "steps": STEPS} | extra
        return support.job_spec(model, dataset, method=method, name=name, **fields)

    return {
        "ddp-lora": job("ddp-lora", "lora", **ddp),
        "ddp-lora-cancel": job("ddp-lora-cancel", "lora", steps=LONG, **ddp),
        "ddp-qlora": job("ddp-qlora", "qlora", **ddp),
        "ddp-lora-8bit": job("ddp-lora-8bit", "lora-8bit", **ddp),
        "fsdp-qlora-ckpt": job("fsdp-qlora-ckpt", "qlora", checkpointing=True, **fsdp),
        "fsdp-qlora-nockpt": job("fsdp-qlora-nockpt", "qlora", **fsdp),
        "fsdp-qlora-cancel": job("fsdp-qlora-cancel", "qlora", checkpointing=True, steps=LONG, **fsdp),
        "fsdp-lora-bf16": job("fsdp-lora-bf16", "lora", **fsdp),
        "chat-held": job("chat-held", "lora", steps=2, gpus=1),
        "forced-cancel": job("forced-cancel", "lora", steps=LONG, num_processes=ranks),
        "oom": job("oom", "lora", wide, seq=1024, batch=4096, steps=2, num_processes=ranks),
    }


def checks(work: Path, *, dataset: Path, single: dict[str, Observed]) -> list[Row]:
    """Every row of this module; `single` holds the one-process jobs the script already ran, by name."""
    import torch

    gpus = torch.cuda.device_count()
    small = support.build_model(work / "small", support.SMALL)
    wide = support.build_model(work / "wide", support.WIDE_VOCAB)
    job = specs(small, wide, dataset, gpus=gpus)
    shared = pid_namespace_shared()
    rows = [grant_row(single.get("lora-nockpt"), shared)]
    rows.append(support.guarded("queue: chat model on GPU 0", lambda: chat_hold_row(job["chat-held"], work, gpus))[0])
    rows.append(support.guarded("out of memory", lambda: oom_row(job["oom"], work))[0])
    rows.append(support.guarded("forced cancel", lambda: forced_cancel_row(job["forced-cancel"], work, shared))[0])
    kbit_ckpt = [obs.folder for name, obs in single.items() if name in ("qlora-ckpt", "lora-8bit-ckpt")]
    skipped = two_gpu_skips(gpus)
    rows += skipped or two_gpu_rows(job, work, small, shared, kbit_ckpt)
    return [*rows, reentrant_row(kbit_ckpt)]


def two_gpu_skips(gpus: int) -> list[Row]:
    """The skip rows of the two-GPU checks on a machine with fewer GPUs; [] with two or more."""
    return [support.skip_row(check, have=gpus) for check in TWO_GPU_CHECKS] if gpus < 2 else []


def two_gpu_rows(job: dict[str, Any], work: Path, small: Path, shared: bool, kbit_ckpt: list[Path]) -> list[Row]:
    """Items 1-5 of the list in check_gpu_server's docstring; `kbit_ckpt` gets the FSDP QLoRA job's folder."""
    first, parent = support.guarded("ddp lora: steps, adapter", lambda: ddp_lora_rows(job["ddp-lora"], work, shared))
    rows = [first, parent or Row("parent holds no CUDA memory", "skip", "the DDP LoRA job did not run")]
    rows.append(
        support.guarded("ddp lora: cancel", lambda: cancel_row("ddp lora: cancel", job["ddp-lora-cancel"], work))[0]
    )
    for name in ("ddp-qlora", "ddp-lora-8bit"):
        check = f"{name.replace('-', ' ', 1)}: a GPU per rank"
        rows.append(support.guarded(check, lambda n=name, c=check: ddp_row(c, job[n], work, shared))[0])
    for name in ("fsdp-qlora-ckpt", "fsdp-qlora-nockpt"):
        row, folder = support.guarded(name.replace("-", " ", 1), lambda n=name: fsdp_qlora_row(job[n], work, small))
        rows.append(row)
        kbit_ckpt += [folder] if folder is not None and name.endswith("-ckpt") else []
    cancel = job["fsdp-qlora-cancel"]
    rows.append(support.guarded("fsdp qlora: cancel", lambda: cancel_row("fsdp qlora: cancel", cancel, work))[0])
    rows.append(support.guarded("fsdp lora bf16", lambda: fsdp_lora_row(job["fsdp-lora-bf16"], work))[0])
    return rows


def pid_namespace_shared() -> bool:
    """Whether nvidia-smi reports pids of this namespace: it must list this process, which holds a CUDA context."""
    import os

    import torch

    torch.zeros(1, device="cuda")
    torch.cuda.synchronize()
    return os.getpid() in {pid for pid, _ in support.compute_apps()}


def verdict(check: str, problems: list[str], detail: str, *, unverified: str | None = None) -> Row:
    """FAIL naming the problems; else ok, or info when part of the check could not be made here."""
    if problems:
        return Row(check, "FAIL", "; ".join(problems))
    if unverified:
        return Row(check, "info", f"{detail}; not checked: {unverified}")
    return Row(check, "ok", detail)


def run_job(spec: Any, work: Path) -> Observed:
    """Launch the job and watch it to its end (stopping it if it outlives JOB_TIMEOUT_S)."""
    obs = support.watch(support.start_job(spec, work), timeout=JOB_TIMEOUT_S)
    support.stop_if_active(obs.folder)
    return obs


def finished(obs: Observed) -> list[str]:
    """What keeps a job from counting as done: its state, each step logged once, one adapter saved once."""
    from services.finetune import jobs

    if obs.status.state != "completed":
        error = obs.status.error or support.log_tail(obs.folder)
        return [f"{obs.status.state} after {obs.seconds:.0f} s: {error}"]
    logged = support.steps_logged_once(jobs.read_metrics(obs.folder), obs.status.max_steps)
    problems = [logged] if logged else []
    if not (obs.folder / "adapter" / "adapter_config.json").is_file() or not any(
        obs.folder.glob("adapter/adapter_model.*")
    ):
        problems.append("no adapter saved")
    if (obs.folder / ".adapter.staging").exists():
        problems.append(".adapter.staging left behind (a second save?)")
    return problems


def placement(obs: Observed, ranks: int = 2) -> list[str]:
    """Problems unless each rank was seen on exactly one GPU and no two ranks on the same one."""
    where = {pid: obs.gpus_of(pid) for pid in obs.ranks}
    if len(where) != ranks:
        return [f"{len(where)} rank pid files, not {ranks}"]
    used = set().union(*where.values())
    if any(len(gpus) != 1 for gpus in where.values()) or len(used) != ranks:
        return ["ranks not one per GPU: " + ", ".join(f"{pid} on {_short(g)}" for pid, g in where.items())]
    return []


def _short(uuids: set[str] | list[str]) -> str:
    return "[" + ", ".join(sorted(u[:12] for u in uuids)) + "]" if uuids else "no GPU"


def ddp_lora_rows(spec: Any, work: Path, shared: bool) -> tuple[Row, Row]:
    """Item 1 (steps once, one adapter, a GPU per rank) and item 5 (the parent never on a GPU)."""
    obs = run_job(spec, work)
    problems = finished(obs) + (placement(obs) if shared else [])
    detail = f"{obs.status.max_steps} steps logged once, one adapter, in {obs.seconds:.0f} s"
    first = verdict("ddp lora: steps, adapter", problems, detail, unverified=None if shared else NO_PIDS)
    return first, parent_row(obs, shared)


def parent_row(obs: Observed, shared: bool) -> Row:
    held = obs.gpus_of(obs.parent)
    problems = [f"parent {obs.parent} held memory on {_short(held)}"] if held else []
    if shared and not any(obs.gpus_of(pid) for pid in obs.ranks):
        problems.append("the ranks were never seen on a GPU either (sampling missed the job)")
    detail = f"parent {obs.parent} never listed, ranks {obs.ranks} listed"
    return verdict("parent holds no CUDA memory", problems, detail, unverified=None if shared else NO_PIDS)


def ddp_row(check: str, spec: Any, work: Path, shared: bool) -> Row:
    """Item 2: a k-bit DDP job completes with each rank on its own GPU (not both on GPU 0)."""
    obs = run_job(spec, work)
    problems = finished(obs) + (placement(obs) if shared else [])
    where = ", ".join(f"{pid} on {_short(obs.gpus_of(pid))}" for pid in obs.ranks)
    return verdict(check, problems, f"ranks {where}", unverified=None if shared else NO_PIDS)


def cancel_row(check: str, spec: Any, work: Path) -> Row:
    """Item 1 / 3: a cancel at step >= 3 stops every rank at one step: one checkpoint-N, within the grace."""
    from services.finetune import jobs

    folder = support.start_job(spec, work)
    obs = support.watch(folder, timeout=JOB_TIMEOUT_S, until=lambda status: status.step >= 3)
    if obs.status.state != "running":
        support.stop_if_active(folder)
        return Row(check, "FAIL", f"{obs.status.state} before step 3: {obs.status.error or support.log_tail(folder)}")
    started = time.monotonic()
    status = jobs.cancel(folder, grace_s=GRACE_S)
    took = time.monotonic() - started
    checkpoints = sorted(path.name for path in (folder / "checkpoints").glob("checkpoint-*"))
    problems = [] if status.state == "cancelled" and not status.error else [f"{status.state}: {status.error}"]
    problems += [] if len(checkpoints) == 1 else [f"checkpoints {checkpoints}, not one"]
    return verdict(check, problems, f"{checkpoints[:1]} at step {status.step}, {took:.0f} s of {GRACE_S:g}")


def fsdp_qlora_row(spec: Any, work: Path, small: Path) -> tuple[Row, Path | None]:
    """Item 3: QLoRA + FSDP trains in bf16 (its quant storage) and its FULL_STATE_DICT adapter loads on a 4-bit base."""
    check = spec.name.replace("-", " ", 1)
    obs = run_job(spec, work)
    problems = finished(obs)
    problems = problems or fsdp_problems(obs.folder)
    problems = problems or adapter_on_4bit(small, obs.folder / "adapter")
    return verdict(check, problems, f"bf16, adapter loads on the 4-bit base, {obs.seconds:.0f} s"), obs.folder


def fsdp_lora_row(spec: Any, work: Path) -> Row:
    """Item 4: LoRA + FSDP in bf16 completes with one adapter."""
    obs = run_job(spec, work)
    return verdict("fsdp lora bf16", finished(obs) or fsdp_problems(obs.folder), f"{obs.seconds:.0f} s")


def fsdp_problems(folder: Path) -> list[str]:
    """The job ran under FSDP with a full state dict and in bf16 (the manifest's precision)."""
    import json

    import yaml  # type: ignore[import-untyped]

    config = yaml.safe_load((folder / "accelerate.yaml").read_text())
    fsdp = config.get("fsdp_config") or {}
    problems = [] if config.get("distributed_type") == "FSDP" else [f"launched as {config.get('distributed_type')}"]
    problems += [] if fsdp.get("fsdp_state_dict_type") == "FULL_STATE_DICT" else ["no FULL_STATE_DICT"]
    manifest = json.loads((folder / "adapter" / "manifest.json").read_text())
    return problems + ([] if manifest.get("precision") == "bf16" else [f"trained in {manifest.get('precision')}"])


def adapter_on_4bit(model: Path, adapter: Path) -> list[str]:
    """Problems unless the adapter has trained LoRA weights and loads onto the base in 4-bit and runs."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    problems = lora_weight_problems(adapter)
    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16)
    base = AutoModelForCausalLM.from_pretrained(model, quantization_config=quant, device_map={"": 0})
    tuned = PeftModel.from_pretrained(base, adapter)
    logits = tuned(input_ids=torch.tensor([[1, 2, 3]], device="cuda")).logits
    problems += [] if bool(torch.isfinite(logits).all()) else ["non-finite logits"]
    del tuned, base
    torch.cuda.empty_cache()
    return problems


def lora_weight_problems(adapter: Path) -> list[str]:
    """The saved adapter holds whole lora_A/lora_B tensors (not FSDP's flat shards) and B is trained (non-zero)."""
    from safetensors import safe_open

    with safe_open(str(adapter / "adapter_model.safetensors"), framework="pt") as weights:
        tensors = {key: weights.get_tensor(key) for key in weights.keys()}  # noqa: SIM118
    lora = {key: t for key, t in tensors.items() if "lora_A" in key or "lora_B" in key}
    if not lora or any(t.numel() == 0 for t in lora.values()):
        return [f"adapter tensors {sorted(tensors)[:3]} are not whole LoRA weights"]
    trained = any(bool(t.abs().sum() > 0) for key, t in lora.items() if "lora_B" in key)
    return [] if trained else ["every lora_B is zero (nothing trained was saved)"]


def grant_row(obs: Observed | None, shared: bool) -> Row:
    """Item 8: a `gpus = 1` job's train.log names one GPU, and its process is seen only on that GPU."""
    check = "queue grant: gpus = 1"
    if obs is None:
        return Row(check, "skip", "the LoRA job failed")
    held = support.held_devices(support.log_tail(obs.folder, 1 << 20))
    problems = [] if len(held) == 1 else [f"train.log's queue line names {held or 'no GPU'}"]
    seen = obs.gpus_of(obs.parent)
    if shared and held and seen != set(held):
        problems.append(f"the trainer was on {_short(seen)}, not only on {_short(held)}")
    return verdict(
        check, problems, f"holding {_short(held)}, trainer seen there only", unverified=None if shared else NO_PIDS
    )


def chat_hold_row(spec: Any, work: Path, gpus: int) -> Row:
    """Item 8: with a 4-bit chat model registered on GPU 0, a fine-tune gets another GPU (or waits on one GPU)."""
    import torch

    from services.gpuqueue.queue import GpuQueue

    check = "queue: chat model on GPU 0"
    chat = load_4bit(Path(spec.model.id))
    grant = GpuQueue.for_workspace(work / "data").hold_for_chat("gpu-check-chat", device_index=0)
    if grant is None:
        return Row(check, "FAIL", "the queue has no GPU 0 for the chat model")
    chat_gpu = grant.visible_devices or "?"
    try:
        folder = support.start_job(spec, work)
        during = support.watch(folder, timeout=JOB_TIMEOUT_S if gpus > 1 else HOLD_S)
    finally:
        grant.release()
        del chat
        torch.cuda.empty_cache()
    after = run_job_on(folder)
    held = support.held_devices(support.log_tail(folder, 1 << 20))
    problems = finished(after)
    if gpus > 1 and (not held or chat_gpu in held):
        problems.append(f"job given {_short(held)} while the chat model holds {_short([chat_gpu])}")
    if gpus < 2 and during.status.state != "queued":
        problems.append(f"{during.status.state} while the chat model held the only GPU")
    how = f"waited {HOLD_S:g} s, then" if gpus < 2 else "at once"
    return verdict(check, problems, f"chat on {_short([chat_gpu])}; job {how} on {_short(held)}")


def run_job_on(folder: Path) -> Observed:
    obs = support.watch(folder, timeout=JOB_TIMEOUT_S)
    support.stop_if_active(folder)
    return obs


def load_4bit(model: Path) -> Any:
    """A chat model in 4-bit on GPU 0, as the Playground's local backend holds one."""
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16)
    return AutoModelForCausalLM.from_pretrained(model, quantization_config=quant, device_map={"": 0})


def oom_row(spec: Any, work: Path) -> Row:
    """Item 9: a micro batch far too large fails the job with "CUDA out of memory at step N" within OOM_LIMIT_S."""
    check = f"out of memory ({spec.training.num_processes} rank{'s' if spec.training.num_processes > 1 else ''})"
    obs = support.watch(support.start_job(spec, work), timeout=OOM_LIMIT_S + 60)
    support.stop_if_active(obs.folder)
    error = obs.status.error or support.log_tail(obs.folder)
    ok = obs.status.state == "failed" and "CUDA out of memory at step" in error and obs.seconds <= OOM_LIMIT_S
    return Row(check, "ok" if ok else "FAIL", f"{obs.status.state} in {obs.seconds:.0f} s: {error[:120]}")


def forced_cancel_row(spec: Any, work: Path, shared: bool) -> Row:
    """Item 10: a cancel forced after FORCE_S leaves no process of the job on a GPU."""
    from services.finetune import jobs
    from services.finetune.distributed import rank_pids

    before = len(support.compute_apps())
    folder = support.start_job(spec, work)
    obs = support.watch(folder, timeout=JOB_TIMEOUT_S, until=lambda status: status.step >= 2)
    if obs.status.state != "running":
        support.stop_if_active(folder)
        return Row("forced cancel", "FAIL", f"{obs.status.state} before step 2: {obs.status.error}")
    pids = {pid for pid in [obs.parent, *rank_pids(folder)] if pid}
    status = jobs.cancel(folder, grace_s=FORCE_S)
    freed = wait_freed(pids if shared else None, before)
    problems = [] if status.state == "cancelled" else [f"{status.state} after the cancel"]
    problems += [] if freed is not None else [f"GPU memory still held {FREED_S:g} s after the cancel"]
    detail = f"{status.error or 'not forced'}; GPUs freed after {freed or 0:.0f} s"
    return verdict("forced cancel", problems, detail)


def wait_freed(pids: set[int] | None, before: int) -> float | None:
    """Seconds until no pid of `pids` holds GPU memory (`None`: until no more processes than `before` do);
    None when that takes longer than FREED_S."""
    started = time.monotonic()
    while time.monotonic() - started < FREED_S:
        apps = support.compute_apps()
        if (not {pid for pid, _ in apps} & pids) if pids is not None else len(apps) <= before:
            return time.monotonic() - started
        time.sleep(0.5)
    return None


def reentrant_row(folders: list[Path]) -> Row:
    """Item 11: k-bit jobs with gradient checkpointing log no use_reentrant / requires_grad warning."""
    check = "k-bit checkpointing: use_reentrant=False"
    if not folders:
        return Row(check, "skip", "no k-bit job with checkpointing completed")
    found = {folder.name: support.checkpoint_warnings(support.log_tail(folder, 1 << 22)) for folder in folders}
    problems = [f"{name}: {lines[0][:150]}" for name, lines in found.items() if lines]
    return verdict(check, problems, f"no warning in {len(folders)} train.logs")
