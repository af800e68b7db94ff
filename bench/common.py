"""Helpers shared by the benchmarks."""

from __future__ import annotations

import compileall
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def median_of(runs: int, fn: Callable[[], float]) -> float:
    return statistics.median(fn() for _ in range(runs))


ROOT = Path(__file__).parents[1]
SOURCES = ["workbench", "services", "apps/appkit/appkit"]
"""The workbench's own packages: an editable install leaves them as source."""


def compile_sources() -> None:
    """Compile the workbench's modules to bytecode, as `make install` does and pip does for every
    installed package (the peers'). Without it a shell with PYTHONDONTWRITEBYTECODE (or a read-only
    checkout) makes each timed start compile our modules again (~35 ms of `workbench`'s start)."""
    for source in SOURCES:
        compileall.compile_dir(ROOT / source, quiet=1)


def report(name: str, ours: float, peer: float, unit: str, *, goal: str, higher_is_better: bool) -> None:
    """Print one line: both figures and the ratio ours/peer against the issue's goal."""
    ratio = ours / peer if peer else float("inf")
    better = "higher" if higher_is_better else "lower"
    figures = f"workbench {ours:.3f} {unit} vs peer {peer:.3f} {unit}"
    print(f"{name}: {figures} -> ratio {ratio:.2f} ({better} is better; goal {goal})")


def serve_app(app: str, env: dict[str, str]) -> tuple[str, subprocess.Popen[bytes]]:
    """The app `apps/<app>` in a uvicorn process of its own, as deployed, on a loopback port, with `env`
    added to this environment; its base URL and the process."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    apps = Path(__file__).parents[1] / "apps"
    path = os.pathsep.join([str(apps / app), str(apps / "appkit")])
    command = [sys.executable, "-m", "uvicorn", "--factory", f"{app}.app:create_app", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--log-level", "warning", "--no-access-log"], env=os.environ | env | {"PYTHONPATH": path}
    )
    return f"http://127.0.0.1:{port}", process
