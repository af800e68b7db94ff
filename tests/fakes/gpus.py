"""The `fake_gpus` fixture: this machine reports the GPUs a test chooses through a fake `nvidia-smi`.

Use it in a test module (or a conftest) with::

    from tests.fakes import gpus as fakes
    from tests.fakes.gpus import FakeGpus, gpu, mig_slice

    fake_gpus = fakes.fake_gpus  # the fixture (an assignment, so ruff sees no shadowed import)

then::

    def test_two_jobs(fake_gpus: FakeGpus) -> None:
        fake_gpus([gpu(0), gpu(1, free_mib=1024)])           # two H200s, the second nearly full
        ...
        fake_gpus([gpu(0, mig=[mig_slice(0), mig_slice(1)])])  # a GPU split into two MIG instances
        fake_gpus(fail="NVIDIA-SMI has failed because it couldn't communicate with the driver")

Calling the fixture (again, at any time) rewrites the JSON the fake reads, so the next
`services.gpu.detect_gpus()` sees the new state. The fixture prepends `tests/fakes` to PATH,
points `FAKE_NVIDIA_SMI` at the JSON in `tmp_path`, and makes `import pynvml` fail in this
process, so the `nvidia-smi` fallback answers. Subprocesses inherit PATH and `FAKE_NVIDIA_SMI`;
they reach NVML only on a machine that has a driver, so on CPU machines they see the fake too.

`FakeGpus.env()` gives those two variables for a subprocess started with its own environment.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

FAKES = Path(__file__).resolve().parent
H200_MIB = 143771


def gpu(
    index: int,
    *,
    name: str = "NVIDIA H200",
    total_mib: int | str = H200_MIB,
    free_mib: int | str | None = None,
    used_mib: int | str | None = None,
    utilisation: int | str = 0,
    mig: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One GPU as the fake reports it; memory in MiB (a string such as "[N/A]" is passed through)."""
    if free_mib is None:
        free_mib = (
            total_mib if isinstance(total_mib, str) else total_mib - (used_mib if isinstance(used_mib, int) else 0)
        )
    if used_mib is None:
        used_mib = total_mib - free_mib if isinstance(total_mib, int) and isinstance(free_mib, int) else "[N/A]"
    return {
        "name": name,
        "uuid": f"GPU-00000000-0000-0000-0000-{index:012d}",
        "memory_total": total_mib,
        "memory_used": used_mib,
        "memory_free": free_mib,
        "utilisation": utilisation,
        "mig": mig or [],
    }


def mig_slice(
    number: int, *, parent: int = 0, profile: str = "3g.71gb", total_mib: int = 71680, used_mib: int = 0
) -> dict[str, Any]:
    """One MIG instance of a GPU (put it in `gpu(..., mig=[...])`)."""
    return {
        "profile": profile,
        "uuid": f"MIG-00000000-0000-0000-{parent:04d}-{number:012d}",
        "memory_total": total_mib,
        "memory_used": used_mib,
        "memory_free": total_mib - used_mib,
    }


class FakeGpus:
    """Writes the fake's state; call it with the devices (or `fail=`) the machine should report."""

    def __init__(self, state_file: Path) -> None:
        self.state_file = state_file
        self(devices=[])

    def __call__(self, devices: list[dict[str, Any]] | None = None, *, fail: str | None = None) -> None:
        """Report `devices` from now on; `fail` makes the tool exit 9 with that message instead."""
        state = {"devices": devices or [], "fail": fail}
        self.state_file.write_text(json.dumps(state), encoding="utf-8")

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """`base` (default: os.environ) with the fake first on PATH and its state file named."""
        env = dict(os.environ if base is None else base)
        env["PATH"] = f"{FAKES}{os.pathsep}{env.get('PATH', '')}"
        env["FAKE_NVIDIA_SMI"] = str(self.state_file)
        return env


@pytest.fixture
def fake_gpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGpus]:
    """A machine without GPUs until the test calls `fake_gpus([...])`; see the module docstring."""
    fake = FakeGpus(tmp_path / "fake-nvidia-smi.json")
    for key, value in fake.env().items():
        if key in {"PATH", "FAKE_NVIDIA_SMI"}:
            monkeypatch.setenv(key, value)
    monkeypatch.setitem(sys.modules, "pynvml", None)  # `import pynvml` raises ImportError
    yield fake
