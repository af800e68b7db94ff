"""Multi-process jobs: the accelerate config and command that start the ranks, and the ranks' pid files.

The trainer's parent process (`runner.main`) holds the job's GPUs and starts
`accelerate launch --config_file JOB_DIR/accelerate.yaml --module services.trainer JOB_DIR --rank`.
The config is always generated and always passed, so a user's own accelerate default config
(~/.cache/huggingface/accelerate/default_config.yaml) never changes how a job starts.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from contextlib import suppress
from pathlib import Path
from typing import Any

from services.finetune.spec import JobSpec

CONFIG_NAME = "accelerate.yaml"
RANKS = "ranks"
SHUTDOWN_S = 300
"""How long torchrun's agent lets signalled ranks finish (a cancelled job's checkpoint) before it kills
them; also how long a rank stuck beside a failed one can keep a failed job from being reported."""

_MIXED = {"bf16": "bf16", "fp16": "fp16", "fp32": "no"}


def accelerate_config(spec: JobSpec, *, cuda: bool, precision: str) -> dict[str, Any]:
    """The `accelerate launch` config for this job.

    Without CUDA the ranks run on the CPU as DDP over gloo (accelerate's FSDP refuses the CPU).
    accelerate starts several local processes only through torchrun (its MULTI_GPU launcher;
    MULTI_CPU runs one process unless mpirun and a hostfile are set up), so a CPU job uses that
    launcher with `use_cpu`, and each rank asks for the CPU itself (`training.distributed_state`).
    """
    config: dict[str, Any] = {
        "compute_environment": "LOCAL_MACHINE",
        "distributed_type": "MULTI_GPU",
        "num_processes": spec.training.num_processes,
        "num_machines": 1,
        "machine_rank": 0,
        "main_process_port": 0,  # a free port, so two jobs never collide
        "gpu_ids": "all",  # the devices are the ones CUDA_VISIBLE_DEVICES shows
        "mixed_precision": _MIXED[precision] if cuda else "no",
        "use_cpu": not cuda,
        "debug": False,
    }
    if cuda and spec.training.distributed == "fsdp":
        config |= {"distributed_type": "FSDP", "fsdp_config": fsdp_config()}
    return config


def fsdp_config() -> dict[str, Any]:
    """FSDP as PEFT documents it for LoRA and QLoRA: the decoder layers wrapped (Trainer adds PEFT's
    policy for the LoRA layers), flat parameters, rank 0 loading and broadcasting, a full state dict."""
    return {
        "fsdp_version": 1,
        "fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP",  # the model's own no-split layer classes
        "fsdp_sharding_strategy": "FULL_SHARD",
        "fsdp_use_orig_params": False,
        "fsdp_state_dict_type": "FULL_STATE_DICT",
        "fsdp_cpu_ram_efficient_loading": True,
        "fsdp_sync_module_states": True,
        "fsdp_offload_params": False,
        "fsdp_backward_prefetch": "BACKWARD_PRE",
        "fsdp_forward_prefetch": False,
        "fsdp_activation_checkpointing": False,  # gradient checkpointing comes from TrainingArguments
    }


def write_config(job_dir: Path, config: dict[str, Any]) -> Path:
    """The config as YAML in the job folder (kept: it records how the job was launched)."""
    import yaml  # type: ignore[import-untyped]

    path = job_dir / CONFIG_NAME
    path.write_text(yaml.safe_dump(config, sort_keys=True))
    return path


def launch_command(job_dir: Path, config_file: Path, *, resume: bool) -> list[str]:
    """`accelerate launch` for the ranks, always with the job's own config file."""
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(config_file),
        "--module",
        "services.trainer",
        str(job_dir),
        "--rank",
        *(["--resume"] if resume else []),
    ]


def launch_env(base: dict[str, str]) -> dict[str, str]:
    """The launcher's environment: cancelled ranks get time to save their checkpoint."""
    return {**base, "TORCH_ELASTIC_SHUTDOWN_TIMEOUT": str(SHUTDOWN_S)}


def reset_ranks(job_dir: Path) -> None:
    """Forget the pid files of an earlier run (a resumed job starts new ranks)."""
    folder = job_dir / RANKS
    folder.mkdir(exist_ok=True)
    for old in folder.iterdir():
        old.unlink()


def write_rank_pid(job_dir: Path, rank: int) -> None:
    """Record this rank's pid, so the parent can pass a cancel on (torchrun gives ranks their own sessions)."""
    folder = job_dir / RANKS
    folder.mkdir(exist_ok=True)
    tmp = folder / f".{rank}.pid.tmp"
    tmp.write_text(str(os.getpid()))
    tmp.replace(folder / f"{rank}.pid")


def rank_pids(job_dir: Path) -> list[int]:
    """The pids the ranks of the current run recorded."""
    folder = job_dir / RANKS
    pids = []
    for path in sorted(folder.glob("*.pid")) if folder.is_dir() else []:
        with suppress(OSError, ValueError):
            pids.append(int(path.read_text()))
    return pids


def signal_once(pids: list[int], done: set[int], sig: int = signal.SIGTERM) -> None:
    """Send `sig` to each pid not in `done` yet (gone processes are skipped) and remember it."""
    for pid in pids:
        if pid not in done:
            with suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
            done.add(pid)


def write_rank_error(job_dir: Path, rank: int, exc: BaseException) -> None:
    """Record why this rank failed, for the parent's status line."""
    record = {"type": type(exc).__name__, "message": str(exc)}
    (job_dir / RANKS / f"{rank}.error").write_text(json.dumps(record))


def rank_error(job_dir: Path) -> tuple[str, str] | None:
    """(exception type, message) of the first rank that recorded a failure."""
    for path in sorted((job_dir / RANKS).glob("*.error")):
        with suppress(OSError, ValueError):
            record = json.loads(path.read_text())
            return str(record["type"]), str(record["message"])
    return None


def die_with_parent() -> None:
    """Linux: have the kernel kill this rank when its launcher dies (a forced cancel kills only the launcher)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    with suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
