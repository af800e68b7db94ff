"""Detect GPUs through NVML (nvidia-ml-py), falling back to `nvidia-smi`; neither present means CPU only."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

MIB = 1024**2
T = TypeVar("T")


@dataclass(frozen=True)
class Gpu:
    """One GPU and its memory in bytes."""

    index: int
    name: str
    total_bytes: int
    free_bytes: int


@dataclass(frozen=True)
class GpuUsage:
    """What one GPU is doing right now."""

    index: int
    utilisation_pct: int
    used_bytes: int
    total_bytes: int


def detect_gpus() -> list[Gpu]:
    """All visible NVIDIA GPUs; an empty list on machines without one."""
    return _per_nvml_device(_nvml_gpu) or [_smi_gpu(row) for row in _smi_rows("index,name,memory.total,memory.free")]


def gpu_usage() -> list[GpuUsage]:
    """Utilisation and memory in use of every visible NVIDIA GPU; an empty list without one."""
    fields = "index,utilization.gpu,memory.used,memory.total"
    return _per_nvml_device(_nvml_usage) or [_smi_usage(row) for row in _smi_rows(fields)]


def describe(gpus: list[Gpu]) -> str:
    """One line for a status bar, e.g. "NVIDIA H100 80GB HBM3 · 79.1 GiB free" or "CPU only"."""
    if not gpus:
        return "CPU only"
    first = gpus[0]
    count = f"{len(gpus)}× " if len(gpus) > 1 else ""
    return f"{count}{first.name} · {first.free_bytes / 1024**3:.1f} GiB free"


def _per_nvml_device(read: Callable[[Any, int, Any], T]) -> list[T]:
    """`read(pynvml, index, handle)` for every device in one NVML session; [] without NVML."""
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return []
    try:
        count = pynvml.nvmlDeviceGetCount()
        return [read(pynvml, i, pynvml.nvmlDeviceGetHandleByIndex(i)) for i in range(count)]
    except pynvml.NVMLError:
        return []
    finally:
        pynvml.nvmlShutdown()


def _nvml_gpu(pynvml: Any, index: int, handle: Any) -> Gpu:
    name = pynvml.nvmlDeviceGetName(handle)
    memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
    name = name.decode() if isinstance(name, bytes) else str(name)
    return Gpu(index, name, int(memory.total), int(memory.free))


def _nvml_usage(pynvml: Any, index: int, handle: Any) -> GpuUsage:
    memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
    rates = pynvml.nvmlDeviceGetUtilizationRates(handle)
    return GpuUsage(index, int(rates.gpu), int(memory.used), int(memory.total))


def _smi_rows(fields: str) -> list[list[str]]:
    """`nvidia-smi --query-gpu=FIELDS` as rows of stripped strings; [] without the tool."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run(
            [smi, f"--query-gpu={fields}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [[part.strip() for part in line.split(",")] for line in out.splitlines() if line.strip()]


def _smi_gpu(row: list[str]) -> Gpu:
    index, name, total, free = row
    return Gpu(int(index), name, int(total) * MIB, int(free) * MIB)


def _smi_usage(row: list[str]) -> GpuUsage:
    index, util, used, total = row
    busy = int(util) if util.isdigit() else 0  # "[N/A]" on MIG slices
    return GpuUsage(int(index), busy, int(used) * MIB, int(total) * MIB)
