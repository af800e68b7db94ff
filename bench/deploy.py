"""Deploy and rollback times, and failed requests during a swap at 50 requests/s vs the naive swap.

The target is the test bed's deploy host (the second engine, over SSH), images come from the test
registry. The naive way, measured in the same run on the same engine: stop the old container, then
start the new one on the same published port (what a script without a proxy does).
Goals (the deploy issue): rollback under 5 s, deploy under 30 s excluding model load; 0 failed requests.

Needs `scripts/testbed up`. `python -m bench deploy`.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

APP = "fx-bench"
NAIVE_PORT = 18201


def under_load(port: int, action: Callable[[], object], *, rate: float = 50.0) -> tuple[int, int]:
    """(requests, failures) while `action` runs, one new connection per request at `rate` per second."""
    from tests.integration.deploy_support import get

    counts = [0, 0]
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                ok = get(port, timeout=5)[0] == 200
            except OSError:
                ok = False
            counts[0] += 1
            counts[1] += 0 if ok else 1
            time.sleep(max(0.0, 1 / rate - (time.monotonic() - started)))

    loader = threading.Thread(target=load)
    loader.start()
    time.sleep(1.0)
    action()
    time.sleep(1.0)
    stop.set()
    loader.join()
    return counts[0], counts[1]


def naive_swap(tb: dict[str, str], old: str, new: str) -> tuple[int, int]:
    """Stop the old container, then start the new one on the same port, under the same load."""
    import docker

    from tests.integration.deploy_support import registry_auth

    engine = docker.DockerClient(base_url=tb["WORKBENCH_TESTBED_DEPLOY_DOCKER_HOST"])
    for image in (old, new):
        engine.images.pull(image, auth_config=registry_auth(tb))
    labels = {"workbench.role": "bench"}
    first = engine.containers.run(old, detach=True, ports={"8000/tcp": NAIVE_PORT}, labels=labels)
    time.sleep(2.0)

    def swap() -> None:
        first.stop(timeout=10)
        first.remove()
        engine.containers.run(new, detach=True, ports={"8000/tcp": NAIVE_PORT}, labels=labels)

    try:
        return under_load(NAIVE_PORT, swap)
    finally:
        for container in engine.containers.list(all=True, filters={"label": "workbench.role=bench"}):
            container.remove(force=True)


def main() -> None:
    from services.artifacts.workspace import Artifacts
    from services.deploy.pipeline import DeployRequest, deploy
    from services.deploy.rollback import rollback
    from services.deploy.target import AppSpec
    from tests.integration.deploy_support import build_and_push, clean_target, registry_auth, target
    from tests.testbed import read_testbed

    tb = read_testbed()
    clean_target(tb)
    images = build_and_push(tb)
    spec = AppSpec(APP, 18200, ready_timeout_s=30)
    staging = target(tb, **{APP: spec})
    with tempfile.TemporaryDirectory() as tmp:
        arts = Artifacts(Path(tmp))

        def run(image: str, version: str) -> tuple[float, float]:
            started = time.monotonic()
            request = DeployRequest(staging, APP, image, version, registry_auth=registry_auth(tb))
            release = deploy(request, artifacts=arts, actor="bench")
            return release.bom["serving_after_s"], time.monotonic() - started

        run(images.v1, "1.0.0")
        swaps: list[tuple[int, int]] = []
        timings: list[tuple[float, float]] = []
        swaps.append(under_load(18200, lambda: timings.append(run(images.v2, "2.0.0"))))
        started = time.monotonic()
        back = rollback(staging, APP, artifacts=arts, actor="bench")
        rollback_total = time.monotonic() - started
    naive = naive_swap(tb, images.v1, images.v2)
    clean_target(tb)

    serving, total = timings[0]
    print(f"deploy of a built image: serving after {serving:.1f} s, whole pipeline {total:.1f} s (goal < 30 s)")
    print(
        f"rollback: serving after {back.bom['serving_after_s']:.1f} s, "
        f"with connect and drain {rollback_total:.1f} s (goal < 5 s)"
    )
    print(f"failed requests during the swap at 50 req/s: workbench {swaps[0][1]} of {swaps[0][0]} (goal 0)")
    print(f"  naive stop-then-start on the same engine: {naive[1]} of {naive[0]} failed")


if __name__ == "__main__":
    main()
