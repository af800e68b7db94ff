"""Launching real fine-tune jobs from tests and waiting for them."""

from __future__ import annotations

import time
from pathlib import Path

from services.demo import DemoWorkspace
from services.finetune import jobs
from services.finetune.spec import JobSpec
from services.store import Store


def start(demo: DemoWorkspace, data_dir: Path, spec: JobSpec, *, state_dir: Path | None = None) -> Path:
    """A new job folder for `spec` in `data_dir`, its trainer launched on the demo cache."""
    folder = jobs.create_job(spec, data_dir=data_dir, store=Store(data_dir))
    jobs.launch(folder, cache_dir=Path(demo.cache_dir), state_dir=state_dir)
    return folder


def wait(folder: Path, timeout: float = 240) -> jobs.JobStatus:
    """The job's status once it is no longer queued or running (the log's tail on timeout)."""
    deadline = time.monotonic() + timeout
    while (status := jobs.read_status(folder)).state in jobs.ACTIVE:
        assert time.monotonic() < deadline, (folder / "train.log").read_text()[-3000:]
        time.sleep(0.3)
    return status
