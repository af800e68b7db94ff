"""The trainer process's work, run by `python -m services.trainer JOB_DIR [--resume]`.

Started detached by `jobs.launch`. It waits its turn for the GPU (first queued, first served,
through a lock file that the kernel releases when the process dies), trains with transformers'
Trainer, writes status and metrics into the job folder, and on SIGTERM saves a checkpoint and
stops. It never needs the TUI.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import signal
import subprocess
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from services.files import replace_files, staging_folder, write_atomic
from services.finetune import jobs
from services.finetune.jobs import JobStatus, read_status, write_status
from services.finetune.spec import JobSpec, load_spec
from services.store import Store

POLL_S = 0.5

OnAdapter = Callable[[Path, Path], None]
"""Called with (data folder, job folder) once a finished job's adapter is saved."""


def main(argv: list[str], *, on_adapter: OnAdapter | None = None) -> int:
    """Wait for the GPU, train `argv[0]`'s job, record how it ended; `on_adapter` gets the saved adapter."""
    job_dir = Path(argv[0]).resolve()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    data_dir = job_dir.parent.parent
    lock = wait_for_gpu(job_dir, data_dir, stop)
    if lock is None:
        _finish(job_dir, "cancelled", 0, "cancelled while queued")
        return 0
    try:
        state = train(job_dir, data_dir, resume="--resume" in argv, stop=stop, on_adapter=on_adapter)
    except BaseException as exc:  # every failure becomes a status the TUI can show
        traceback.print_exc()
        _finish(job_dir, "failed", 1, error_summary(exc, read_status(job_dir, check_alive=False).step))
        return 1
    _finish(job_dir, state, 0, None)
    return 0


def wait_for_gpu(job_dir: Path, data_dir: Path, stop: threading.Event) -> Any:
    """Block until this job is the oldest live queued job and holds the GPU lock; None if cancelled."""
    handle = (data_dir / jobs.GPU_LOCK).open("a")
    while not stop.is_set():
        if _first_in_queue(job_dir, data_dir):
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return handle
            except BlockingIOError:
                pass
        time.sleep(POLL_S)
    handle.close()
    return None


def _first_in_queue(job_dir: Path, data_dir: Path) -> bool:
    queued = []
    for folder in jobs.jobs_root(data_dir).iterdir():
        try:
            status = read_status(folder)
        except Exception:  # a folder being created or removed right now
            continue
        if status.state == "queued":
            queued.append((status.queued_at, folder.name))
    return bool(queued) and min(queued)[1] == job_dir.name


def train(
    job_dir: Path, data_dir: Path, *, resume: bool, stop: threading.Event, on_adapter: OnAdapter | None = None
) -> jobs.State:
    """Run the job to completion (or to a checkpoint when stopped); return the final state."""
    from transformers import AutoTokenizer

    from services.finetune.data import check_columns, load_rows
    from services.finetune.model import resolve_model
    from services.finetune.training import build_trainer, class_labels, load_model, tokenize

    spec = load_spec(job_dir / "job.toml")
    _set(job_dir, state="running", started_at=jobs._now())
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
    if stop.is_set():
        return "cancelled"
    save_adapter(job_dir, spec, model, tokenizer, resolved, trainer.state.log_history, labels)
    if on_adapter is not None:
        on_adapter(data_dir, job_dir)
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


def _trainer_callback_base() -> type:
    from transformers import TrainerCallback

    return TrainerCallback


class JobCallback(_trainer_callback_base()):  # type: ignore[misc]
    """Writes status and metrics.jsonl as training goes; turns SIGTERM into save-and-stop."""

    def __init__(self, job_dir: Path, stop: threading.Event) -> None:
        self.job_dir = job_dir
        self.stop = stop
        self._last = (time.monotonic(), 0)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        _set(self.job_dir, max_steps=state.max_steps, step=state.global_step)
        self._last = (time.monotonic(), state.num_input_tokens_seen)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.stop.is_set():
            control.should_save = True
            control.should_training_stop = True

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
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
        _set(self.job_dir, step=state.global_step)


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
) -> Path:
    """The adapter in PEFT format plus a manifest: base model and revision, data hash, config, git, metrics."""
    adapter = job_dir / "adapter"
    staging = staging_folder(adapter)  # renamed in file by file: a registered version keeps its bytes
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        write_atomic(
            staging / "manifest.json", json.dumps(_manifest(job_dir, spec, resolved, history, labels), indent=2)
        )
        replace_files(staging, adapter)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return adapter


def _manifest(
    job_dir: Path, spec: JobSpec, resolved: Any, history: list[dict[str, Any]], labels: list[str]
) -> dict[str, Any]:
    final = {k: v for row in history for k, v in row.items() if isinstance(v, int | float)}
    return {
        "kind": "adapter",
        "name": spec.name,
        "version": job_dir.name,
        "base_model": {"id": resolved.id, "revision": resolved.revision},
        "dataset": {"path": spec.dataset.path, "sha256": _sha256(Path(spec.dataset.path))},
        "job": spec.model_dump(mode="json"),
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


def error_summary(exc: BaseException, step: int) -> str:
    """One line for the jobs table, with a next step for the errors users can fix."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "out of memory" in text.lower():
        return (
            f"CUDA out of memory at step {step}: try training.gradient_checkpointing = true, a smaller "
            'training.micro_batch_size or max_seq_length, or lora.method = "qlora"'
        )
    return f"{type(exc).__name__} at step {step}: {text}"


def _set(job_dir: Path, **changes: Any) -> None:
    write_status(job_dir, replace(read_status(job_dir, check_alive=False), **changes))


def _finish(job_dir: Path, state: jobs.State, code: int, error: str | None) -> None:
    status: JobStatus = read_status(job_dir, check_alive=False)
    write_status(job_dir, replace(status, state=state, exit_code=code, error=error, finished_at=jobs._now()))
    store = Store(job_dir.parent.parent)
    with store.transaction() as db:
        db.execute("UPDATE jobs SET status = ?, updated_at = ? WHERE id = ?", (state, jobs._now(), job_dir.name))
