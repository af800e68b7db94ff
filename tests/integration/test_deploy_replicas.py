"""Replicas across hosts, on the test bed's two deploy hosts (two Docker engines in their own network
namespaces, each over SSH): the proxy on the first balances over a replica on each, a redeploy and a rollback
replace them one at a time under steady load, and a killed replica is ejected with no failed request.

One module state, built up in order: 1.0.0 on both hosts, then 2.0.0 rolled out, then rolled back.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from services.artifacts.workspace import Artifacts
from services.deploy import lock, proxy, releases
from services.deploy.engine import connect, connect_all
from services.deploy.pipeline import DeployRequest, StepEvent, deploy
from services.deploy.rollback import rollback
from services.deploy.target import Target
from services.deploy.upstream import FAIL_TIMEOUT_S
from tests.integration.deploy_support import (
    REPLICA_APPS,
    Images,
    Load,
    get,
    proxy_log,
    registry_auth,
    replica_target,
)

APP, KILL_HERE, KILL_THERE = "fx-rep", "fx-rep-kill1", "fx-rep-kill2"
RECOVER, RESTART, ROLLBACK = "fx-rep-recover", "fx-rep-restart", "fx-rep-rollback"
PORTS = REPLICA_APPS
ROLLED = ["start", "ready", "switch", "drain"]
"""The steps each replica goes through, in order, during a rolling deploy or rollback."""


@pytest.fixture(scope="module")
def two(tb: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Target:
    return replica_target(tb, tmp_path_factory.mktemp("ssh") / "known_hosts")


@pytest.fixture(scope="module")
def arts_m(tmp_path_factory: pytest.TempPathFactory) -> Artifacts:
    return Artifacts(tmp_path_factory.mktemp("workspace"))


def ship(tb: dict[str, str], arts: Artifacts, where: Target, app: str, image: str, version: str,
         events: list[StepEvent] | None = None) -> releases.Release:  # fmt: skip
    request = DeployRequest(where, app, image, version, registry_auth=registry_auth(tb))
    release = deploy(
        request, artifacts=arts, actor="replicas@test", on_step=(events if events is not None else []).append
    )
    assert release.status == "live"
    return release


def hosts_answering(port: int, count: int, *, timeout: float = 30.0) -> set[str]:
    """The replicas (container hostnames) that answer through the proxy, once `count` of them did."""
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while len(seen) < count and time.monotonic() < deadline:
        seen.add(str(get(port, "/whoami")[1]["host"]))
    return seen


def container_ids(where: Target, release: releases.Release) -> dict[str, str]:
    """Each replica's container id (its hostname's 12 characters) by engine, asked of its own engine."""
    found = {}
    for replica in release.bom["replicas"]:
        with connect(where.on(replica["engine"])) as client:
            found[replica["engine"]] = client.containers.get(replica["container"]).id[:12]
    return found


def test_replicas_spread_over_both_hosts_and_both_answer(
    tb: dict[str, str], images: Images, arts_m: Artifacts, two: Target
) -> None:
    release = ship(tb, arts_m, two, APP, images.v1, "1.0.0")
    engines = [r["engine"] for r in release.bom["replicas"]]
    assert engines == list(two.engines)  # round robin: one on each host, the first on the proxy's
    local, remote = release.bom["replicas"]
    assert local["server"] == f"{local['container']}:8000"  # by name on the proxy's network
    assert remote["server"].startswith(f"{two.address(two.engines[1])}:")  # by the other host's published port
    ids = container_ids(two, release)
    assert hosts_answering(PORTS[APP], 2) == set(ids.values())
    with connect(two) as client:
        routed = proxy.replicas_of(client.containers.get(proxy.PROXY), APP)
    assert [r.container for r in routed] == [local["container"], remote["container"]]


def test_rolling_redeploy_under_load_fails_no_request(
    tb: dict[str, str], images: Images, arts_m: Artifacts, two: Target
) -> None:
    events: list[StepEvent] = []
    with Load(PORTS[APP]) as load:
        load.wait(20)  # the load runs before the deploy starts ...
        release = ship(tb, arts_m, two, APP, images.v2, "2.0.0", events)
        load.wait(20)  # ... and goes on after it ends
    assert load.failed() == []
    versions = [s[3] for s in load.seen]
    assert versions[0] == "1.0.0" and versions[-1] == "2.0.0"
    done = [e for e in events if e.state == "done"]
    assert [e.step for e in done] == ["lock", "resolve", "pull", "artifacts", *ROLLED, *ROLLED, "record"]
    switches = [e.detail for e in done if e.step == "switch"]
    assert all(detail.startswith("from ") for detail in switches), switches  # each new one replaced one old one
    assert hosts_answering(PORTS[APP], 2) == set(container_ids(two, release).values())
    for replica in releases.history(arts_m.store, APP, "staging")[1].bom["replicas"]:
        with connect(two.on(replica["engine"])) as client:  # the old ones: drained, stopped, kept for rollback
            assert client.containers.get(replica["container"]).status == "exited"


def test_rollback_under_load_fails_no_request(
    tb: dict[str, str], images: Images, arts_m: Artifacts, two: Target
) -> None:
    first = releases.history(arts_m.store, APP, "staging")[1]
    events: list[StepEvent] = []
    with Load(PORTS[APP]) as load:
        load.wait(20)
        back = rollback(two, APP, artifacts=arts_m, actor="replicas@test", on_step=events.append)
        load.wait(20)
    assert load.failed() == []
    assert [s[3] for s in load.seen][-1] == "1.0.0"
    assert [r["container"] for r in back.bom["replicas"]] == [r["container"] for r in first.bom["replicas"]]
    assert [e.step for e in events if e.state == "done"] == ["lock", *ROLLED, *ROLLED, "record"]
    assert hosts_answering(PORTS[APP], 2) == set(container_ids(two, back).values())


@pytest.mark.parametrize("app", [KILL_HERE, KILL_THERE], ids=["on-the-proxys-host", "on-the-other-host"])
def test_a_killed_replica_fails_no_request_and_leaves_rotation_quickly(
    tb: dict[str, str], images: Images, arts_m: Artifacts, two: Target, app: str
) -> None:
    release = ship(tb, arts_m, two, app, images.v1, "1.0.0")
    victim = release.bom["replicas"][0 if app == KILL_HERE else 1]
    with connect(two.on(victim["engine"])) as client:
        container = client.containers.get(victim["container"])
        address = victim["server"]
        if app == KILL_HERE:  # nginx logs the address it resolved the container's name to
            address = f"{container.attrs['NetworkSettings']['Networks']['wb-net']['IPAddress']}:8000"
        with Load(PORTS[app]) as load:
            load.wait(20)
            killed_at = time.time()
            container.kill()
            load.wait(40)
            while time.time() < killed_at + 3:
                time.sleep(0.05)
    assert load.failed() == []
    tried = [
        at for at, _, servers in proxy_log(tb, killed_at) if address in servers and at < killed_at + FAIL_TIMEOUT_S
    ]
    assert tried, "no request went to the killed replica after the kill: nothing was tested"
    out_of_rotation = max(tried) - killed_at  # the last request sent to it began this long after the kill
    print(f"{app}: killed replica out of rotation {out_of_rotation:.2f} s after the kill")  # the figure: bench.deploy
    assert out_of_rotation < 2.0
    survivor = {s[2] for s in load.seen if s[0] > killed_at + 2.0}
    assert len(survivor) == 1  # after that, only the other replica answers


def test_recovery_after_a_killed_deploy_cleans_every_host(
    tb: dict[str, str], images: Images, arts_m: Artifacts, two: Target
) -> None:
    """A deploy killed while its second replica (on the other host) starts: the next deploy's recovery names and
    removes that replica there too, and leaves every replica in the upstream serving."""
    ship(tb, arts_m, two, RECOVER, images.v1, "1.0.0")
    killed = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.deploy_support", RECOVER, images.v2, "2.0.0",
         str(arts_m.data_dir), "1"],
        cwd=Path(__file__).parents[2], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert killed.stdout is not None
    for line in killed.stdout:  # the second replica runs on the other host; kill before it is switched in
        if "step='start', state='done'" in line and "replica 2 of 2" in line:
            break
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=10)
    orphan = next(c for c in app_names(two, two.engines[1]) if "2.0.0" in c)
    with connect(two) as client:
        routed = releases.serving_replicas(client, RECOVER)
    assert orphan not in routed

    questions: list[str] = []
    with connect_all(two) as clients:
        releases.recover(clients, arts_m.store, two, RECOVER, lambda q: questions.append(q) or True)
        assert lock.current(clients[two.docker_host], RECOVER) is None
    assert f"{orphan} on {two.address(two.engines[1])}" in questions[0]
    assert orphan not in app_names(two, two.engines[1])  # removed, with its key volume
    assert set(routed) <= {*app_names(two, two.engines[0]), *app_names(two, two.engines[1])}
    assert hosts_answering(PORTS[RECOVER], 2)  # what the upstream names still answers
    assert [r.status for r in releases.history(arts_m.store, RECOVER, "staging")][:2] == ["interrupted", "live"]


def test_recovery_after_a_killed_rollback_stops_every_kept_replica_it_restarted(
    tb: dict[str, str], images: Images, arts_m: Artifacts, two: Target
) -> None:
    """A rollback killed once it has started the second kept replica (on the other host), before that one is
    switched in: the next recovery stops it there too (kept again, as before the rollback), not only the first."""
    slow = replica_target(tb, arts_m.data_dir / "known_hosts", app=ROLLBACK, env={"READY_AFTER_S": "2"})
    ship(tb, arts_m, slow, ROLLBACK, images.v1, "1.0.0")
    ship(tb, arts_m, slow, ROLLBACK, images.v2, "2.0.0")
    killed = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.deploy_support", "rollback", ROLLBACK, str(arts_m.data_dir)],
        cwd=Path(__file__).parents[2], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert killed.stdout is not None
    for line in killed.stdout:  # the second kept replica runs (ready 2 s after it starts); kill before its switch
        if "step='start', state='done'" in line and "replica 2 of 2" in line:
            break
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=10)
    with connect(two.on(two.engines[1])) as client:
        kept = next(c for c in releases.app_containers(client, ROLLBACK) if "1.0.0" in c.name)
        assert kept.status == "running"
    with connect(two) as client:
        assert kept.name not in releases.serving_replicas(client, ROLLBACK)

    with connect_all(two) as clients:
        releases.recover(clients, arts_m.store, two, ROLLBACK, lambda q: True)
        assert lock.current(clients[two.docker_host], ROLLBACK) is None
        again = clients[two.engines[1]].containers.get(kept.name)
        assert again.status == "exited"  # stopped, and kept for the next rollback
    assert hosts_answering(PORTS[ROLLBACK], 2)


def app_names(where: Target, engine: str) -> list[str]:
    """The names of the app containers of `RECOVER` on `engine`."""
    with connect(where.on(engine)) as client:
        return [c.name for c in releases.app_containers(client, RECOVER)]


def test_a_remote_replica_restarted_by_its_engine_comes_back_into_rotation(
    tb: dict[str, str], images: Images, arts_m: Artifacts, two: Target
) -> None:
    """The app in the remote replica exits (as on a crash); its restart policy starts it again, on the port the
    proxy's upstream names, so it answers through the proxy again without a deploy."""
    release = ship(tb, arts_m, two, RESTART, images.v1, "1.0.0")
    remote = release.bom["replicas"][1]
    with connect(two.on(remote["engine"])) as client:
        container = client.containers.get(remote["container"])
        before = container.attrs["State"]["StartedAt"]
        container.exec_run(["python3", "-c", "import os, signal; os.kill(1, signal.SIGTERM)"])
        deadline = time.monotonic() + 30
        while container.attrs["State"]["StartedAt"] == before or container.status != "running":
            assert time.monotonic() < deadline, "the engine did not restart the replica"
            time.sleep(0.2)
            container.reload()
        published = container.attrs["NetworkSettings"]["Ports"]["8000/tcp"][0]["HostPort"]
    assert remote["server"].endswith(f":{published}")  # the port the proxy's upstream names
    assert hosts_answering(PORTS[RESTART], 2, timeout=FAIL_TIMEOUT_S + 20) == set(container_ids(two, release).values())
