"""A rank's work: train the job with transformers' Trainer, log it, save the adapter.

A one-process job runs `train` inside the trainer's parent process; a multi-process job runs it in
each rank that `accelerate launch` starts (`python -m services.trainer JOB_DIR --rank`). Only the
main process writes metrics.jsonl, step updates and the adapter's tokenizer and manifest; the
parent alone writes the job's state.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from services.files import replace_files, write_atomic
from services.finetune import distributed, jobs
from services.finetune.jobs import read_status, write_status
from services.finetune.spec import JobSpec, load_spec


def rank_main(argv: list[str]) -> int:
    """One rank of a multi-process job: `JOB_DIR --rank [--resume]`; SIGTERM saves a checkpoint and stops."""
    job_dir = Path(argv[0]).resolve()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    distributed.die_with_parent()
    rank = int(os.environ.get("RANK", "0"))
    distributed.write_rank_pid(job_dir, rank)  # after the handler: a cancel from now on is a clean stop
    try:
        train(job_dir, resume="--resume" in argv, stop=stop)
    except BaseException as exc:
        distributed.write_rank_error(job_dir, rank, exc)
        raise
    return 0


def train(job_dir: Path, *, resume: bool, stop: threading.Event) -> jobs.State:
    """Run the job to completion (or to a checkpoint when stopped); return how it ended."""
    from transformers import AutoTokenizer

    from services.finetune.data import check_columns, load_rows
    from services.finetune.model import resolve_model
    from services.finetune.training import build_trainer, class_labels, distributed_state, load_model, tokenize

    distributed_state()  # before anything touches CUDA: each rank's device and process group
    spec = load_spec(job_dir / "job.toml")
    rows = load_rows(spec.dataset.path)
    check_columns(spec, rows)
    resolved = resolve_model(spec, cache_dir=None)
    tokenizer = AutoTokenizer.from_pretrained(resolved.path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    labels = class_labels(spec, rows)
    train_rows, eval_rows = split(rows, spec.dataset.eval_split, spec.training.seed)
    model = load_model(spec, resolved.path, labels)
    trainer = build_trainer(
        spec,
        job_dir,
        model,
        tokenizer,
        tokenize(spec, train_rows, tokenizer, labels),
        tokenize(spec, eval_rows, tokenizer, labels) if eval_rows else None,
        [JobCallback(job_dir, stop)],
    )
    trainer.train(resume_from_checkpoint=resume and _has_checkpoint(job_dir))
    if stop_requested(stop):  # every rank asks, so all of them skip (or join) the adapter's save
        return "cancelled"
    main = trainer.is_world_process_zero()
    history = trainer.state.log_history
    save_adapter(job_dir, spec, model, tokenizer, resolved, history, labels, save=trainer.save_model, main=main)
    return "completed"


def split(rows: list[Any], fraction: float, seed: int) -> tuple[list[Any], list[Any]]:
    """A seeded train/eval split (at least one eval row when fraction > 0)."""
    import random

    if fraction <= 0 or len(rows) < 2:
        return rows, []
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    n_eval = max(1, int(len(rows) * fraction))
    held = set(order[:n_eval])
    return [r for i, r in enumerate(rows) if i not in held], [r for i, r in enumerate(rows) if i in held]


def _has_checkpoint(job_dir: Path) -> bool:
    return any((job_dir / "checkpoints").glob("checkpoint-*"))


def stop_requested(stop: threading.Event) -> bool:
    """Whether any rank was asked to stop (a MAX all-reduce when torch.distributed runs, so every
    rank answers the same at the same step and they checkpoint together)."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return stop.is_set()
    device = torch.device("cpu")
    if dist.get_backend() != "gloo":  # nccl reduces CUDA tensors only
        from accelerate import PartialState

        device = PartialState().device
    flag = torch.tensor([int(stop.is_set())], device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


def _trainer_callback_base() -> type:
    from transformers import TrainerCallback

    return TrainerCallback


class JobCallback(_trainer_callback_base()):  # type: ignore[misc]
    """Writes status steps and metrics.jsonl (main process only); turns SIGTERM into save-and-stop."""

    def __init__(self, job_dir: Path, stop: threading.Event) -> None:
        self.job_dir = job_dir
        self.stop = stop
        self._last = (time.monotonic(), 0)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            update_status(self.job_dir, max_steps=state.max_steps, step=state.global_step)
        self._last = (time.monotonic(), state.num_input_tokens_seen)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if stop_requested(self.stop):
            control.should_save = True
            control.should_training_stop = True

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        logs = logs or {}
        now, tokens = time.monotonic(), state.num_input_tokens_seen
        then, before = self._last
        self._last = (now, tokens)
        row = {
            "step": state.global_step,
            "epoch": round(state.epoch or 0.0, 4),
            "loss": logs.get("loss"),
            "eval_loss": logs.get("eval_loss"),
            "learning_rate": logs.get("learning_rate"),
            "grad_norm": logs.get("grad_norm"),
            "tokens_per_s": (tokens - before) / (now - then) if now > then and "loss" in logs else None,
            "samples_per_s": logs.get("train_samples_per_second"),
            "train_runtime_s": logs.get("train_runtime"),
            "tokens_seen": tokens,
            "gpu_memory_bytes": _gpu_memory(),
            "time": time.time(),
        }
        with (self.job_dir / "metrics.jsonl").open("a") as out:
            out.write(json.dumps(row) + "\n")
        update_status(self.job_dir, step=state.global_step)


def _gpu_memory() -> int | None:
    import torch

    return int(torch.cuda.max_memory_allocated()) if torch.cuda.is_available() else None


def save_adapter(
    job_dir: Path,
    spec: JobSpec,
    model: Any,
    tokenizer: Any,
    resolved: Any,
    history: list[dict[str, Any]],
    labels: list[str],
    *,
    save: Callable[[str], object] | None = None,
    main: bool = True,
) -> Path:
    """The adapter in PEFT format plus a manifest: base model and revision, data hash, config, git, metrics.

    Every rank calls this: `save` (the Trainer's `save_model`, which gathers FSDP shards) writes the
    weights from the main process; the main process alone adds tokenizer and manifest and renames the
    files in (one by one: a registered version keeps its bytes). Without `save`, `model.save_pretrained`.
    """
    adapter = job_dir / "adapter"
    staging = job_dir / ".adapter.staging"
    if main:
        shutil.rmtree(staging, ignore_errors=True)
    try:
        (save or model.save_pretrained)(str(staging))
        if main:
            (staging / "training_args.bin").unlink(missing_ok=True)  # the Trainer's pickle: not part of an adapter
            tokenizer.save_pretrained(staging)
            manifest = _manifest(job_dir, spec, resolved, history, labels)
            write_atomic(staging / "manifest.json", json.dumps(manifest, indent=2))
            replace_files(staging, adapter)
    finally:
        if main:
            shutil.rmtree(staging, ignore_errors=True)
    return adapter


def _manifest(
    job_dir: Path, spec: JobSpec, resolved: Any, history: list[dict[str, Any]], labels: list[str]
) -> dict[str, Any]:
    from services.finetune.training import resolve_precision

    final = {k: v for row in history for k, v in row.items() if isinstance(v, int | float)}
    return {
        "kind": "adapter",
        "name": spec.name,
        "version": job_dir.name,
        "base_model": {"id": resolved.id, "revision": resolved.revision},
        "dataset": {"path": spec.dataset.path, "sha256": _sha256(Path(spec.dataset.path))},
        "job": spec.model_dump(mode="json"),
        "precision": resolve_precision(spec),
        "git_revision": _git_revision(),
        "metrics": final,
        "labels": labels,
    }


def _sha256(path: Path) -> str | None:
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _git_revision() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=jobs._project_root(),
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except OSError:
        return None
    return out.stdout.strip() or None


def update_status(job_dir: Path, **changes: Any) -> None:
    """Change fields of status.json (atomically)."""
    write_status(job_dir, replace(read_status(job_dir, check_alive=False), **changes))
