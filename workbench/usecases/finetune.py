"""Fine-tune verbs: the launch checks and the launch, cancel, resume and merge, a job's defaults, following a job."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from services.artifacts.model import Manifest
    from services.cache import CachedModel
    from services.finetune.jobs import JobStatus
    from services.finetune.spec import JobSpec
    from workbench.wiring import Services

Sleep = Callable[[float], None]


@dataclass(frozen=True)
class Submitted:
    """A launched job: its folder and the trainer's process id."""

    folder: Path
    pid: int


def check_launch(services: Services, spec: JobSpec) -> None:
    """Every check a launch makes before a job folder exists: k-bit LoRA has a CUDA GPU and
    bitsandbytes (the plan's own check), the dataset has the columns the task needs, and the base
    model resolves (cached repo id or folder)."""
    from services.finetune.data import check_columns, load_rows
    from services.finetune.model import resolve_model
    from services.finetune.plan import require_kbit_support
    from services.finetune.training import cuda_available

    require_kbit_support(spec, cuda=spec.lora.method != "lora" and cuda_available())
    check_columns(spec, load_rows(spec.dataset.path))
    resolve_model(spec, cache_dir=services.cache_dir)


def submit(services: Services, spec: JobSpec) -> Submitted:
    """Check the job, then launch it detached (it survives logout; queued while the GPU is busy)."""
    from services.finetune import jobs

    check_launch(services, spec)
    folder = jobs.create_job(spec, data_dir=services.data_dir, store=services.store())
    return Submitted(
        folder, jobs.launch(folder, cache_dir=services.cache_dir, state_dir=services.settings.server.state_dir)
    )


def job_folder(services: Services, job: str) -> Path:
    """The folder of `job`: its id, a unique prefix of it, or a path."""
    from services.finetune.jobs import job_dir_for

    return job_dir_for(services.data_dir, job)


def cancel(services: Services, job: str, *, grace_s: float) -> JobStatus:
    """Stop `job` gracefully (the trainer saves a checkpoint), forcing it after `grace_s` seconds."""
    from services.finetune import jobs

    return jobs.cancel(job_folder(services, job), grace_s=grace_s)


def resume(services: Services, job: str) -> Submitted:
    """Continue a cancelled or failed job from its latest checkpoint, detached like a launch."""
    from services.finetune import jobs

    folder = job_folder(services, job)
    return Submitted(
        folder, jobs.resume(folder, cache_dir=services.cache_dir, state_dir=services.settings.server.state_dir)
    )


@dataclass(frozen=True)
class Merged:
    """A job's adapter folded into its base model: where the model was written, and its artifact version."""

    folder: Path
    artifact: Manifest


def merge(services: Services, job: str, *, output: Path | None = None) -> Merged:
    """Fold the job's adapter into its base model (default output: JOB_FOLDER/merged) and register it."""
    from services.artifacts.sources import merge_job

    folder, artifact = merge_job(
        services.artifacts(), job_folder(services, job), output=output, cache_dir=services.cache_dir
    )
    return Merged(folder, artifact)


def cached_model_folder(services: Services, model_id: str) -> Path | None:
    """The folder of `model_id`: itself when it is one, else its cached snapshot (main, else the newest);
    None when it is not cached yet."""
    from services.cache import list_cached_models

    if Path(model_id).is_dir():
        return Path(model_id)
    for model in list_cached_models(services.cache_dir).models:
        if model.repo_id == model_id:
            return snapshot_folder(model)
    return None


def default_jobs(services: Services, dataset: str) -> dict[str, JobSpec]:
    """Default job specs for every model in the HF cache, by repo id (the new-job form's starting points).
    The demo model on the demo dataset starts from the demo job, the one that visibly learns."""
    from services.cache import list_cached_models
    from services.demo import DEMO_MODEL, demo_spec, is_demo_dataset
    from services.finetune.template import default_spec

    def spec(model: CachedModel) -> JobSpec:
        if model.repo_id == DEMO_MODEL and is_demo_dataset(dataset):
            return demo_spec(Path(dataset), snapshot_folder(model))
        return default_spec(model.repo_id, dataset, model_folder=snapshot_folder(model))

    return {m.repo_id: spec(m) for m in list_cached_models(services.cache_dir).models}


def snapshot_folder(model: CachedModel) -> Path | None:
    """A cached model's snapshot folder: the one `main` points at, else the newest revision."""
    main = next((r for r in model.revisions if "main" in r.refs), None)
    revision = main or (model.revisions[-1] if model.revisions else None)
    return model.path / "snapshots" / revision.commit if revision else None


def follow_metrics(folder: Path, *, poll_s: float = 1.0, sleep: Sleep = time.sleep) -> Iterator[dict[str, Any]]:
    """Each new loss or eval-loss row of a job until it ends; the generator returns its final status."""
    from services.finetune.jobs import ACTIVE, read_metrics, read_status

    seen = 0
    while True:
        status = read_status(folder)
        rows = read_metrics(folder)
        for row in rows[seen:]:
            if row.get("loss") is not None or row.get("eval_loss") is not None:
                yield {k: v for k, v in row.items() if v is not None and k != "time"}
        seen = len(rows)
        if status.state not in ACTIVE:
            return
        sleep(poll_s)


def final_status(folder: Path) -> JobStatus:
    """The job's status as recorded now."""
    from services.finetune.jobs import read_status

    return read_status(folder)


def follow_log(folder: Path, *, offset: int = 0, poll_s: float = 0.5, sleep: Sleep = time.sleep) -> Iterator[str]:
    """The trainer's log text written after byte `offset`, as it grows, until the job ends."""
    from services.finetune.jobs import ACTIVE, read_status

    log = folder / "train.log"
    while True:
        if log.exists() and log.stat().st_size > offset:
            with log.open("rb") as fh:
                fh.seek(offset)
                chunk = fh.read()
            offset += len(chunk)
            yield chunk.decode(errors="replace")
        if read_status(folder).state not in ACTIVE:
            return
        sleep(poll_s)
