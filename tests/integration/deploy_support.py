"""The deploy test bed: fixture images in the test registry and a target that is the second Docker engine,
reached over SSH with the test bed's key and pinned host key (or, `two_hosts`, that one and the third engine).

Run as a script (`python -m tests.integration.deploy_support APP IMAGE VERSION DATA_DIR [READY_AFTER_S]`)
it deploys once, so a test can kill a deploy halfway or hold its lock from another process; an app of
`REPLICA_APPS` goes to both hosts (`replica_target`).
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from services.deploy.target import AppSpec, Target
from tests.testbed import read_testbed

FIXTURE = Path(__file__).parents[1] / "fixtures" / "deploy"
NS_IP = "10.203.0.2"
APPS = {
    "fx-first": 18101,
    "fx-swap": 18102,
    "fx-broken": 18103,
    "fx-rollback": 18104,
    "fx-lock": 18105,
    "fx-kill": 18106,
    "fx-art": 18107,
    "fx-keys": 18109,
    "fx-vol": 18110,
    "fx-leak": 18111,
    "fx-lease": 18112,
    "fx-lost": 18113,
    "fx-seal": 18114,
}
"""Every test app with its public port: one proxy serves them all, so it is never recreated between tests."""
REPLICA_APPS = {"fx-rep": 18140, "fx-rep-kill1": 18141, "fx-rep-kill2": 18142, "fx-rep-recover": 18143,
                "fx-rep-restart": 18144, "fx-rep-rollback": 18145}  # fmt: skip
"""The apps of the two-host tests (`replica_target`), each with 2 replicas, one per host."""


def registry_auth(tb: dict[str, str]) -> dict[str, str]:
    password = Path(tb["WORKBENCH_TESTBED_REGISTRY_PASSWORD_FILE"]).read_text().strip()
    return {"username": tb["WORKBENCH_TESTBED_REGISTRY_USER"], "password": password}


def target(tb: dict[str, str], **apps: AppSpec) -> Target:
    """The staging target on the deploy host, with every test app (overridden by `apps`)."""
    specs = {name: AppSpec(name, port, ready_timeout_s=30) for name, port in APPS.items()}
    specs.update(apps)
    return Target(
        "staging",
        f"ssh://{tb['WORKBENCH_TESTBED_DEPLOY_SSH']}",
        "staging",
        apps=specs,
        identity_file=Path(tb["WORKBENCH_TESTBED_DEPLOY_SSH_KEY"]),
        known_hosts=Path(tb["WORKBENCH_TESTBED_DEPLOY_KNOWN_HOSTS"]),
        keep=2,
        proxy_image=tb["WORKBENCH_TESTBED_PROXY_IMAGE"],
    )


def two_hosts(tb: dict[str, str], known_hosts: Path, **apps: AppSpec) -> Target:
    """The staging target over both deploy hosts (the proxy on the first), with only `apps`; `known_hosts` is
    a file to write both hosts' pinned keys into (a target has one known_hosts file)."""
    keys = (Path(tb[f"WORKBENCH_TESTBED_{h}_KNOWN_HOSTS"]).read_text() for h in ("DEPLOY", "DEPLOY2"))
    known_hosts.write_text("".join(keys))
    engines = (f"ssh://{tb['WORKBENCH_TESTBED_DEPLOY_SSH']}", f"ssh://{tb['WORKBENCH_TESTBED_DEPLOY2_SSH']}")
    return replace(target(tb), apps=dict(apps), known_hosts=known_hosts, docker_host=engines[0], hosts=engines)


def replica_target(tb: dict[str, str], known_hosts: Path, **changes: Any) -> Target:
    """The two-host target of every app in `REPLICA_APPS` (2 replicas each), the app `changes["app"]` changed by
    the rest of `changes`; the same apps and ports every time, so its proxy is never recreated."""
    app = changes.pop("app", None)
    specs = {
        name: replace(AppSpec(name, port, ready_timeout_s=30, replicas=2, drain_timeout_s=10),
                      **(changes if name == app else {}))
        for name, port in REPLICA_APPS.items()
    }  # fmt: skip
    return two_hosts(tb, known_hosts, **specs)


def app_spec(name: str, **changes: Any) -> AppSpec:
    return replace(AppSpec(name, APPS[name], ready_timeout_s=30), **changes)


@dataclass(frozen=True)
class Images:
    v1: str
    v2: str
    broken: str


def build_and_push(tb: dict[str, str], repository: str = "deploy-fixture") -> Images:
    """The fixture app as versions 1.0.0 and 2.0.0 and a broken 3.0.0, pushed to the test registry."""
    import docker

    host = docker.DockerClient(base_url=tb["WORKBENCH_TESTBED_DOCKER_HOST"])
    auth = registry_auth(tb)
    tags = []
    for version, broken in (("1.0.0", "0"), ("2.0.0", "0"), ("3.0.0", "1")):
        tag = f"{tb['WORKBENCH_TESTBED_REGISTRY']}/{repository}:{version}"
        args = {"BASE_IMAGE": tb["WORKBENCH_TESTBED_BASE_IMAGE"], "VERSION": version, "BROKEN": broken}
        host.images.build(path=str(FIXTURE), tag=tag, buildargs=args, rm=True)
        for line in host.images.push(tag, auth_config=auth, stream=True, decode=True):
            assert "error" not in line, line
        tags.append(tag)
    host.close()
    return Images(*tags)


@contextmanager
def pushed_images(tb: dict[str, str], repository: str = "deploy-fixture") -> Iterator[Images]:
    """The fixture's versions pushed as `repository` (`build_and_push`), on a deploy target that is
    cleaned (`clean_target`) before and after."""
    clean_target(tb)
    try:
        yield build_and_push(tb, repository)
    finally:
        clean_target(tb)


def clean_target(tb: dict[str, str]) -> None:
    """Remove everything earlier deploys left on the deploy engines (containers, volumes, the network)."""
    import docker

    for key in ("WORKBENCH_TESTBED_DEPLOY_DOCKER_HOST", "WORKBENCH_TESTBED_DEPLOY2_DOCKER_HOST"):
        if key not in tb:  # a test bed started before it had a second host
            continue
        engine = docker.DockerClient(base_url=tb[key])
        for container in engine.containers.list(all=True, filters={"label": "workbench.role"}):
            container.remove(force=True)
        for volume in engine.volumes.list(filters={"label": "workbench.role"}):
            volume.remove(force=True)
        for network in engine.networks.list(names=["wb-net"]):
            network.remove()
        engine.close()


def get(port: int, path: str = "/", timeout: float = 5, *, key: str | None = None) -> tuple[int, dict[str, Any]]:
    """GET through the target's proxy (with API key `key`), without any proxy of the environment."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(f"http://{NS_IP}:{port}{path}")
    if key is not None:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {}


def main(argv: list[str]) -> None:
    """Deploy APP IMAGE VERSION with the workspace in DATA_DIR; the app is ready after READY_AFTER_S (60).
    `rollback APP DATA_DIR`: roll the two-host APP back to its previous release instead."""
    from services.artifacts.workspace import Artifacts
    from services.deploy.pipeline import DeployRequest, deploy

    tb = read_testbed()
    if argv[0] == "rollback":
        roll_back(tb, argv[1], Path(argv[2]))
        return
    app, image, version, data_dir, *ready = argv
    env = {"READY_AFTER_S": ready[0] if ready else "60"}
    if app in REPLICA_APPS:
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        where = replica_target(tb, Path(data_dir) / "known_hosts", app=app, env=env, ready_timeout_s=90)
    else:
        where = target(tb, **{app: app_spec(app, env=env, ready_timeout_s=90)})
    request = DeployRequest(where, app, image, version, registry_auth=registry_auth(tb))
    print("deploying", flush=True)
    deploy(request, artifacts=Artifacts(Path(data_dir)), actor="killed@test", on_step=lambda e: print(e, flush=True))


def roll_back(tb: dict[str, str], app: str, data_dir: Path) -> None:
    from services.artifacts.workspace import Artifacts
    from services.deploy.rollback import rollback

    where = replica_target(tb, data_dir / "known_hosts", app=app, ready_timeout_s=90)
    print("rolling back", flush=True)
    rollback(where, app, artifacts=Artifacts(data_dir), actor="killed@test", registry_auth=registry_auth(tb),
             on_step=lambda e: print(e, flush=True))  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])


@dataclass
class Load:
    """Steady load through the target's proxy while a `with` block runs: `workers` threads sending GET `path`,
    each on a new connection, about `rate` requests per second in all. `seen` holds (wall-clock time, status,
    answering host, version) per request, status 0 for a connection error."""

    port: int
    rate: float = 40.0
    workers: int = 8
    path: str = "/whoami"
    seen: list[tuple[float, int, str | None, str | None]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Load:
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(self.workers)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

    def _run(self) -> None:
        interval = self.workers / self.rate
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                code, body = get(self.port, self.path, timeout=5)
            except OSError:
                code, body = 0, {}
            self.seen.append((time.time(), code, body.get("host"), body.get("version")))
            self._stop.wait(max(0.0, interval - (time.monotonic() - started)))

    def wait(self, more: int, timeout: float = 60.0) -> None:
        """Until `more` answers beyond those seen now arrived, however fast this machine makes them."""
        goal, deadline = len(self.seen) + more, time.monotonic() + timeout
        while len(self.seen) < goal:
            assert time.monotonic() < deadline, f"{len(self.seen)} of {goal} answers after {timeout} s"
            time.sleep(0.01)

    def failed(self) -> list[tuple[float, int, str | None, str | None]]:
        return [s for s in self.seen if s[1] != 200]


PROXY_LOG = re.compile(r"^(\d+\.\d+) (\d+\.\d+) (\d{3}) \"[^\"]*\" upstream=(.*?) upstream_status=(.*)$")


def proxy_log(tb: dict[str, str], since: float) -> list[tuple[float, int, list[str]]]:
    """The proxy's access log of requests begun since `since` (wall clock): (when the request began, status,
    every upstream server it was sent to, in order)."""
    import docker

    engine = docker.DockerClient(base_url=tb["WORKBENCH_TESTBED_DEPLOY_DOCKER_HOST"])
    try:
        text = engine.containers.get("wb-proxy").logs(stderr=False, since=int(since) - 1).decode(errors="replace")
    finally:
        engine.close()
    found = []
    for line in text.splitlines():
        match = PROXY_LOG.match(line.strip())
        if match is None:
            continue
        began = float(match.group(1)) - float(match.group(2))
        if began >= since:
            found.append((began, int(match.group(3)), [s.strip() for s in match.group(4).split(",")]))
    return found
