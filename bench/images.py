"""Image builds: the rebuild after a change to the app's code only vs the cold build. Goal: <= 10%.

Both go through `services.images.ops.build_app` (docker-py's streaming build) on the test bed's
engine and base image. The app is `apps/chatbot` with a wheelhouse of its pinned requirements
(`pip wheel`, the CPU torch from the local find-links; kept in bench/results/ for the next run),
or the fixture app `tests/fixtures/apps/hello` with `WORKBENCH_BENCH_IMAGES_APP=hello` (or when
apps/chatbot is not an app). Each build gets a copy of the app in a temporary folder.

1. Cold: `nocache=True`, every step runs (dependencies installed from the wheelhouse).
2. Rebuild: one line added to one source file of the app, then a normal build: the layers above
   the app's `COPY` come from the cache. Three rebuilds, the median counts.
The images are removed afterwards (cached layers of other images stay).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import report

ROOT = Path(__file__).parents[1]
RESULTS = ROOT / "bench" / "results"
TESTBED = Path(os.environ.get("WORKBENCH_TESTBED_DIR", "/var/lib/workbench-testbed")) / "testbed.json"
REBUILDS = 3


def testbed_values() -> tuple[str | None, str]:
    """(docker host, base image) from the test bed, else DOCKER_HOST and python:3.11-slim."""
    if TESTBED.is_file():
        values = json.loads(TESTBED.read_text())
        return values["WORKBENCH_TESTBED_DOCKER_HOST"], values["WORKBENCH_TESTBED_BASE_IMAGE"]
    return os.environ.get("DOCKER_HOST"), os.environ.get("WORKBENCH_BENCH_BASE_IMAGE", "python:3.11-slim")


def pick_app() -> tuple[str, Path, str]:
    """(name, source folder, source file a code change touches)."""
    chosen = os.environ.get("WORKBENCH_BENCH_IMAGES_APP", "chatbot")
    if chosen == "chatbot" and (ROOT / "apps" / "chatbot" / "pyproject.toml").is_file():
        return "chatbot", ROOT / "apps" / "chatbot", "chatbot/app.py"
    return "hello", ROOT / "tests" / "fixtures" / "apps" / "hello", "app/server.py"


def wheelhouse(app: Path) -> Path:
    """The app's dependencies as wheels, made once (pip's own cache makes a re-make quick)."""
    requirements = app / "requirements.txt"
    target = RESULTS / f"wheelhouse-{app.name}"
    stamp = target / ".requirements"
    if stamp.is_file() and stamp.read_text() == requirements.read_text():
        return target
    target.mkdir(parents=True, exist_ok=True)
    print(f"   making the wheelhouse for {app.name} in {target} (once)…", flush=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "-r", str(requirements), "-w", str(target)],
        check=True,
        timeout=3600,
    )
    stamp.write_text(requirements.read_text())
    return target


def copy_app(source: Path, target: Path, wheels: Path | None) -> Path:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "tests", ".*_cache", "*.whl"))
    if wheels is not None:
        for wheel in wheels.glob("*.whl"):
            os.link(wheel, target / "wheels" / wheel.name)
    return target


def build(config: Any, name: str, *, nocache: bool) -> Any:
    from services.images.ops import build_app

    return build_app(config, name, nocache=nocache)


def main() -> None:
    from services.images.engine import connect
    from services.images.ops import ImagesConfig

    docker_host, base_image = testbed_values()
    name, source, code_file = pick_app()
    wheels = wheelhouse(source) if (source / "requirements.txt").is_file() and name != "hello" else None
    with tempfile.TemporaryDirectory(prefix="bench-images-") as tmp:
        app = copy_app(source, Path(tmp) / name, wheels)
        kit = {"kit_dir": ROOT / "apps" / "appkit", "kit_cache": Path(tmp) / "kit-cache"}
        config = ImagesConfig(apps_dir=Path(tmp), base_image=base_image, docker_host=docker_host, **kit)
        first = build(config, name, nocache=True)
        rebuilds = []
        for round_ in range(REBUILDS):
            with (app / code_file).open("a") as fh:
                fh.write(f"\n# bench change {round_}\n")
            rebuilds.append(build(config, name, nocache=False))
        connect(docker_host).remove_image(first.reference, force=True)  # only the tag made here
    cold, ours = first.seconds, statistics.median(r.seconds for r in rebuilds)
    steps = f"{rebuilds[-1].cached_steps} of {rebuilds[-1].steps} steps from the cache"
    times = ", ".join(f"{r.seconds:.2f}" for r in rebuilds)
    print(f"   app {name}: cold build {cold:.1f} s; rebuilds {times} s ({steps})")
    report("rebuild after an app-code change", ours, cold, "s", goal="<= 0.10", higher_is_better=False)


if __name__ == "__main__":
    main()
