"""The rolling replacement of replicas on fake engines: one new replica in and one old one out per reload (so
as many serve as before, all the time), the old one on the same host first, drained only after it left the
upstream, and a failure halfway putting the replaced replicas back."""

from __future__ import annotations

import contextlib
import io
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from services.deploy import proxy
from services.deploy.rolling import Rollout, Slot
from services.deploy.target import AppSpec, Target
from services.deploy.upstream import local_replica, parse_replicas, remote_replica
from services.errors import DeployFailedError

H1, H2 = "ssh://ops@10.0.0.1:22", "ssh://ops@10.0.0.2:22"
SPEC = AppSpec("bot", 8080, replicas=2)
TARGET = Target("prod", H1, "prod", apps={"bot": SPEC}, hosts=(H1, H2))


@dataclass
class Exec:
    exit_code: int
    output: bytes = b""


@dataclass
class FakeContainer:
    name: str
    log: list[str]
    status: str = "running"
    labels: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)

    def exec_run(self, argv: list[str]) -> Exec:
        if "nginx -t -q && nginx -s reload" in argv:
            servers = [r.container for r in parse_replicas(self.files["wb-bot.conf"])]
            self.log.append("reload " + " ".join(servers))
        return Exec(0)  # readiness, reachability and drain probes all pass

    def start(self) -> None:
        self.status = "running"
        self.log.append(f"start {self.name}")

    def stop(self, timeout: int) -> None:
        self.status = "exited"
        self.log.append(f"stop {self.name}")

    def reload(self) -> None:
        pass

    def put_archive(self, folder: str, data: bytes) -> None:
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for member in tar.getmembers():
                extracted = tar.extractfile(member)
                assert extracted is not None
                self.files[member.name] = extracted.read().decode()

    def get_archive(self, path: str) -> tuple[Iterator[bytes], dict[str, str]]:
        from docker.errors import NotFound

        name = Path(path).name
        if name not in self.files:
            raise NotFound(path)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            data = self.files[name].encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        return iter([buffer.getvalue()]), {}


class FakeEngine:
    """Enough of docker-py's client for a rollout: containers by name, and the running ones by label."""

    def __init__(self, log: list[str], *containers: FakeContainer) -> None:
        self.by_name = {c.name: c for c in containers}
        self.api = self
        self.containers = self
        self.log = log

    def get(self, name: str) -> FakeContainer:
        from docker.errors import NotFound

        if name not in self.by_name:
            raise NotFound(name)
        return self.by_name[name]

    def __call__(self, filters: dict[str, Any]) -> list[dict[str, Any]]:  # client.api.containers(filters=...)
        return [
            {"Names": [f"/{c.name}"]}
            for c in self.by_name.values()
            if c.status == "running" and c.labels.get("workbench.app") == "bot"
        ]

    def add(self, name: str, port: int | None = None) -> FakeContainer:
        ports = {"8000/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(port)}]} if port else {}
        container = FakeContainer(
            name, self.log, labels={"workbench.app": "bot"}, attrs={"NetworkSettings": {"Ports": ports}}
        )
        self.by_name[name] = container
        return container


@contextlib.contextmanager
def noted(name: str) -> Iterator[Callable[[str], None]]:
    yield lambda detail: None


def engines_with_two_old_replicas() -> tuple[dict[str, FakeEngine], list[str]]:
    log: list[str] = []
    gateway = FakeContainer(
        proxy.PROXY, log, labels={"workbench.role": "proxy", "workbench.ports": "8080", "workbench.tls": "off"}
    )
    h1, h2 = FakeEngine(log, gateway), FakeEngine(log)
    h1.add("bot-1-a")
    h2.add("bot-1-b", 32001)
    old = [local_replica("bot-1-a", H1, 8000), remote_replica("bot-1-b", H2, "10.0.0.2", 32001)]
    gateway.files["wb-bot.conf"] = proxy.site_config("bot", 8080, old, 8000)
    return {H1: h1, H2: h2}, log


def slot(engines: dict[str, FakeEngine], engine: str, name: str, port: int | None = None) -> Slot:
    return Slot(engine, lambda client: engines[engine].add(name, port))


def test_one_in_one_out_per_reload_and_the_old_one_drained_after_it_left() -> None:
    engines, log = engines_with_two_old_replicas()
    rollout = Rollout(TARGET, SPEC, dict(engines), noted)  # type: ignore[arg-type]
    done = rollout.run([slot(engines, H1, "bot-2-a"), slot(engines, H2, "bot-2-b", 32002)])
    assert [r.container for r in done] == ["bot-2-a", "bot-2-b"]
    assert [line for line in log if line.startswith(("reload", "stop"))] == [
        "reload bot-2-a bot-1-b",  # the new one in, the old one on its host out: still two serving
        "stop bot-1-a",
        "reload bot-2-a bot-2-b",
        "stop bot-1-b",
    ]
    assert done[1].server == "10.0.0.2:32002"  # the other host's replica by its published port


def test_a_failure_halfway_routes_the_replaced_replicas_again() -> None:
    engines, log = engines_with_two_old_replicas()
    rollout = Rollout(TARGET, SPEC, dict(engines), noted)  # type: ignore[arg-type]

    def broken(client: Any) -> Any:
        raise DeployFailedError("bot-2-b did not start")

    with pytest.raises(DeployFailedError):
        rollout.run([slot(engines, H1, "bot-2-a"), Slot(H2, broken)])
    rollout.undo()
    assert log[-2:] == ["start bot-1-a", "reload bot-1-b bot-1-a"]  # restarted, ready, then routed again
    assert rollout.routed() == {"bot-1-a", "bot-1-b"}  # so the pipeline removes only bot-2-a


def test_scaling_up_keeps_the_old_replica_until_the_last_switch() -> None:
    log: list[str] = []
    gateway = FakeContainer(
        proxy.PROXY, log, labels={"workbench.role": "proxy", "workbench.ports": "8080", "workbench.tls": "off"}
    )
    h1, h2 = FakeEngine(log, gateway), FakeEngine(log)
    h1.add("bot-1")
    gateway.files["wb-bot.conf"] = proxy.site_config("bot", 8080, [local_replica("bot-1", H1, 8000)], 8000)
    engines = {H1: h1, H2: h2}
    rollout = Rollout(TARGET, SPEC, dict(engines), noted)  # type: ignore[arg-type]
    rollout.run([slot(engines, H1, "bot-2-a"), slot(engines, H2, "bot-2-b", 32002)])
    assert [line for line in log if line.startswith(("reload", "stop"))] == [
        "reload bot-2-a bot-1",  # 1 -> 2 replicas: nothing leaves at the first switch
        "reload bot-2-a bot-2-b",
        "stop bot-1",
    ]


def test_a_warm_rollback_on_one_host_brings_every_warm_replica_back_without_a_restart() -> None:
    """Two replicas on one host, the previous release's both warm: switching the first back must not stop the
    second (it is about to come back), so the rollback restarts nothing and restores both replicas."""
    from services.deploy.rollback import _slot

    spec = replace(SPEC, keep_previous_warm=True)
    one = Target("prod", H1, "prod", apps={"bot": spec})
    log: list[str] = []
    gateway = FakeContainer(
        proxy.PROXY, log, labels={"workbench.role": "proxy", "workbench.ports": "8080", "workbench.tls": "off"}
    )
    h1 = FakeEngine(log, gateway)
    current = [h1.add("bot-2-a"), h1.add("bot-2-b")]
    warm = [h1.add("bot-1-a"), h1.add("bot-1-b")]  # kept running out of rotation by the last deploy
    routes = [local_replica(c.name, H1, 8000) for c in current]
    gateway.files["wb-bot.conf"] = proxy.site_config("bot", 8080, routes, 8000)
    rollout = Rollout(one, spec, {H1: h1}, noted)  # type: ignore[arg-type, dict-item]
    done = rollout.run([_slot(h1, spec, c, " (warm)", H1) for c in warm])  # type: ignore[arg-type]
    assert [r.container for r in done] == ["bot-1-a", "bot-1-b"]
    assert [line for line in log if line.startswith(("start", "stop"))] == []  # a proxy switch, nothing more
    assert all(c.status == "running" for c in current)  # the replaced release is kept warm in turn


def test_a_rollback_that_redeploys_runs_as_many_replicas_as_the_release_it_restores(tmp_path: Path) -> None:
    from services.artifacts.workspace import Artifacts
    from services.deploy.pipeline import DeployRequest, DeployRun
    from services.deploy.releases import Release
    from services.deploy.rollback import _replica_count

    listed = [{"container": f"bot-1-{i}", "engine": H1, "server": f"bot-1-{i}:8000"} for i in range(3)]
    previous = Release("r1", "bot", "prod", "1.0.0", "retained", {"replicas": listed}, "me", "", None)
    assert _replica_count(previous) == 3  # the app's setting says 2 now
    request = DeployRequest(TARGET, "bot", "reg/bot:1.0.0", "1.0.0", replicas=_replica_count(previous))
    run = DeployRun(request, Artifacts(tmp_path), "me", lambda event: None, lambda question: False)
    assert run.engines == [H1, H2, H1]


def test_keep_previous_warm_keeps_the_whole_replaced_release_warm_and_only_that_one() -> None:
    """Every replica the deploy replaces stays running out of rotation (so a rollback moves all traffic back at
    full capacity); the release kept warm before that one is stopped on every host."""
    engines, log = engines_with_two_old_replicas()
    older = [engines[H1].add("bot-0-a"), engines[H2].add("bot-0-b", 32000)]  # warm since the deploy before
    spec = replace(SPEC, keep_previous_warm=True)
    rollout = Rollout(TARGET, spec, dict(engines), noted)  # type: ignore[arg-type]
    rollout.run([slot(engines, H1, "bot-2-a"), slot(engines, H2, "bot-2-b", 32002)])
    assert [line for line in log if line.startswith("stop")] == ["stop bot-0-a", "stop bot-0-b"]
    assert [r.container for r in rollout.warm] == ["bot-1-a", "bot-1-b"]
    assert all(engines[h].get(f"bot-1-{x}").status == "running" for h, x in ((H1, "a"), (H2, "b")))
    assert all(c.status == "exited" for c in older)
