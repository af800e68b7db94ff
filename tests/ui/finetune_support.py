"""Real fine-tune jobs for the Fine-tune mode's tests: the demo model trained on the CPU.

One short job is trained per session and copied into each test's workspace; tests that need a
job running while the app is open start their own. Every trainer a test starts is cancelled when
the test ends (`reap`), so no process outlives its temporary folder.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from services.demo import DEMO_MODEL
from services.finetune import jobs
from services.finetune.spec import JobSpec
from services.finetune.template import default_spec
from services.store import Store

_FINISHED: dict[str, Path] = {}


def demo_dataset(demo_hub: Path) -> Path:
    """The dataset `init_demo` wrote next to the session's demo HF cache (see conftest's demo_template)."""
    return demo_hub.parent / "workspace" / "demo" / "instructions.jsonl"


def copy_demo_data(demo_hub: Path, data_dir: Path) -> Path:
    """The demo dataset copied into `data_dir/demo`, where the new-job form looks for it first."""
    target = data_dir / "demo"
    shutil.copytree(demo_dataset(demo_hub).parent, target)
    return target / "instructions.jsonl"


def job_spec(dataset: Path, name: str = "demo-run", **training: object) -> JobSpec:
    spec = default_spec(DEMO_MODEL, str(dataset)).model_copy(update={"name": name})
    return spec.model_copy(update={"training": spec.training.model_copy(update=training)})


def start_job(data_dir: Path, cache_dir: Path, spec: JobSpec) -> Path:
    folder = jobs.create_job(spec, data_dir=data_dir, store=Store(data_dir))
    jobs.launch(folder, cache_dir=cache_dir)
    return folder


def wait_until(folder: Path, done: object, timeout: float = 120.0) -> jobs.JobStatus:
    """Block until `done(status)` holds; fail with the end of the trainer's log after `timeout`."""
    deadline = time.monotonic() + timeout
    while not done(status := jobs.read_status(folder)):  # type: ignore[operator]
        if time.monotonic() > deadline:
            log = folder / "train.log"
            raise AssertionError(log.read_text()[-3000:] if log.exists() else f"{folder}: no log")
        time.sleep(0.1)
    return status


def finished_job(factory: pytest.TempPathFactory, demo_hub: Path) -> Path:
    """A completed 8-step job with two evaluations and an adapter, trained once per session."""
    if "job" not in _FINISHED:
        data_dir = factory.mktemp("finished-job") / "data"
        spec = job_spec(demo_dataset(demo_hub), max_steps=8, eval_every=4, save_every=4)
        folder = start_job(data_dir, demo_hub, spec)
        status = wait_until(folder, lambda s: s.state not in jobs.ACTIVE)
        assert status.state == "completed", (folder / "train.log").read_text()[-3000:]
        _FINISHED["job"] = folder
    return _FINISHED["job"]


def copy_job(template: Path, data_dir: Path, name: str | None = None) -> Path:
    """A real copy (no hard links: a resumed or merged job writes into its folder) of a job folder."""
    target = jobs.jobs_root(data_dir) / (name or template.name)
    shutil.copytree(template, target)
    return target


def reap(data_dir: Path) -> None:
    """Stop every job still queued or running under `data_dir`."""
    root = jobs.jobs_root(data_dir)
    for folder in root.iterdir() if root.is_dir() else []:
        if (folder / "status.json").is_file() and jobs.read_status(folder).state in jobs.ACTIVE:
            jobs.cancel(folder, grace_s=20)
