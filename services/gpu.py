"""Detect GPUs through NVML (nvidia-ml-py), falling back to `nvidia-smi`; neither present means CPU only."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

MIB = 1024**2


@dataclass(frozen=True)
class Gpu:
    """One GPU and its memory in bytes."""

    index: int
    name: str
    total_bytes: int
    free_bytes: int


def detect_gpus() -> list[Gpu]:
    """All visible NVIDIA GPUs; an empty list on machines without one."""
    return _from_nvml() or _from_nvidia_smi()


@dataclass(frozen=True)
class GpuUsage:
    """What one GPU is doing right now."""

    index: int
    utilisation_pct: int
    used_bytes: int
    total_bytes: int


def gpu_usage() -> list[GpuUsage]:
    """Utilisation and memory in use of every visible NVIDIA GPU; an empty list without one."""
    return _usage_from_nvml() or _usage_from_nvidia_smi()


def describe(gpus: list[Gpu]) -> str:
    """One line for a status bar, e.g. "NVIDIA H100 80GB HBM3 · 79.1 GiB free" or "CPU only"."""
    if not gpus:
        return "CPU only"
    first = gpus[0]
    count = f"{len(gpus)}× " if len(gpus) > 1 else ""
    return f"{count}{first.name} · {first.free_bytes / 1024**3:.1f} GiB free"


def _from_nvml() -> list[Gpu]:
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return []
    try:
        return [_nvml_gpu(pynvml, i) for i in range(pynvml.nvmlDeviceGetCount())]
    finally:
        pynvml.nvmlShutdown()


def _nvml_gpu(pynvml: object, index: int) -> Gpu:
    handle = pynvml.nvmlDeviceGetHandleByIndex(index)  # type: ignore[attr-defined]
    name = pynvml.nvmlDeviceGetName(handle)  # type: ignore[attr-defined]
    memory = pynvml.nvmlDeviceGetMemoryInfo(handle)  # type: ignore[attr-defined]
    name = name.decode() if isinstance(name, bytes) else str(name)
    return Gpu(index, name, int(memory.total), int(memory.free))


def _from_nvidia_smi() -> list[Gpu]:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    query = "--query-gpu=index,name,memory.total,memory.free"
    try:
        out = subprocess.run(
            [smi, query, "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [_smi_gpu(line) for line in out.splitlines() if line.strip()]


def _smi_gpu(line: str) -> Gpu:
    index, name, total, free = (part.strip() for part in line.split(","))
    return Gpu(int(index), name, int(total) * MIB, int(free) * MIB)


def _usage_from_nvml() -> list[GpuUsage]:
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return []
    try:
        usage = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            rates = pynvml.nvmlDeviceGetUtilizationRates(handle)
            usage.append(GpuUsage(i, int(rates.gpu), int(memory.used), int(memory.total)))
        return usage
    except pynvml.NVMLError:
        return []
    finally:
        pynvml.nvmlShutdown()


def _usage_from_nvidia_smi() -> list[GpuUsage]:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    query = "--query-gpu=index,utilization.gpu,memory.used,memory.total"
    try:
        out = subprocess.run(
            [smi, query, "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=5, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    usage = []
    for line in out.splitlines():
        if line.strip():
            index, util, used, total = (part.strip() for part in line.split(","))
            busy = int(util) if util.isdigit() else 0  # "[N/A]" on MIG slices
            usage.append(GpuUsage(int(index), busy, int(used) * MIB, int(total) * MIB))
    return usage
