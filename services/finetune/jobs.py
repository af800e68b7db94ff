"""Job folders and the processes that run them.

A job folder holds `job.toml`, `status.json` (written atomically by the trainer process),
`metrics.jsonl`, `train.log`, `checkpoints/` and, when done, `adapter/` with `manifest.json`.
The TUI and CLI only read these files; the trainer runs in its own process session, so closing
the TUI or losing SSH never touches it. A job whose process died without a final status
(SIGKILL, reboot) is reported as failed, never "running" forever.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from services.errors import NextStep, NotFoundError, UsageError
from services.finetune.spec import JobSpec, dump_spec, load_spec
from services.gpuqueue.queue import STATE_DIR_ENV
from services.store import Store

State = Literal["queued", "running", "completed", "failed", "cancelled"]
ACTIVE: tuple[State, ...] = ("queued", "running")
QUEUED_AT_ENV = "WORKBENCH_QUEUED_AT"
"""When the job was launched (epoch seconds), for its place in the GPU queue."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class JobStatus:
    """The status record of one job (`status.json`)."""

    state: State = "queued"
    pid: int | None = None
    proc_start: str | None = None
    queued_at: str = field(default_factory=_now)
    started_at: str | None = None
    finished_at: str | None = None
    step: int = 0
    max_steps: int = 0
    exit_code: int | None = None
    error: str | None = None

    @property
    def progress(self) -> float:
        return self.step / self.max_steps if self.max_steps else 0.0


def jobs_root(data_dir: Path) -> Path:
    return data_dir / "jobs"


def job_dir_for(data_dir: Path, job: str) -> Path:
    """The folder of a job given its id (or a unique prefix, or a path)."""
    as_path = Path(job)
    if (as_path / "job.toml").is_file():
        return as_path
    root = jobs_root(data_dir)
    matches = sorted(p for p in root.glob(f"{job}*") if (p / "job.toml").is_file()) if root.is_dir() else []
    if len(matches) != 1:
        what = "no job" if not matches else f"{len(matches)} jobs"
        raise NotFoundError(f"{what} matching '{job}' in {root}", step=NextStep("finetune.ls"))
    return matches[0]


def create_job(spec: JobSpec, *, data_dir: Path, store: Store) -> Path:
    """A new job folder with the spec and a queued status, registered in the store."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")
    folder = jobs_root(data_dir) / f"{spec.name}-{stamp}"
    folder.mkdir(parents=True)
    (folder / "job.toml").write_text(dump_spec(spec))
    write_status(folder, JobStatus())
    store.migrate()
    with store.transaction() as db:
        db.execute(
            "INSERT INTO jobs (id, name, kind, status, folder, config, created_at, updated_at) "
            "VALUES (?, ?, 'finetune', 'queued', ?, ?, ?, ?)",
            (folder.name, spec.name, str(folder), spec.model_dump_json(), _now(), _now()),
        )
    return folder


def launch(job_dir: Path, *, resume: bool = False, cache_dir: Path | None = None, state_dir: Path | None = None) -> int:
    """Start the trainer for `job_dir` in its own process session; return its pid.

    The trainer is always one parent process (`python -m services.trainer`): it takes the GPUs, then
    starts the ranks of a multi-process job itself. `cache_dir` is the HF cache the trainer loads the
    base model from (default: the environment's); `state_dir` the machine's GPU queue (the
    `server.state_dir` setting; default: the environment's, else /var/lib/llm-workbench).
    """
    load_spec(job_dir / "job.toml")  # a job file that no longer validates fails here, not in the trainer
    cmd = [sys.executable, "-m", "services.trainer", str(job_dir), *(["--resume"] if resume else [])]
    log = (job_dir / "train.log").open("ab")
    python_path = os.pathsep.join(filter(None, [_project_root(), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": python_path, "HF_HUB_OFFLINE": "1"}
    if cache_dir is not None:
        env["HF_HUB_CACHE"] = str(cache_dir)
    if state_dir is not None:
        env[STATE_DIR_ENV] = str(state_dir)
    env[QUEUED_AT_ENV] = repr(time.time())  # jobs launched one after the other queue in that order
    process = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, env=env, cwd=job_dir
    )
    log.close()
    write_status(
        job_dir,
        replace(
            read_status(job_dir, check_alive=False),
            state="queued",
            pid=process.pid,
            proc_start=_proc_start(process.pid),
            error=None,
            exit_code=None,
            finished_at=None,
        ),
    )
    return process.pid


def _project_root() -> str:
    return str(Path(__file__).resolve().parents[2])


def write_status(job_dir: Path, status: JobStatus) -> None:
    """Replace `status.json` atomically (readers never see half a file)."""
    tmp = job_dir / f".status.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(asdict(status), indent=2))
    tmp.replace(job_dir / "status.json")


def read_status(job_dir: Path, *, check_alive: bool = True) -> JobStatus:
    """The job's status; an active job whose process is gone is recorded as failed first."""
    try:
        status = JobStatus(**json.loads((job_dir / "status.json").read_text()))
    except FileNotFoundError:
        raise NotFoundError(f"{job_dir} is not a job folder (no status.json)") from None
    if check_alive and status.state in ACTIVE and status.pid and not _alive(status.pid, status.proc_start):
        status = replace(
            status,
            state="failed",
            finished_at=_now(),
            error="the trainer process died without a final status (killed, out of memory, or the machine rebooted)",
        )
        write_status(job_dir, status)
    return status


def _proc_start(pid: int) -> str | None:
    """The kernel's start time of `pid` (field 22 of /proc/PID/stat), to tell a reused pid apart."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(pid: int, proc_start: str | None) -> bool:
    start = _proc_start(pid)
    if start is None:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z" and (proc_start is None or start == proc_start)


def cancel(job_dir: Path, *, grace_s: float = 60.0) -> JobStatus:
    """Ask the trainer to save a checkpoint and stop (SIGTERM); force it (SIGKILL) after `grace_s`."""
    status = read_status(job_dir)
    if status.state not in ACTIVE or status.pid is None:
        raise UsageError(f"job {job_dir.name} is {status.state}, not running", hint="nothing to cancel")
    os.killpg(status.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and _alive(status.pid, status.proc_start):
        time.sleep(0.2)
    if _alive(status.pid, status.proc_start):
        os.killpg(status.pid, signal.SIGKILL)
        status = replace(
            read_status(job_dir, check_alive=False),
            state="cancelled",
            finished_at=_now(),
            error=f"forced to stop after {grace_s:g} s without a checkpoint",
        )
        write_status(job_dir, status)
    return read_status(job_dir, check_alive=False)


def resume(job_dir: Path, *, cache_dir: Path | None = None, state_dir: Path | None = None) -> int:
    """Continue a cancelled or failed job from its latest checkpoint."""
    status = read_status(job_dir)
    if status.state in ACTIVE:
        raise UsageError(f"job {job_dir.name} is still {status.state}")
    if status.state == "completed":
        raise UsageError(f"job {job_dir.name} already completed")
    return launch(job_dir, resume=True, cache_dir=cache_dir, state_dir=state_dir)


def read_metrics(job_dir: Path) -> list[dict[str, Any]]:
    """Every metrics line so far (a torn last line from a running writer is skipped)."""
    path = job_dir / "metrics.jsonl"
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


@dataclass(frozen=True)
class JobView:
    """One row of the jobs table."""

    id: str
    folder: Path
    name: str
    base_model: str
    method: str
    status: JobStatus
    last_loss: float | None
    eta_s: float | None
    duration_s: float | None


def list_jobs(data_dir: Path) -> list[JobView]:
    """All jobs, newest first."""
    root = jobs_root(data_dir)
    folders = sorted((p for p in root.iterdir() if (p / "job.toml").is_file()), reverse=True) if root.is_dir() else []
    return [job_view(folder) for folder in folders]


def job_view(folder: Path) -> JobView:
    losses = [m["loss"] for m in read_metrics(folder) if m.get("loss") is not None]
    return job_view_with_loss(folder, losses[-1] if losses else None)


def job_view_with_loss(folder: Path, last_loss: float | None) -> JobView:
    """The view of a job whose last training loss the caller already has (it follows metrics.jsonl)."""
    spec = load_spec(folder / "job.toml")
    status = read_status(folder)
    return JobView(
        id=folder.name,
        folder=folder,
        name=spec.name,
        base_model=spec.model.id,
        method=spec.lora.method,
        status=status,
        last_loss=last_loss,
        eta_s=eta_s(status),
        duration_s=_duration(status),
    )


def _seconds_since(stamp: str | None, until: str | None = None) -> float | None:
    if stamp is None:
        return None
    end = datetime.fromisoformat(until) if until else datetime.now(UTC)
    return (end - datetime.fromisoformat(stamp)).total_seconds()


def _duration(status: JobStatus) -> float | None:
    return _seconds_since(status.started_at, status.finished_at)


def eta_s(status: JobStatus) -> float | None:
    """Seconds until a running job ends at its pace so far; None when unknown."""
    elapsed = _duration(status)
    if status.state != "running" or not elapsed or not status.step or not status.max_steps:
        return None
    return elapsed / status.step * (status.max_steps - status.step)
