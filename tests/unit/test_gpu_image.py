"""The app kit's GPU variant: a base with Python 3.11+ (installed where a CUDA base has none) and a
build step that fails unless CUDA torch and bitsandbytes are inside. The Dockerfile's own RUN lines
run here under `sh` against stand-in modules, so the check is tested without building an image."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "apps" / "appkit" / "app.Dockerfile"
GOOD_BASE = "nvidia/cuda:12.8.1-runtime-ubuntu24.04"


def run_steps() -> list[str]:
    """Every RUN instruction of the Dockerfile, continuation lines joined as Docker joins them."""
    text = re.sub(r"\\\n", "", DOCKERFILE.read_text())
    return [line[4:] for line in text.splitlines() if line.startswith("RUN ")]


def gpu_check() -> str:
    (step,) = [s for s in run_steps() if "bitsandbytes" in s]
    return step.replace("/opt/venv/bin/python", sys.executable)


def stand_ins(folder: Path, torch_version: str, cuda: str | None) -> Path:
    (folder / "torch").mkdir(parents=True)
    (folder / "torch" / "__init__.py").write_text(
        f"__version__ = {torch_version!r}\nclass version:\n    cuda = {cuda!r}\n"
    )
    (folder / "bitsandbytes.py").write_text("__version__ = '0.50.2'\n")
    return folder


def sh(step: str, requirements: str, path: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REQUIREMENTS": requirements, "PYTHONPATH": str(path or "")}
    return subprocess.run(["sh", "-c", step], env=env, capture_output=True, text=True, timeout=60, check=False)


def test_the_gpu_variant_passes_with_cuda_torch_and_bitsandbytes(tmp_path: Path) -> None:
    done = sh(gpu_check(), "requirements-gpu.txt", stand_ins(tmp_path, "2.13.0+cu128", "12.8"))
    assert done.returncode == 0, done.stderr
    assert "GPU variant: torch 2.13.0+cu128 CUDA 12.8 bitsandbytes 0.50.2" in done.stdout


def test_the_gpu_variant_fails_on_a_cpu_torch(tmp_path: Path) -> None:
    done = sh(gpu_check(), "requirements-gpu.txt", stand_ins(tmp_path, "2.13.0+cpu", None))
    assert done.returncode != 0 and "torch 2.13.0+cpu is a CPU build" in done.stderr


def test_the_gpu_variant_fails_without_bitsandbytes(tmp_path: Path) -> None:
    folder = stand_ins(tmp_path, "2.13.0+cu128", "12.8")
    (folder / "bitsandbytes.py").unlink()
    done = sh(gpu_check(), "requirements-gpu.txt", folder)
    assert done.returncode != 0 and "No module named 'bitsandbytes'" in done.stderr


def test_the_cpu_variant_skips_the_check() -> None:
    assert sh(gpu_check(), "requirements.txt").returncode == 0


@pytest.mark.parametrize(("version", "ok"), [((3, 12), True), ((3, 11), True), ((3, 10), False)])
def test_the_builder_refuses_a_base_below_python_3_11(tmp_path: Path, version: tuple[int, int], ok: bool) -> None:
    (step,) = [s for s in run_steps() if "python3-venv" in s]
    code = step.split('python3 -c "', 1)[1].rsplit('"', 1)[0]
    fake = tmp_path / "sitecustomize.py"  # the interpreter claims `version`, as a base's python3 would
    fake.write_text(f"import sys\nsys.version_info = {(*version, 0, 'final', 0)!r}\n")
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode == 0) is ok
    if not ok:
        assert f"BASE_IMAGE has Python 3.10; the pins need 3.11+ (e.g. {GOOD_BASE})" in done.stderr


def test_docs_name_a_gpu_base_that_works() -> None:
    for doc in (ROOT / "README.md", ROOT / "apps" / "chatbot" / "README.md", DOCKERFILE):
        text = doc.read_text()
        assert not re.search(r"nvidia/cuda:\S*ubuntu22\.04", text), doc  # Python 3.10
        assert GOOD_BASE in text, doc
