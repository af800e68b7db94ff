"""What the drain step does after a switch, on a fake engine: the replaced container is stopped only after
its drain probe (or kept running with keep_previous_warm), and at most one warm container is kept."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.deploy import serving
from services.deploy.target import AppSpec


@dataclass
class FakeExec:
    exit_code: int


@dataclass
class FakeContainer:
    name: str
    probe_exit: int = 0
    events: list[str] = field(default_factory=list)
    status: str = "running"

    def exec_run(self, argv: list[str]) -> FakeExec:
        self.events.append(f"probe {self.name} timeout={float(argv[-1]):.0f}")
        return FakeExec(self.probe_exit)

    def stop(self, timeout: int) -> None:
        self.events.append(f"stop {self.name} t={timeout}")
        self.status = "exited"


class FakeClient:
    def __init__(self, *containers: FakeContainer) -> None:
        self.by_name = {c.name: c for c in containers}
        self.api = self
        self.containers = self

    def get(self, name: str) -> FakeContainer:
        return self.by_name[name]

    def __call__(self, filters: dict[str, Any]) -> list[dict[str, Any]]:  # client.api.containers(filters=...)
        assert filters["status"] == "running" and "workbench.app=chat" in filters["label"]
        return [{"Names": [f"/{c.name}"]} for c in self.by_name.values() if c.status == "running"]


def engine(*names: str, probe_exit: int = 0) -> tuple[FakeClient, list[str]]:
    events: list[str] = []
    return FakeClient(*(FakeContainer(n, probe_exit, events) for n in names)), events


def test_old_container_stops_only_after_its_drain_probe() -> None:
    client, events = engine("v1", "v2")
    detail = serving.drain(client, AppSpec("chat", 80, drain_timeout_s=90), "v1", "v2")  # type: ignore[arg-type]
    assert events == ["probe v1 timeout=90", f"stop v1 t={serving.STOP_TIMEOUT_S}"]
    assert detail == "v1 stopped once drained"


def test_drain_timeout_and_missing_probe_are_said() -> None:
    client, events = engine("v1", "v2", probe_exit=1)
    assert "at the drain timeout (5 s)" in serving.drain(client, AppSpec("chat", 80, drain_timeout_s=5), "v1", "v2")  # type: ignore[arg-type]
    client, events = engine("v1", "v2", probe_exit=127)  # no python3 in the image: the app's graceful stop
    assert "gracefully" in serving.drain(client, AppSpec("chat", 80, drain_timeout_s=30), "v1", "v2")  # type: ignore[arg-type]
    assert events[-1] == "stop v1 t=31"


def test_warm_keeps_the_replaced_one_running_and_only_that_one() -> None:
    client, events = engine("v1", "v2", "v3")  # v1 was warm, v2 live, v3 the new one
    detail = serving.drain(client, AppSpec("chat", 80, keep_previous_warm=True), "v2", "v3")  # type: ignore[arg-type]
    assert events[-1] == f"stop v1 t={serving.STOP_TIMEOUT_S}" and len(events) == 2
    assert client.by_name["v2"].status == "running" and client.by_name["v3"].status == "running"
    assert detail.startswith("v2 kept running (warm)")


def test_first_version_has_nothing_to_drain() -> None:
    client, events = engine("v1")
    assert serving.drain(client, AppSpec("chat", 80), None, "v1") == "nothing to drain"  # type: ignore[arg-type]
    assert events == []
