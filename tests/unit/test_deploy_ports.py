"""The host port of a replica on another host than the proxy's: drawn from the ephemeral range, never one a
container on that engine publishes or has pinned, and drawn again when its start finds it taken."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from docker.errors import APIError

from services.artifacts.workspace import Artifacts
from services.deploy import ports
from services.deploy.pipeline import DeployRequest, DeployRun
from services.deploy.target import AppSpec, Target

H1, H2 = "ssh://ops@10.0.0.1:22", "ssh://ops@10.0.0.2:22"
TARGET = Target("prod", H1, "prod", apps={"bot": AppSpec("bot", 8080, replicas=2)}, hosts=(H1, H2))


class FakeContainer:
    def __init__(self, engine: FakeEngine, ports: dict[str, int] | None) -> None:
        self.engine, self.ports = engine, ports
        self.attrs = {"HostConfig": {"PortBindings": {k: [{"HostPort": str(v)}] for k, v in (ports or {}).items()}}}

    def start(self) -> None:
        port = next(iter((self.ports or {}).values()), None)
        self.engine.tried.append(port)
        if len(self.engine.tried) <= self.engine.conflicts:
            raise APIError("start", explanation=f"Bind for 0.0.0.0:{port} failed: port is already allocated")
        self.engine.started.append(port)

    def remove(self, force: bool) -> None:
        self.engine.removed += 1


class FakeEngine:
    """Containers that publish 40001 (running) and a stopped app container pinned to 40002; the first
    `conflicts` starts find their port taken by something outside Docker."""

    def __init__(self, conflicts: int = 0) -> None:
        self.conflicts = conflicts
        self.tried: list[int | None] = []
        self.started: list[int | None] = []
        self.removed = 0
        self.api = self
        self.containers = self

    def __call__(self) -> list[dict[str, Any]]:  # client.api.containers(): the running ones
        return [{"Ports": [{"PrivatePort": 80, "PublicPort": 40001}]}, {"Ports": [{"PrivatePort": 9}]}]

    def list(self, all: bool, filters: dict[str, str]) -> list[FakeContainer]:
        assert all and filters == {"label": "workbench.role=app"}
        return [FakeContainer(self, {"8000/tcp": 40002})]

    def create(self, image: str, *, name: str, ports: dict[str, int] | None, **options: Any) -> FakeContainer:
        return FakeContainer(self, ports)


def test_taken_ports_are_the_published_and_the_pinned_ones() -> None:
    assert ports.taken_ports(FakeEngine()) == {40001, 40002}  # type: ignore[arg-type]


def test_a_drawn_port_is_in_the_range_and_never_a_taken_one() -> None:
    low, high = ports.PORT_RANGE
    assert ports.pick_port(set(range(low, high)) - {high - 7}, random.Random(1)) in (high - 7, high)
    drawn = {ports.pick_port({40001}, random.Random(seed)) for seed in range(50)}
    assert all(low <= p <= high and p != 40001 for p in drawn) and len(drawn) > 40


def run(tmp_path: Path) -> DeployRun:
    request = DeployRequest(TARGET, "bot", "reg/bot:1", "1")
    return DeployRun(request, Artifacts(tmp_path), "me", lambda event: None, lambda question: False)


def test_a_remote_replica_is_pinned_and_a_taken_port_is_drawn_again(tmp_path: Path) -> None:
    engine = FakeEngine(conflicts=2)
    run(tmp_path)._run(engine, "img", "bot-1-b", remote=True, options={})  # type: ignore[arg-type]
    assert engine.removed == 2 and len(engine.started) == 1
    first, second, pinned = engine.tried
    assert len({first, second, pinned}) == 3 and not {first, second, pinned} & {None, 40001, 40002}


def test_a_port_taken_every_time_fails_the_start(tmp_path: Path) -> None:
    engine = FakeEngine(conflicts=ports.TRIES)
    with pytest.raises(APIError, match="already allocated"):
        run(tmp_path)._run(engine, "img", "bot-1-b", remote=True, options={})  # type: ignore[arg-type]
    assert len(set(engine.tried)) == ports.TRIES


def test_a_replica_on_the_proxys_host_publishes_nothing(tmp_path: Path) -> None:
    engine = FakeEngine()
    run(tmp_path)._run(engine, "img", "bot-1-a", remote=False, options={})  # type: ignore[arg-type]
    assert engine.started == [None]


def test_other_start_errors_are_not_retried(tmp_path: Path) -> None:
    engine = FakeEngine()
    engine.create = lambda *a, **k: Broken()  # type: ignore[method-assign]
    with pytest.raises(APIError, match="no GPU"):
        run(tmp_path)._run(engine, "img", "bot-1-b", remote=True, options={})  # type: ignore[arg-type]


class Broken:
    def start(self) -> None:
        raise APIError("start", explanation="could not select device driver: no GPU")
