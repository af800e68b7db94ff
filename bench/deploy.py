"""Deploy and rollback times, and failed requests during a swap at 50 requests/s vs the naive swap.

The target is the test bed's deploy host (the second engine, over SSH), images come from the test
registry. The naive way, measured in the same run on the same engine: stop the old container, then
start the new one on the same published port (what a script without a proxy does).
Goals (the deploy issue): rollback under 5 s, deploy under 30 s excluding model load; 0 failed requests.

Also: HTTPS vs plain HTTP p50 latency through the proxy on one keep-alive connection (the same app, a target
with a certificate of a test CA vs without; goal <= 1.2x), and rollback until the app answers with
`keep_previous_warm` (a proxy switch) vs without (the kept container restarted; goal < 5 s warm).

Replicas (`replicas`): an app with 2 replicas on the test bed's 2 deploy hosts (the proxy on the first) under
50 requests/s: failed requests during a rolling redeploy and a rolling rollback (peer: the naive stop-then-start
of one container, measured in the same run), and, for a replica killed on each host, failed requests and the
seconds from the kill until the last request sent to it began (read from the proxy's access log).

Artifacts (`artifacts`): the artifacts step of a deploy of an app with 2 replicas on the 2 hosts mounting a
120 MB model and a 200-file collection that both hosts already hold: a deploy from a workspace whose earlier
deploy verified them there (the volumes' seals recorded: one listing container per host, nothing hashed) vs a
deploy from a fresh workspace (peer: every file hashed on every host, as every deploy did before), interleaved.

Needs `scripts/testbed up`. `python -m bench deploy`, or parts of it:
`python -m bench.deploy swap tls warm replicas artifacts`.
"""

from __future__ import annotations

import http.client
import ssl
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.common import report

if TYPE_CHECKING:
    from services.artifacts.workspace import Artifacts
    from services.deploy.target import Target

APP = "fx-bench"
NAIVE_PORT = 18201
WARM, COLD = "fx-bench-warm", "fx-bench-cold"
PORTS = {APP: 18200, WARM: 18202, COLD: 18203}
PARTS = ("swap", "tls", "warm", "replicas", "artifacts")
REPLICA_PORTS = {"fx-bench-rep": 18204, "fx-bench-kill1": 18205, "fx-bench-kill2": 18206}
"""The replicated app, and two more whose first (on the proxy's host) or second replica (on the other) is killed."""
SEALED_APP = "fx-bench-art"
SEALED_PORT = 18207
ROUNDS = 3
REQUESTS = 1000
CHATBOT_COLD_ROLLBACK_S = 13.0
"""The real chatbot's rollback without a warm container (its model reloads), measured on the GPU VM."""


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


def p50_latency(connection: http.client.HTTPConnection, requests: int = REQUESTS) -> float:
    """Median seconds of GET / on one keep-alive connection (after a warm-up)."""
    times = []
    for i in range(requests + 20):
        started = time.perf_counter()
        connection.request("GET", "/")
        response = connection.getresponse()
        response.read()
        assert response.status == 200, response.status
        if i >= 20:
            times.append(time.perf_counter() - started)
    connection.close()
    return statistics.median(times)


def p50_curl(url: str, ca: Path | None = None, requests: int = REQUESTS) -> float | None:
    """Median seconds per GET of `url` repeated on one keep-alive connection by curl (a client in C, so the
    figure is the proxy's and TLS's, not Python's); None without curl."""
    import shutil
    import subprocess

    if shutil.which("curl") is None:
        return None
    argv = ["curl", "-s", "--http1.1", "--noproxy", "*", "-w", "\\nT=%{time_total}\\n"]
    argv += ["--cacert", str(ca)] if ca else []
    done = subprocess.run([*argv, *[url] * (requests + 20)], capture_output=True, text=True, check=True, timeout=300)
    times = [float(line[2:]) for line in done.stdout.splitlines() if line.startswith("T=")]  # after each body
    return statistics.median(times[20:])


def tls_vs_plain(tb: dict[str, str], staging: Target, arts: Artifacts, image: str) -> None:
    """p50 of the same app through the proxy over plain HTTP, then over HTTPS (the proxy recreated with TLS)."""
    from services.deploy.pipeline import DeployRequest, deploy
    from services.deploy.target import Tls
    from tests.fakearm.tls import make_certificates
    from tests.integration.deploy_support import NS_IP, registry_auth

    port = PORTS[APP]
    deploy(DeployRequest(staging, APP, image, "1.0.0", registry_auth=registry_auth(tb)), artifacts=arts, actor="bench")
    plain = p50_latency(http.client.HTTPConnection(NS_IP, port, timeout=10))
    plain_curl = p50_curl(f"http://{NS_IP}:{port}/")
    with tempfile.TemporaryDirectory() as folder:
        certs = make_certificates(Path(folder), NS_IP)
        secure = replace(staging, tls=Tls(certs.cert_file, certs.key_file))
        request = DeployRequest(secure, APP, image, "1.0.0", registry_auth=registry_auth(tb))
        deploy(request, artifacts=arts, actor="bench")
        context = ssl.create_default_context(cafile=str(certs.ca_file))
        https = p50_latency(http.client.HTTPSConnection(NS_IP, port, timeout=10, context=context))
        https_curl = p50_curl(f"https://{NS_IP}:{port}/", certs.ca_file)
    if https_curl is not None and plain_curl is not None:
        report("HTTPS vs HTTP p50 through the proxy (keep-alive, curl)", https_curl * 1000, plain_curl * 1000, "ms",
               goal="<= 1.2", higher_is_better=False)  # fmt: skip
    report("HTTPS vs HTTP p50 through the proxy (keep-alive, Python http.client)", https * 1000, plain * 1000, "ms",
           goal="<= 1.2", higher_is_better=False)  # fmt: skip


def rollback_until_answering(tb: dict[str, str], staging: Target, arts: Artifacts, app: str, images: Any) -> float:
    """Deploy 1.0.0 then 2.0.0 of `app`, then seconds from calling rollback until the proxy answers 1.0.0."""
    from services.deploy.pipeline import DeployRequest, deploy
    from services.deploy.rollback import rollback
    from tests.integration.deploy_support import get, registry_auth

    for image, version in ((images.v1, "1.0.0"), (images.v2, "2.0.0")):
        deploy(DeployRequest(staging, app, image, version, registry_auth=registry_auth(tb)), artifacts=arts,
               actor="bench")  # fmt: skip
    started = time.monotonic()
    rollback(staging, app, artifacts=arts, actor="bench")
    while True:
        try:
            if get(PORTS[app], timeout=2)[1].get("version") == "1.0.0":
                return time.monotonic() - started
        except OSError:
            pass
        if time.monotonic() - started > 120:
            raise RuntimeError(f"{app} did not answer 1.0.0 within 120 s of the rollback")
        time.sleep(0.05)


def warm_vs_cold(tb: dict[str, str], staging: Target, arts: Artifacts, images: Any) -> None:
    warm = rollback_until_answering(tb, staging, arts, WARM, images)
    cold = rollback_until_answering(tb, staging, arts, COLD, images)
    report("rollback until the app answers, keep_previous_warm vs kept container restarted", warm, cold, "s",
           goal="warm < 5 s", higher_is_better=False)  # fmt: skip
    print(
        f"  warm {warm:.1f} s ({'meets' if warm < 5 else 'misses'} the < 5 s goal); the cold figure is the fixture"
        f" app's (no model): the real chatbot's cold rollback is ~{CHATBOT_COLD_ROLLBACK_S:.0f} s (its model reloads)"
    )


def main(parts: Sequence[str] = PARTS) -> None:
    from services.artifacts.workspace import Artifacts
    from services.deploy.target import AppSpec
    from tests.integration.deploy_support import build_and_push, clean_target, target
    from tests.testbed import read_testbed

    unknown = set(parts) - set(PARTS)
    if unknown:
        raise SystemExit(f"unknown parts {sorted(unknown)}; choose from {PARTS}")
    tb = read_testbed()
    clean_target(tb)
    images = build_and_push(tb)
    specs = {app: AppSpec(app, port, ready_timeout_s=30, keep_previous_warm=app == WARM) for app, port in PORTS.items()}
    staging = target(tb, **specs)
    try:
        if "swap" in parts:
            swap(tb, staging, images)
        if "warm" in parts:
            with tempfile.TemporaryDirectory() as tmp:
                warm_vs_cold(tb, staging, Artifacts(Path(tmp)), images)
        if "tls" in parts:
            with tempfile.TemporaryDirectory() as tmp:
                tls_vs_plain(tb, staging, Artifacts(Path(tmp)), images.v1)
        if "replicas" in parts:
            clean_target(tb)
            replicas(tb, images)
        if "artifacts" in parts:
            clean_target(tb)
            sealed_vs_hashed(tb, images)
    finally:
        clean_target(tb)


def swap(tb: dict[str, str], staging: Target, images: Any) -> None:
    """Deploy and rollback times and failed requests during a swap, vs the naive stop-then-start."""
    from services.artifacts.workspace import Artifacts
    from services.deploy.pipeline import DeployRequest, deploy
    from services.deploy.rollback import rollback
    from tests.integration.deploy_support import clean_target, registry_auth

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
        swaps.append(under_load(PORTS[APP], lambda: timings.append(run(images.v2, "2.0.0"))))
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


def replicas(tb: dict[str, str], images: Any) -> None:
    """Rolling redeploy and rollback of 2 replicas on 2 hosts under 50 req/s, and a replica killed on each host."""
    from services.artifacts.workspace import Artifacts
    from services.deploy.pipeline import DeployRequest, deploy
    from services.deploy.rollback import rollback
    from services.deploy.target import AppSpec
    from tests.integration.deploy_support import registry_auth, two_hosts

    specs = {app: AppSpec(app, port, ready_timeout_s=30, replicas=2) for app, port in REPLICA_PORTS.items()}
    with tempfile.TemporaryDirectory() as tmp:
        two, arts = two_hosts(tb, Path(tmp) / "known_hosts", **specs), Artifacts(Path(tmp) / "workspace")

        def ship(app: str, image: str, version: str) -> Any:
            return deploy(DeployRequest(two, app, image, version, registry_auth=registry_auth(tb)), artifacts=arts,
                          actor="bench")  # fmt: skip

        app = "fx-bench-rep"
        ship(app, images.v1, "1.0.0")
        rolled = loaded(REPLICA_PORTS[app], lambda: ship(app, images.v2, "2.0.0"))
        back = loaded(REPLICA_PORTS[app], lambda: rollback(two, app, artifacts=arts, actor="bench"))
        kills = [killed(tb, two, ship(name, images.v1, "1.0.0"), REPLICA_PORTS[name], i) for i, name in
                 enumerate(("fx-bench-kill1", "fx-bench-kill2"))]  # fmt: skip
    naive = naive_swap(tb, images.v1, images.v2)
    print(f"rolling deploy of 2 replicas on 2 hosts under 50 req/s: {rolled[1]} of {rolled[0]} failed (goal 0);"
          f" naive stop-then-start of one container: {naive[1]} of {naive[0]} failed")  # fmt: skip
    print(f"rolling rollback of 2 replicas on 2 hosts under 50 req/s: {back[1]} of {back[0]} failed (goal 0)")
    for (requests, failed, out), where in zip(kills, ("the proxy's host", "the other host"), strict=True):
        print(f"one replica killed on {where} under 50 req/s: {failed} of {requests} failed (goal 0),"
              f" out of rotation after {out:.2f} s (goal < 2 s)")  # fmt: skip


def sealed_vs_hashed(tb: dict[str, str], images: Any) -> None:
    """Seconds of the artifacts step (and of the whole deploy) with the volumes' seals recorded vs without."""
    from services.artifacts.storage import LocalFolderStorage
    from services.artifacts.workspace import Artifacts
    from services.deploy.target import AppSpec
    from tests.integration.deploy_support import two_hosts

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)

        def workspace(name: str) -> Artifacts:
            return Artifacts(root / name, open_remote=lambda: LocalFolderStorage(root / "remote"))

        ours = workspace("ours")
        mounts = {mount: push_artifact(ours, root / mount, mount, kind) for mount, kind in ARTIFACTS.items()}
        spec = AppSpec(SEALED_APP, SEALED_PORT, ready_timeout_s=30, replicas=2, artifacts=mounts)
        two = two_hosts(tb, root / "known_hosts", **{SEALED_APP: spec})
        timed(tb, two, ours, images.v1, "1.0.0")  # fills both hosts' volumes, records their seals
        figures: dict[str, list[tuple[float, float]]] = {"sealed": [], "hashed": []}
        for i in range(ROUNDS):
            image, version = (images.v2, "2.0.0") if i % 2 == 0 else (images.v1, "1.0.0")
            figures["sealed"].append(timed(tb, two, ours, image, version))
            figures["hashed"].append(timed(tb, two, workspace(f"fresh-{i}"), image, version))
    for label, runs in figures.items():
        print(f"  {label}: artifacts step " + ", ".join(f"{a:.1f} s (deploy {t:.1f} s)" for a, t in runs))
    step = [statistics.median(a for a, _ in figures[k]) for k in ("sealed", "hashed")]
    total = [statistics.median(t for _, t in figures[k]) for k in ("sealed", "hashed")]
    report("artifacts step, 2 hosts, 120 MB + 200 files held: seals recorded vs every file hashed", *step, "s",
           goal="no re-hash of unchanged volumes", higher_is_better=False)  # fmt: skip
    report("whole deploy, same", *total, "s", goal="faster by the hashing", higher_is_better=False)


ARTIFACTS = {"model": "merged-model", "docs": "dataset"}
"""The bench app's artifact mounts and their kinds: a 120 MB model in 3 files, a collection of 200 files."""


def push_artifact(arts: Artifacts, folder: Path, name: str, kind: str) -> str:
    """Register and push `name` version 1 (made in `folder`); its reference."""
    import os

    from services.artifacts.model import parse_ref

    folder.mkdir(parents=True)
    if kind == "merged-model":
        for i in range(3):
            (folder / f"part-{i}.bin").write_bytes(os.urandom(40 * 1024 * 1024))
    else:
        for i in range(200):
            (folder / f"doc-{i:03}.txt").write_bytes(os.urandom(4096))
    manifest = arts.local.register(kind, f"fx-bench-{name}", "1", folder, lineage={}, actor="bench")
    arts.push(parse_ref(manifest.ref))
    return manifest.ref


def timed(tb: dict[str, str], two: Target, arts: Artifacts, image: str, version: str) -> tuple[float, float]:
    """(seconds of the artifacts step, seconds of the whole deploy) of one deploy."""
    from services.deploy.pipeline import DeployRequest, StepEvent, deploy
    from tests.integration.deploy_support import registry_auth

    events: list[StepEvent] = []
    started = time.monotonic()
    request = DeployRequest(two, SEALED_APP, image, version, registry_auth=registry_auth(tb))
    deploy(request, artifacts=arts, actor="bench", on_step=events.append)
    took = time.monotonic() - started
    return next(e.seconds for e in events if e.step == "artifacts" and e.state == "done"), took


def loaded(port: int, action: Callable[[], object], *, rate: float = 50.0) -> tuple[int, int]:
    """(requests, failures) while `action` runs, from a pool of 10 threads at `rate` requests/s in all."""
    from tests.integration.deploy_support import Load

    with Load(port, rate=rate, workers=10) as load:
        time.sleep(1.0)
        action()
        time.sleep(1.0)
    return len(load.seen), len(load.failed())


def killed(tb: dict[str, str], two: Target, release: Any, port: int, which: int) -> tuple[int, int, float]:
    """(requests, failures, seconds until the last request sent to it began) when replica `which` of `release` is
    killed under 50 req/s."""
    from services.deploy.engine import connect
    from services.deploy.upstream import FAIL_TIMEOUT_S
    from tests.integration.deploy_support import Load, proxy_log

    victim = release.bom["replicas"][which]
    with connect(two.on(victim["engine"])) as client:
        container = client.containers.get(victim["container"])
        address = victim["server"]
        if victim["engine"] == two.docker_host:  # nginx logs the address it resolved the name to
            address = f"{container.attrs['NetworkSettings']['Networks']['wb-net']['IPAddress']}:8000"
        with Load(port, rate=50.0, workers=10) as load:
            time.sleep(1.0)
            killed_at = time.time()
            container.kill()
            time.sleep(4.0)
    tried = [
        at for at, _, servers in proxy_log(tb, killed_at) if address in servers and at < killed_at + FAIL_TIMEOUT_S
    ]
    return len(load.seen), len(load.failed()), max(tried, default=killed_at) - killed_at


if __name__ == "__main__":
    main(sys.argv[1:] or PARTS)
