"""GPU detection falls back to a real `nvidia-smi` process when NVML is missing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from services.gpu import MIB, Gpu, GpuUsage, describe, detect_gpus, gpu_usage

FAKE_SMI = """#!/bin/sh
case "$1" in
  *memory.free*) printf '0, NVIDIA H200, 143771, 140000\\n1, NVIDIA H200, 143771, 1024\\n' ;;
  *utilization*) printf '0, 87, 3771, 143771\\n1, [N/A], 142747, 143771\\n' ;;
esac
"""


@pytest.fixture
def smi_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tool = tmp_path / "nvidia-smi"
    tool.write_text(FAKE_SMI)
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setitem(sys.modules, "pynvml", None)  # `import pynvml` raises ImportError


def test_gpus_from_nvidia_smi(smi_only: None) -> None:
    gpus = detect_gpus()
    assert gpus == [Gpu(0, "NVIDIA H200", 143771 * MIB, 140000 * MIB), Gpu(1, "NVIDIA H200", 143771 * MIB, 1024 * MIB)]
    assert describe(gpus) == "2× NVIDIA H200 · 136.7 GiB free"


def test_usage_from_nvidia_smi_reads_na_as_idle(smi_only: None) -> None:
    assert gpu_usage() == [
        GpuUsage(0, 87, 3771 * MIB, 143771 * MIB),
        GpuUsage(1, 0, 142747 * MIB, 143771 * MIB),
    ]


def test_no_nvml_and_no_tool_is_cpu_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setitem(sys.modules, "pynvml", None)
    assert detect_gpus() == [] and gpu_usage() == []
    assert describe([]) == "CPU only"
