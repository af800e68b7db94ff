"""Deploys on real engines: the deploy host is the second Docker engine in its own network namespace,
reached over SSH with a pinned host key; it pulls the fixture images from the test registry.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from services.artifacts.model import parse_ref
from services.artifacts.workspace import Artifacts
from services.deploy import lock, releases
from services.deploy.engine import connect
from services.deploy.pipeline import STEPS, DeployRequest, StepEvent, deploy
from services.deploy.rollback import rollback
from services.errors import DeployFailedError, DeployLockedError, HostKeyError, UsageError
from tests.integration.deploy_support import (
    APPS,
    Images,
    app_spec,
    get,
    registry_auth,
    target,
)


def run(tb: dict[str, str], arts: Artifacts, app: str, image: str, version: str, **spec: object) -> releases.Release:
    events: list[StepEvent] = []
    request = DeployRequest(
        target(tb, **({app: app_spec(app, **spec)} if spec else {})),
        app,
        image,
        version,
        registry_auth=registry_auth(tb),
    )
    release = deploy(request, artifacts=arts, actor="alice@dev", on_step=events.append)
    finished = [e.step for e in events if e.state == "done"]
    assert finished == [s for s in STEPS if s != "gate"], events
    return release


def test_first_deploy_serves_behind_the_proxy(tb: dict[str, str], images: Images, arts: Artifacts) -> None:
    release = run(tb, arts, "fx-first", images.v1, "1.0.0")
    assert get(APPS["fx-first"]) == (200, {"version": "1.0.0", "artifacts": {}})
    assert release.status == "live" and release.bom["digest"].startswith("sha256:")
    assert release.bom["image"] == images.v1 and release.bom["deployer"] == "alice@dev"
    with connect(target(tb)) as client:
        container = client.containers.get(release.bom["container"])
        assert container.labels["workbench.release"] == release.id
        assert container.labels["workbench.digest"] == release.bom["digest"]
        assert container.attrs["Config"]["User"] == "10001:10001"
        assert lock.current(client, "fx-first") is None


RELOAD_OVERLAP_S = 1.0
"""During `nginx -s reload` the old workers still accept connections for a moment beside the new ones."""


def answered(seen: list[tuple[int, str | None, float]], count: int, timeout: float = 60.0) -> None:
    """Wait until `seen` holds `count` answers, however fast this machine makes them."""
    deadline = time.monotonic() + timeout
    while len(seen) < count:
        assert time.monotonic() < deadline, f"{len(seen)} of {count} answers after {timeout} s"
        time.sleep(0.01)


def test_second_version_swaps_with_no_failed_request(tb: dict[str, str], images: Images, arts: Artifacts) -> None:
    run(tb, arts, "fx-swap", images.v1, "1.0.0")
    seen: list[tuple[int, str | None, float]] = []  # status, version, when the request was sent
    stop = threading.Event()

    def load() -> None:  # one request after another, each on a new connection
        while not stop.is_set():
            sent = time.monotonic()
            try:
                code, body = get(APPS["fx-swap"], timeout=5)
            except OSError as exc:
                code, body = 0, {"error": str(exc)}
            seen.append((code, body.get("version"), sent))
            time.sleep(0.02)

    loader = threading.Thread(target=load)
    loader.start()
    try:
        answered(seen, 5)  # the load runs before the swap starts ...
        run(tb, arts, "fx-swap", images.v2, "2.0.0")
        swapped = time.monotonic()
        answered(seen, len(seen) + 5)  # ... and goes on after it ends
    finally:
        stop.set()
        loader.join()
    assert [s for s in seen if s[0] != 200] == []
    assert seen[0][1] == "1.0.0" and {v for _, v, sent in seen if sent > swapped} == {"2.0.0"}
    # one switch: every 1.0.0 answer comes before every 2.0.0 one, but for the instant of the reload
    first_new = next(sent for _, v, sent in seen if v == "2.0.0")
    assert all(sent < first_new + RELOAD_OVERLAP_S for _, v, sent in seen if v == "1.0.0")


def test_broken_version_never_replaces_the_old(tb: dict[str, str], images: Images, arts: Artifacts) -> None:
    good = run(tb, arts, "fx-broken", images.v1, "1.0.0")
    request = DeployRequest(
        target(tb, **{"fx-broken": app_spec("fx-broken", ready_timeout_s=4)}),
        "fx-broken",
        images.broken,
        "3.0.0",
        registry_auth=registry_auth(tb),
    )
    with pytest.raises(DeployFailedError, match="not ready within 4 s") as caught:
        deploy(request, artifacts=arts, actor="alice@dev")
    assert "broken on purpose" in caught.value.logs
    assert get(APPS["fx-broken"])[1]["version"] == "1.0.0"
    history = releases.history(arts.store, "fx-broken", "staging")
    assert [r.status for r in history] == ["failed", "live"]
    assert history[0].bom["error"] and "broken on purpose" in history[0].bom["logs"]
    with connect(target(tb)) as client:
        names = [c.name for c in releases.app_containers(client, "fx-broken")]
        assert names == [good.bom["container"]] and lock.current(client, "fx-broken") is None


def test_rollback_and_back_again(tb: dict[str, str], images: Images, arts: Artifacts) -> None:
    first = run(tb, arts, "fx-rollback", images.v1, "1.0.0")
    second = run(tb, arts, "fx-rollback", images.v2, "2.0.0")
    assert get(APPS["fx-rollback"])[1]["version"] == "2.0.0"

    back = rollback(target(tb), "fx-rollback", artifacts=arts, actor="alice@dev")
    assert get(APPS["fx-rollback"])[1]["version"] == "1.0.0"
    assert back.bom["rollback_of"] == second.id and back.bom["container"] == first.bom["container"]
    statuses = [(r.version, r.status) for r in releases.history(arts.store, "fx-rollback", "staging")]
    assert statuses == [("1.0.0", "live"), ("2.0.0", "retained"), ("1.0.0", "retained")]

    rollback(target(tb), "fx-rollback", artifacts=arts, actor="alice@dev")
    assert get(APPS["fx-rollback"])[1]["version"] == "2.0.0"


def test_second_deploy_is_refused_while_locked(tb: dict[str, str], images: Images, arts: Artifacts) -> None:
    with connect(target(tb)) as client:
        held = lock.acquire(client, "fx-lock", owner="bob@elsewhere", version="9.9.9", image=target(tb).proxy_image)
    request = DeployRequest(target(tb), "fx-lock", images.v1, "1.0.0", registry_auth=registry_auth(tb))
    with pytest.raises(DeployLockedError, match=r"bob@elsewhere \(deploying 9\.9\.9"):
        deploy(request, artifacts=arts, actor="alice@dev")
    with connect(target(tb)) as client:
        assert held.release(client) and lock.current(client, "fx-lock") is None
    run(tb, arts, "fx-lock", images.v1, "1.0.0")


def test_unknown_host_key_is_refused(tb: dict[str, str], images: Images, arts: Artifacts, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    stranger = replace(target(tb), known_hosts=empty)
    request = DeployRequest(stranger, "fx-first", images.v2, "2.0.0", registry_auth=registry_auth(tb))
    with pytest.raises(HostKeyError, match="not trusted"):
        deploy(request, artifacts=arts, actor="alice@dev")
    assert empty.read_text() == ""  # nothing was added


def test_killed_deploy_is_recovered_after_confirmation(
    tb: dict[str, str], images: Images, arts: Artifacts, tmp_path: Path
) -> None:
    run(tb, arts, "fx-kill", images.v1, "1.0.0")
    killed = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.deploy_support", "fx-kill", images.v2, "2.0.0", str(arts.data_dir)],
        cwd=Path(__file__).parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert killed.stdout is not None
    for line in killed.stdout:  # wait until the new container runs and the deploy waits for it to be ready
        if "step='ready', state='running'" in line:
            break
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=10)
    with connect(target(tb)) as client:
        held = lock.current(client, "fx-kill")
        assert held is not None and held.stale and held.owner == "killed@test"
        assert len(releases.app_containers(client, "fx-kill")) == 2  # the orphan beside the live one
    assert get(APPS["fx-kill"])[1]["version"] == "1.0.0"

    questions: list[str] = []
    request = DeployRequest(target(tb), "fx-kill", images.v2, "2.0.0", registry_auth=registry_auth(tb))
    deploy(request, artifacts=arts, actor="alice@dev", confirm=lambda q: questions.append(q) or True)
    assert "did not finish" in questions[0] and "killed@test" in questions[0]
    assert get(APPS["fx-kill"])[1]["version"] == "2.0.0"
    statuses = [r.status for r in releases.history(arts.store, "fx-kill", "staging")]
    assert statuses == ["live", "interrupted", "retained"]


def test_artifacts_mounted_match_their_manifests(
    tb: dict[str, str], images: Images, arts: Artifacts, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    (docs / "nested").mkdir(parents=True)
    (docs / "a.txt").write_text("alpha")
    (docs / "nested" / "b.bin").write_bytes(bytes(range(256)) * 100)
    manifest = arts.local.register("dataset", "fx-docs", "v1", docs, lineage={}, actor="alice@dev")
    arts.push(parse_ref("fx-docs@v1"))
    arts.remote.set_label(manifest, "staging", actor="alice@dev")

    release = run(tb, arts, "fx-art", images.v1, "1.0.0", artifacts={"docs": "fx-docs:staging"})
    served = get(APPS["fx-art"])[1]["artifacts"]
    expected = {f"docs/{f.path}": f.sha256 for f in manifest.files}
    assert {k: v for k, v in served.items() if not k.endswith(".workbench-manifest.json")} == expected
    assert release.bom["artifacts"] == [
        {"mount": "docs", "ref": "fx-docs:staging", "kind": "dataset", "name": "fx-docs", "version": "v1",
         "digest": manifest.digest(), "base_model": None}
    ]  # fmt: skip


def test_dirty_version_is_refused_for_prod(tb: dict[str, str], arts: Artifacts) -> None:
    prod = replace(target(tb), name="prod", environment="prod")
    request = DeployRequest(prod, "fx-first", "reg/fx:1.0.0-dirty", "1.0.0-dirty")
    with pytest.raises(UsageError, match="uncommitted changes"):
        deploy(request, artifacts=arts, actor="alice@dev")
