"""Reading job folders as they grow, for a screen that polls them every second.

`JobWatch` only reads: it never signals or rewrites a job (apart from `read_status` recording a
job whose process died as failed). Metrics are read incrementally, so following a long job costs
the new lines only, and the first poll of a job returns its whole history.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.finetune.jobs import ACTIVE, JobView, job_view, job_view_with_loss, jobs_root, read_status
from services.gpu import GpuUsage, gpu_usage

LOG_TAIL_BYTES = 64 * 1024
Point = tuple[int, float]


@dataclass(frozen=True)
class JobDetail:
    """Everything the detail pane shows about one job, as of one poll."""

    view: JobView
    train_loss: list[Point]
    """(step, loss) for every logged training step."""
    eval_loss: list[Point]
    """(step, eval loss) for every evaluation."""
    latest: dict[str, Any]
    """The latest training metrics row (tokens/s, learning rate, GPU memory, epoch)."""
    log_tail: list[str]
    adapter: Path | None
    """The finished adapter's folder, once the job completed."""
    manifest: dict[str, Any] | None
    merged: Path | None
    """The merged model's folder, once merged."""
    gpus: list[GpuUsage] = field(default_factory=list)
    """Utilisation of the machine's GPUs while the job runs; empty on CPU machines."""


def _add(series: list[Point], step: int, value: float) -> None:
    """Append a point; a resumed run re-logs steps after its checkpoint, and those replace the old ones."""
    while series and series[-1][0] >= step:
        series.pop()
    series.append((step, value))


class MetricsFollower:
    """The metrics of one job, read from where the last read stopped."""

    def __init__(self, job_dir: Path) -> None:
        self.path = job_dir / "metrics.jsonl"
        self.offset = 0
        self.train: list[Point] = []
        self.evals: list[Point] = []
        self.latest: dict[str, Any] = {}

    def read(self) -> None:
        """Take in the complete lines written since the last read (a line being written waits)."""
        try:
            with self.path.open("rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read()
        except FileNotFoundError:
            return
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self.offset += len(complete)
        for line in complete.splitlines():
            self._take(line)

    def _take(self, line: bytes) -> None:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            return
        step = int(row.get("step") or 0)
        if row.get("loss") is not None:
            _add(self.train, step, float(row["loss"]))
            self.latest = row
        if row.get("eval_loss") is not None:
            _add(self.evals, step, float(row["eval_loss"]))


def log_tail(job_dir: Path, lines: int) -> list[str]:
    """The last `lines` lines of the trainer's log; progress bars redrawn with \\r show their last state."""
    path = job_dir / "train.log"
    try:
        with path.open("rb") as fh:
            fh.seek(max(0, path.stat().st_size - LOG_TAIL_BYTES))
            text = fh.read().decode(errors="replace")
    except FileNotFoundError:
        return []
    shown = [line.rstrip("\r").rsplit("\r", 1)[-1] for line in text.splitlines()]
    return shown[-lines:]


def read_manifest(adapter: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((adapter / "manifest.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


class JobWatch:
    """Polls the jobs of a workspace; `detail` follows one job at a time."""

    def __init__(self, data_dir: Path, *, log_lines: int = 200, watch_gpus: bool = True) -> None:
        """`watch_gpus`: read GPU utilisation while a job runs (False where the machine has none)."""
        self.root = jobs_root(data_dir)
        self.log_lines = log_lines
        self.watch_gpus = watch_gpus
        self._followers: dict[str, MetricsFollower] = {}
        self._finished: dict[str, tuple[int, JobView]] = {}

    def jobs(self) -> list[JobView]:
        """All jobs, newest first; finished jobs are read again only when their status file changes."""
        if not self.root.is_dir():
            return []
        folders = sorted((p for p in self.root.iterdir() if (p / "job.toml").is_file()), reverse=True)
        return [self._view(folder) for folder in folders]

    def _view(self, folder: Path) -> JobView:
        """Finished jobs are read once per status change; active ones follow their metrics."""
        try:
            stamp = (folder / "status.json").stat().st_mtime_ns
        except FileNotFoundError:
            stamp = 0
        cached = self._finished.get(folder.name)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        if read_status(folder).state in ACTIVE:
            follower = self._follow(folder)
            return job_view_with_loss(folder, follower.train[-1][1] if follower.train else None)
        view = job_view(folder)
        self._finished[folder.name] = (stamp, view)
        return view

    def _follow(self, folder: Path) -> MetricsFollower:
        follower = self._followers.get(folder.name)
        if follower is None:
            follower = self._followers[folder.name] = MetricsFollower(folder)
        follower.read()
        return follower

    def detail(self, view: JobView) -> JobDetail:
        """The job's curves (whole history on the first call, then what is new), log tail and adapter."""
        follower = self._follow(view.folder)
        adapter = view.folder / "adapter"
        has_adapter = (adapter / "adapter_config.json").is_file()
        merged = view.folder / "merged"
        running = view.status.state == "running"
        return JobDetail(
            view=view,
            train_loss=list(follower.train),
            eval_loss=list(follower.evals),
            latest=dict(follower.latest),
            log_tail=log_tail(view.folder, self.log_lines),
            adapter=adapter if has_adapter else None,
            manifest=read_manifest(adapter) if has_adapter else None,
            merged=merged if (merged / "config.json").is_file() else None,
            gpus=gpu_usage() if running and self.watch_gpus else [],
        )
