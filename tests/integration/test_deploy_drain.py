"""Deploys that never cut an answer short, and warm rollbacks: on the test bed's deploy host (see
test_deploy.py), with the fixture app's slow stream through the target's proxy."""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from services.artifacts.workspace import Artifacts
from services.deploy import releases
from services.deploy.engine import connect
from services.deploy.pipeline import DeployRequest, StepEvent, deploy
from services.deploy.rollback import rollback
from services.deploy.target import AppSpec, Target
from tests.integration.deploy_support import NS_IP, Images, get, registry_auth, target

PORTS = {"fx-drain": 18120, "fx-cut": 18121, "fx-warm": 18122}
"""This module's apps (every one of them on its target, so the proxy is not recreated between its tests)."""


def staging(tb: dict[str, str], **changes: Any) -> Target:
    specs = {app: AppSpec(app, port, ready_timeout_s=30) for app, port in PORTS.items()}
    for app, spec in changes.items():
        specs[app] = AppSpec(app, PORTS[app], ready_timeout_s=30, **spec)
    return target(tb, **specs)


@dataclass
class Stream:
    """A slow streamed answer read through the proxy on a thread: its chunks, and how it ended."""

    port: int
    chunks: int
    interval: float
    lines: list[str] = field(default_factory=list)
    error: BaseException | None = None
    ended_at: float = 0.0
    first: threading.Event = field(default_factory=threading.Event)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._read)
        thread.start()
        assert self.first.wait(10), "the stream never began"
        return thread

    def _read(self) -> None:
        connection = http.client.HTTPConnection(NS_IP, self.port, timeout=30)
        try:
            connection.request("GET", f"/stream?chunks={self.chunks}&interval={self.interval}")
            response = connection.getresponse()
            assert response.status == 200
            while line := response.readline():
                self.lines.append(line.decode().strip())
                self.first.set()
        except BaseException as exc:  # a cut stream: IncompleteRead, reset, ...
            self.error = exc
        finally:
            self.ended_at = time.monotonic()
            self.first.set()
            connection.close()


def deploy_during_stream(
    tb: dict[str, str], arts: Artifacts, app: str, image: str, version: str, stream: Stream, **spec: Any
) -> tuple[list[StepEvent], dict[str, float]]:
    """Deploy `version`; the stream starts just before the switch (so it is in flight when traffic moves)."""
    events: list[StepEvent] = []
    at: dict[str, float] = {}
    threads: list[threading.Thread] = []

    def on_step(event: StepEvent) -> None:
        events.append(event)
        at.setdefault(f"{event.step}:{event.state}", time.monotonic())
        if event.step == "switch" and event.state == "running" and stream.chunks:
            threads.append(stream.start())

    request = DeployRequest(staging(tb, **{app: spec}), app, image, version, registry_auth=registry_auth(tb))
    deploy(request, artifacts=arts, actor="alice@dev", on_step=on_step)
    for thread in threads:
        thread.join(60)
    return events, at


def test_streamed_answer_begun_before_a_switch_finishes(tb: dict[str, str], images: Images, arts: Artifacts) -> None:
    app, port = "fx-drain", PORTS["fx-drain"]
    deploy_during_stream(tb, arts, app, images.v1, "1.0.0", Stream(port, 0, 0))
    stream = Stream(port, chunks=16, interval=0.5)
    events, at = deploy_during_stream(tb, arts, app, images.v2, "2.0.0", stream, drain_timeout_s=60)
    assert stream.error is None, stream.error
    assert stream.lines == [f"1.0.0 {i}" for i in range(16)] + ["done"]
    assert stream.ended_at > at["switch:done"], "the stream ended before the switch: nothing was tested"
    assert at["drain:done"] >= stream.ended_at, "the old container stopped before its answer ended"
    drained = next(e for e in events if e.step == "drain" and e.state == "done")
    assert "stopped once drained" in drained.detail, drained
    assert get(port)[1]["version"] == "2.0.0"
    with connect(staging(tb)) as client:
        old = [c for c in releases.app_containers(client, app) if c.labels["workbench.version"] == "1.0.0"]
        assert [c.status for c in old] == ["exited"]  # stopped after its answer, kept for rollback


def test_drain_timeout_bounds_the_wait(tb: dict[str, str], images: Images, arts: Artifacts) -> None:
    """The negative control: with a 1 s drain timeout the same stream is cut (so the test above can fail)."""
    app, port = "fx-cut", PORTS["fx-cut"]
    deploy_during_stream(tb, arts, app, images.v1, "1.0.0", Stream(port, 0, 0))
    stream = Stream(port, chunks=30, interval=0.5)
    events, _ = deploy_during_stream(tb, arts, app, images.v2, "2.0.0", stream, drain_timeout_s=1)
    drained = next(e for e in events if e.step == "drain" and e.state == "done")
    assert "at the drain timeout" in drained.detail and drained.seconds < 14, drained
    assert stream.error is not None or "done" not in stream.lines, stream.lines


def test_warm_rollback_is_a_proxy_switch(tb: dict[str, str], images: Images, arts: Artifacts) -> None:
    app, port = "fx-warm", PORTS["fx-warm"]
    warm = {"keep_previous_warm": True}
    none = Stream(port, 0, 0)
    deploy_during_stream(tb, arts, app, images.v1, "1.0.0", none, **warm)
    deploy_during_stream(tb, arts, app, images.v2, "2.0.0", none, **warm)
    assert get(port)[1]["version"] == "2.0.0"
    with connect(staging(tb)) as client:
        running = {c.labels["workbench.version"]: c.name for c in releases.app_containers(client, app)
                   if c.status == "running"}  # fmt: skip
    assert set(running) == {"1.0.0", "2.0.0"}, running  # 1.0.0 warm, out of rotation

    with connect(staging(tb)) as client:
        was = client.containers.get(running["1.0.0"]).attrs["State"]["StartedAt"]
    steps: list[StepEvent] = []
    started = time.monotonic()
    back = rollback(staging(tb, **{app: warm}), app, artifacts=arts, actor="alice@dev", on_step=steps.append)
    took = time.monotonic() - started
    assert get(port)[1]["version"] == "1.0.0"  # right after: the old version answers
    assert back.bom["container"] == running["1.0.0"] and back.bom["rollback_of"]
    assert "(warm)" in next(e.detail for e in steps if e.step == "start" and e.state == "done")
    print(f"warm rollback: {took:.1f} s", [e for e in steps if e.state == "done"])  # the figure: bench.deploy
    with connect(staging(tb)) as client:
        assert client.containers.get(running["1.0.0"]).attrs["State"]["StartedAt"] == was  # not restarted
        assert client.containers.get(running["2.0.0"]).status == "running"  # now the warm one

    deploy_during_stream(tb, arts, app, images.v2, "2.0.0", none, **warm)
    with connect(staging(tb)) as client:
        now = [c for c in releases.app_containers(client, app) if c.status == "running"]
        live = releases.live_container(client, app)
    assert len(now) == 2, [c.name for c in now]  # the live one and one warm one: replaced, not accumulated
    assert {c.name for c in now} == {live, running["1.0.0"]}
    assert get(port)[1]["version"] == "2.0.0"
