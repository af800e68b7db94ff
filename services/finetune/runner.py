"""The trainer's parent process, run by `python -m services.trainer JOB_DIR [--resume]`.

Started detached by `jobs.launch`. It waits its turn for the GPUs in the machine's queue
(`services.gpuqueue`: fair across users, kernel locks that die with the process), marks the job running, then
trains in this process (one process) or starts the ranks through `accelerate launch` and waits for
them. It alone writes the job's state; on SIGTERM it has every rank save a checkpoint and stop.
It never needs the TUI.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from services.errors import WorkbenchError
from services.finetune import distributed, jobs
from services.finetune.jobs import JobStatus, read_status, write_status
from services.finetune.spec import JobSpec, gpus_wanted, load_spec
from services.finetune.worker import train, update_status
from services.gpuqueue import entries
from services.gpuqueue.entries import Entry, current_user
from services.gpuqueue.queue import GpuQueue, Grant
from services.store import Store

POLL_S = 0.5
HEARTBEAT_S = 5.0
"""How often a running job tells the queue its progress and ETA."""

OnAdapter = Callable[[Path, Path], None]
"""Called with (data folder, job folder) once a finished job's adapter is saved."""


class RankError(Exception):
    """A multi-process job's ranks ended in failure; `kind` and the message are the failing rank's."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def main(argv: list[str], *, on_adapter: OnAdapter | None = None) -> int:
    """Wait for the GPUs, train `argv[0]`'s job, record how it ended; `on_adapter` gets the saved adapter."""
    job_dir = Path(argv[0]).resolve()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    data_dir = job_dir.parent.parent
    try:
        grant = take_gpus(job_dir, data_dir, stop)
    except WorkbenchError as exc:  # e.g. more GPUs than the machine has
        _finish(job_dir, "failed", 1, f"{exc.message}: {exc.hint}" if exc.hint else exc.message)
        return 1
    if grant is None:
        _finish(job_dir, "cancelled", 0, "cancelled while queued")
        return 0
    waited = time.time() - grant.entry.queued_at
    print(f"queue: holding {grant.visible_devices or 'the CPU slot'} after {waited:.0f} s", flush=True)
    heartbeat = threading.Thread(target=publish_progress, args=(grant, job_dir, stop), daemon=True)
    try:
        update_status(job_dir, state="running", started_at=jobs._now())
        heartbeat.start()
        state = run(job_dir, resume="--resume" in argv, stop=stop, devices=grant.devices)
        if state == "completed" and on_adapter is not None:
            on_adapter(data_dir, job_dir)
    except BaseException as exc:  # every failure becomes a status the TUI can show
        traceback.print_exc()
        _finish(job_dir, "failed", 1, error_summary(exc, read_status(job_dir, check_alive=False).step))
        return 1
    else:
        _finish(job_dir, state, 0, None)
        return 0
    finally:
        grant.release()  # after the final status: the next job starts after this one finished


def take_gpus(job_dir: Path, data_dir: Path, stop: threading.Event) -> Grant | None:
    """Queue in the machine's GPU queue (the workspace's without one) until this job holds its GPUs."""
    spec = load_spec(job_dir / "job.toml")
    queued_at = float(os.environ.get(jobs.QUEUED_AT_ENV) or time.time())
    entry = Entry(user=current_user(), kind="finetune", name=spec.name, gpus=gpus_wanted(spec), queued_at=queued_at)
    queue = GpuQueue.for_workspace(data_dir)
    wait_for_earlier_launches(queue, job_dir, stop)
    return queue.wait_turn(entry, stop)


def wait_for_earlier_launches(queue: GpuQueue, job_dir: Path, stop: threading.Event, limit_s: float = 30.0) -> None:
    """Let this workspace's jobs launched before this one join the queue first (their trainers may
    start more slowly), so jobs launched one after the other run in that order."""
    mine = read_status(job_dir, check_alive=False).proc_start
    deadline = time.monotonic() + limit_s
    while not stop.is_set() and time.monotonic() < deadline:
        queued = {e.pid for e in entries.read_all(queue.folder)[0]}
        if not any(
            _launched_before(folder, mine, queued) for folder in jobs.jobs_root(job_dir.parent.parent).iterdir()
        ):
            return
        stop.wait(POLL_S)


def _launched_before(folder: Path, mine: str | None, queued: set[int]) -> bool:
    """Whether `folder` holds a queued job whose trainer started before ours and has not queued yet."""
    try:
        status = read_status(folder)
    except Exception:  # a folder being created or removed right now
        return False
    if status.state != "queued" or status.pid is None or status.pid in queued or status.pid == os.getpid():
        return False
    if mine is None or status.proc_start is None:
        return False
    return (int(status.proc_start), status.pid) < (int(mine), os.getpid())  # started first (ticks, then pid)


def publish_progress(grant: Grant, job_dir: Path, stop: threading.Event) -> None:
    """Show the job's progress and ETA to every user of the queue; a cancel request by root or an admin stops it."""
    while not stop.wait(HEARTBEAT_S):
        if grant.queue.cancel_requested(grant.entry):
            stop.set()
            return
        status = read_status(job_dir, check_alive=False)
        grant.publish(status.progress if status.max_steps else None, jobs.eta_s(status))


def run(job_dir: Path, *, resume: bool, stop: threading.Event, devices: list[str] | None) -> jobs.State:
    """Train on `devices` (CUDA_VISIBLE_DEVICES), here or in the ranks; return how the job ended."""
    if devices is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(devices)
    spec = load_spec(job_dir / "job.toml")
    if spec.training.num_processes == 1:
        return train(job_dir, resume=resume, stop=stop)
    return run_ranks(job_dir, spec, resume=resume, stop=stop)


def run_ranks(job_dir: Path, spec: JobSpec, *, resume: bool, stop: threading.Event) -> jobs.State:
    """Start the ranks with `accelerate launch` and wait; a stop is passed on to every rank.

    The launcher shares this process's group, so `jobs.cancel` signals it too (and a forced cancel kills
    it, and the kernel then the ranks); it is not signalled again here, since a second SIGTERM cuts
    torchrun's graceful shutdown short while the ranks write their checkpoint."""
    from services.finetune.training import cuda_available, resolve_precision

    cuda = cuda_available()
    config = distributed.accelerate_config(spec, cuda=cuda, precision=resolve_precision(spec))
    command = distributed.launch_command(job_dir, distributed.write_config(job_dir, config), resume=resume)
    distributed.reset_ranks(job_dir)
    launcher = subprocess.Popen(command, env=distributed.launch_env(dict(os.environ)), cwd=job_dir)
    signalled: set[int] = set()
    while launcher.poll() is None:
        if stop.is_set():  # ranks that register later are signalled when they do
            distributed.signal_once(distributed.rank_pids(job_dir), signalled)
        time.sleep(POLL_S)
    if stop.is_set():
        return "cancelled"
    if launcher.returncode != 0:
        kind, message = distributed.rank_error(job_dir) or ("RankError", _exit_text(launcher.returncode))
        raise RankError(kind, message)
    return "completed"


def _exit_text(code: int) -> str:
    how = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
    return f"accelerate launch {how} (see train.log)"


def error_summary(exc: BaseException, step: int) -> str:
    """One line for the jobs table, with a next step for the errors users can fix."""
    kind = exc.kind if isinstance(exc, RankError) else type(exc).__name__
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else kind
    if "out of memory" in text.lower():
        return (
            f"CUDA out of memory at step {step}: try training.gradient_checkpointing = true, a smaller "
            'training.micro_batch_size or max_seq_length, or lora.method = "qlora"'
        )
    return f"{kind} at step {step}: {text}"


def _finish(job_dir: Path, state: jobs.State, code: int, error: str | None) -> None:
    status: JobStatus = read_status(job_dir, check_alive=False)
    write_status(job_dir, replace(status, state=state, exit_code=code, error=error, finished_at=jobs._now()))
    store = Store(job_dir.parent.parent)
    with store.transaction() as db:
        db.execute("UPDATE jobs SET status = ?, updated_at = ? WHERE id = ?", (state, jobs._now(), job_dir.name))
