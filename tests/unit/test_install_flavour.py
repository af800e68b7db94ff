"""`make install` (and so `make run`/`make test`) picks CUDA torch and the gpu extra where `nvidia-smi`
answers with a GPU, the pinned CPU wheel elsewhere; `make -n` shows the plan and installs nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.fakes import gpus as fakes
from tests.fakes.gpus import FakeGpus, gpu

fake_gpus = fakes.fake_gpus  # the fixture

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def dry_run(fake: FakeGpus, venv: Path, *args: str) -> str:
    env = fake.env()
    env.pop("MAKEFLAGS", None)
    result = subprocess.run(
        ["make", "-n", "-C", str(ROOT), "install", f"VENV={venv}", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def installed_venv(tmp_path: Path, flavour: str) -> Path:
    """A venv folder whose stamp says `flavour` was installed after the last pyproject.toml change."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch()
    stamp = venv / f".installed-{flavour}"
    stamp.touch()
    later = time.time() + 3600
    os.utime(stamp, (later, later))
    return venv


def test_gpu_machine_installs_cuda_torch_and_the_gpu_extra(fake_gpus: FakeGpus, tmp_path: Path) -> None:
    fake_gpus([gpu(0)])
    plan = dry_run(fake_gpus, tmp_path / "venv")
    assert "installing for cuda" in plan
    assert 'pip install -q "torch>=2.4"' in plan and "torch==2.13.0" not in plan
    assert '-e ".[dev,gpu]"' in plan and ".installed-cuda" in plan


def test_a_torch_index_can_be_named(fake_gpus: FakeGpus, tmp_path: Path) -> None:
    fake_gpus([gpu(0)])
    plan = dry_run(fake_gpus, tmp_path / "venv", "TORCH_INDEX=https://download.pytorch.org/whl/cu130")
    assert '"torch>=2.4" --index-url https://download.pytorch.org/whl/cu130' in plan


@pytest.mark.parametrize("state", ["no devices", "tool failing"])
def test_cpu_machine_keeps_the_pinned_cpu_wheel(fake_gpus: FakeGpus, tmp_path: Path, state: str) -> None:
    fake_gpus([], fail="NVIDIA-SMI has failed" if state == "tool failing" else None)
    plan = dry_run(fake_gpus, tmp_path / "venv")
    assert 'pip install -q "torch==2.13.0"' in plan and '-e ".[dev]"' in plan
    assert "gpu]" not in plan and ".installed-cpu" in plan


def test_flavour_can_be_forced(fake_gpus: FakeGpus, tmp_path: Path) -> None:
    fake_gpus([gpu(0)])
    assert "installing for cpu" in dry_run(fake_gpus, tmp_path / "venv", "FLAVOUR=cpu")


def test_changing_the_flavour_reinstalls(fake_gpus: FakeGpus, tmp_path: Path) -> None:
    venv = installed_venv(tmp_path, "cpu")
    assert "pip install" not in dry_run(fake_gpus, venv)  # still a CPU machine: up to date
    fake_gpus([gpu(0)])
    plan = dry_run(fake_gpus, venv)  # a GPU appeared (or the driver answers now)
    assert "pip uninstall -q -y torch" in plan and '-e ".[dev,gpu]"' in plan
