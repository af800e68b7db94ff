"""Attacks and faults on the deploy boundary, each through the real pipeline on the test bed's deploy host:
revoked API keys after a rollback, ambiguous artifact volumes, locks taken from a live deploy, and
leftovers of a start that failed.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from services.artifacts.model import FileEntry, Manifest, parse_ref
from services.artifacts.workspace import Artifacts
from services.deploy import lock, releases, volumes
from services.deploy.engine import connect
from services.deploy.pipeline import DeployRequest, StepEvent, deploy
from services.deploy.rollback import rollback
from services.errors import ArtifactInUseError, DeployFailedError, DeployLockedError, WorkbenchError
from tests.integration.deploy_support import (
    APPS,
    Images,
    app_spec,
    get,
    registry_auth,
    target,
)

ROOT = Path(__file__).parents[2]
KEYS_ENV = "WB_TEST_FX_KEYS"


def request_for(tb: dict[str, str], app: str, image: str, version: str, **spec: Any) -> DeployRequest:
    apps = {app: app_spec(app, **spec)} if spec else {}
    return DeployRequest(target(tb, **apps), app, image, version, registry_auth=registry_auth(tb))


def target_state(tb: dict[str, str], app: str) -> tuple[list[str], list[str], lock.Lock | None]:
    """The app's containers, the secrets volumes whose container is gone, and its lock, on the target."""
    with connect(target(tb)) as client:
        names = [c.name for c in releases.app_containers(client, app)]
        every = {c.name for c in client.containers.list(all=True)}
        secrets = client.volumes.list(filters={"label": "workbench.role=secrets"})
        orphans = [v.name for v in secrets if v.attrs["Labels"].get("workbench.container") not in every]
        return names, orphans, lock.current(client, app)


# 6: a fast rollback restarts the old container; it must accept the target's current keys only.


def test_rollback_accepts_only_the_current_api_keys(
    tb: dict[str, str], images: Images, arts: Artifacts, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = APPS["fx-keys"]
    monkeypatch.setenv(KEYS_ENV, "old-key-revoked-later")
    deploy(request_for(tb, "fx-keys", images.v1, "1.0.0", api_keys_env=KEYS_ENV), artifacts=arts, actor="alice@dev")
    assert get(port, key="old-key-revoked-later")[0] == 200
    monkeypatch.setenv(KEYS_ENV, "new-key-a,new-key-b")  # the old key leaked: revoked by this deploy
    deploy(request_for(tb, "fx-keys", images.v2, "2.0.0", api_keys_env=KEYS_ENV), artifacts=arts, actor="alice@dev")
    assert get(port, key="old-key-revoked-later")[0] == 401

    back = rollback(target(tb, **{"fx-keys": app_spec("fx-keys", api_keys_env=KEYS_ENV)}), "fx-keys",
                    artifacts=arts, actor="alice@dev")  # fmt: skip
    assert back.bom["container"] == releases.history(arts.store, "fx-keys", "staging")[2].bom["container"]  # fast path
    assert get(port, key="new-key-b") == (200, {"version": "1.0.0", "artifacts": {}})
    assert get(port, key="old-key-revoked-later")[0] == 401
    assert target_state(tb, "fx-keys")[1] == []


# 8: artifact volumes are named unambiguously and reused only when they hold exactly the requested version.


def test_artifact_volume_names_cannot_collide(
    tb: dict[str, str], images: Images, arts: Artifacts, tmp_path: Path
) -> None:
    served = []
    for name, version, text in (("fx-chat-bot", "1", "first"), ("fx-chat", "bot-1", "second")):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "a.txt").write_text(text)
        manifest = arts.local.register("dataset", name, version, folder, lineage={}, actor="alice@dev")
        arts.push(parse_ref(manifest.ref))
        request = request_for(tb, "fx-vol", images.v1, "1.0.0", artifacts={"docs": manifest.ref})
        deploy(request, artifacts=arts, actor="alice@dev")
        served.append((get(APPS["fx-vol"])[1]["artifacts"]["docs/a.txt"], manifest.files[0].sha256))
    assert [got for got, _ in served] == [want for _, want in served]


def test_a_volume_holding_another_manifest_is_never_reused(
    tb: dict[str, str], images: Images, arts: Artifacts, tmp_path: Path
) -> None:
    """A volume under the requested version's name whose manifest and files agree with each other but are
    not the requested ones (planted, or left by a broken copy) is replaced, not mounted."""
    folder = tmp_path / "genuine"
    folder.mkdir()
    (folder / "a.txt").write_text("genuine")
    manifest = arts.local.register("dataset", "fx-planted", "1", folder, lineage={}, actor="alice@dev")
    arts.push(parse_ref(manifest.ref))
    planted = b"planted"
    fake = Manifest("dataset", "fx-planted", "1", (FileEntry("a.txt", hashlib.sha256(planted).hexdigest(), 7),))
    with connect(target(tb)) as client:
        name = volumes.artifact_volume(manifest)
        client.volumes.create(name, labels={"workbench.role": "artifact"})
        helper = client.containers.create(target(tb).proxy_image, ["true"], volumes={name: {"bind": "/dest"}})
        helper.put_archive("/dest", tar_of({"a.txt": planted, volumes.MANIFEST_NAME: fake.to_json()}))
        helper.remove()
    deploy(request_for(tb, "fx-vol", images.v1, "1.0.0", artifacts={"docs": manifest.ref}), artifacts=arts,
           actor="alice@dev")  # fmt: skip
    assert get(APPS["fx-vol"])[1]["artifacts"]["docs/a.txt"] == manifest.files[0].sha256


def tar_of(files: dict[str, bytes], *, mtime: str | None = None) -> bytes:
    """A tar of `files` (mode 0444), each with modification time `mtime` (an engine's RFC 3339 time) when given."""
    when = datetime.fromisoformat(mtime).timestamp() if mtime else time.time()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(data), 0o444, int(when)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_an_unchanged_artifact_volume_is_not_hashed_again_and_a_changed_one_is(
    tb: dict[str, str], images: Images, arts: Artifacts, tmp_path: Path
) -> None:
    """A redeploy skips hashing a volume whose listing (inodes, sizes, mtimes, ctimes) is what the last full check
    saw; a file rewritten there with its size and mtime kept (only its ctime moves) is hashed and refused."""
    folder = tmp_path / "sealed"
    folder.mkdir()
    (folder / "a.txt").write_text("genuine")
    manifest = arts.local.register("dataset", "fx-sealed", "1", folder, lineage={}, actor="alice@dev")
    arts.push(parse_ref(manifest.ref))
    said = []
    for image, version in ((images.v1, "1.0.0"), (images.v2, "2.0.0")):
        events: list[StepEvent] = []
        request = request_for(tb, "fx-seal", image, version, artifacts={"docs": manifest.ref})
        release = deploy(request, artifacts=arts, actor="alice@dev", on_step=events.append)
        said += [e.detail for e in events if e.step == "artifacts" and e.state == "done"]
    assert said == ["fx-sealed@1", "fx-sealed@1 (1 of 1 unchanged since verified)"]
    assert get(APPS["fx-seal"])[1]["artifacts"]["docs/a.txt"] == manifest.files[0].sha256

    name = volumes.artifact_volume(manifest)
    sealed = releases.recorded_seals(arts.store, "fx-seal", "staging")[target(tb).docker_host]
    with connect(target(tb)) as client:
        helper = client.containers.create(target(tb).proxy_image, ["true"], volumes={name: {"bind": "/dest"}})
        try:
            mtime = helper.get_archive("/dest/a.txt")[1]["mtime"]
            helper.put_archive("/dest", tar_of({"a.txt": b"forged!"}, mtime=mtime))  # same size, same mtime
        finally:
            helper.remove()
        pulled = f"{images.v2.rsplit(':', 1)[0]}@{release.bom['digest']}"  # as the deploy pulled it: by digest
        with pytest.raises(ArtifactInUseError, match="holds something else"):  # hashed, and in use: not refilled
            volumes.mount_artifacts(client, pulled, [(manifest, folder)], sealed=sealed)


# 10: a live deploy keeps its lock; nobody removes a lock they do not hold without naming its holder.


def test_a_live_deploy_started_long_ago_keeps_its_lock(
    tb: dict[str, str], images: Images, arts: Artifacts, tmp_path: Path
) -> None:
    """A deploy whose lock says it started two hours ago (a slow machine clock) is still alive: a second
    deploy that would clear stale locks must not take over."""
    faketime = shutil.which("faketime")
    if faketime is None:
        pytest.fail("faketime is missing: `apt-get install faketime` (scripts/testbed installs it)")
    deploy(request_for(tb, "fx-lease", images.v1, "1.0.0"), artifacts=arts, actor="alice@dev")
    first = subprocess.Popen(
        [faketime, "-f", "-2h", sys.executable, "-m", "tests.integration.deploy_support", "fx-lease", images.v2,
         "2.0.0", str(tmp_path / "elsewhere"), "10"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert first.stdout is not None
    for line in first.stdout:
        if "step='ready', state='running'" in line:
            break
    questions: list[str] = []

    def agree(question: str) -> bool:
        questions.append(question)
        return True

    with pytest.raises(DeployLockedError, match="killed@test"):
        deploy(request_for(tb, "fx-lease", images.v1, "1.0.0"), artifacts=arts, actor="alice@dev", confirm=agree)
    rest = first.stdout.read()
    assert first.wait(timeout=60) == 0, rest
    assert questions == [] and get(APPS["fx-lease"])[1]["version"] == "2.0.0"


def test_a_lease_runs_out_only_when_nobody_renews_it(tb: dict[str, str], images: Images) -> None:
    with connect(target(tb)) as client:
        lease = lock.acquire(client, "fx-lease", owner="bob@elsewhere", version="9", image=target(tb).proxy_image,
                             lease_s=3)  # fmt: skip
        try:
            with lease.kept(client, every_s=0.5):
                time.sleep(4)  # longer than the lease: renewed meanwhile
                held = lock.current(client, "fx-lease")
                assert held is not None and not held.stale
            time.sleep(3.5)
            held = lock.current(client, "fx-lease")
            assert held is not None and held.stale and held.expired
        finally:
            lease.release(client)


def cli_environ(tb: dict[str, str], tmp_path: Path) -> dict[str, str]:
    staging = {
        "host": tb["WORKBENCH_TESTBED_DEPLOY_SSH"].split("@")[1],
        "user": "root",
        "identity_file": tb["WORKBENCH_TESTBED_DEPLOY_SSH_KEY"],
        "known_hosts": tb["WORKBENCH_TESTBED_DEPLOY_KNOWN_HOSTS"],
        "proxy_image": tb["WORKBENCH_TESTBED_PROXY_IMAGE"],
        "apps": {"fx-lease": {"port": APPS["fx-lease"]}},
    }
    return {
        "WORKBENCH_WORKSPACE__DATA_DIR": str(tmp_path / "workspace"),
        "WORKBENCH_TARGETS__STAGING": json.dumps(staging),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "HOME": str(tmp_path),
    }


def test_lock_release_refuses_a_lock_it_does_not_hold(tb: dict[str, str], images: Images, tmp_path: Path) -> None:
    from workbench.cli.main import cli

    with connect(target(tb)) as client:
        lock.acquire(client, "fx-lease", owner="bob@elsewhere", version="9.9.9", image=target(tb).proxy_image)

    def release(*extra: str) -> Any:
        argv = ["deploy", "lock", "release", "fx-lease", "--target", "staging", "--yes", *extra]
        return CliRunner().invoke(cli, argv, env=cli_environ(tb, tmp_path))

    refused = release()
    assert refused.exit_code != 0 and "bob@elsewhere" in refused.output, refused.output
    wrong = release("--force", "mallory@elsewhere")
    assert wrong.exit_code != 0 and "bob@elsewhere" in wrong.output, wrong.output
    assert target_state(tb, "fx-lease")[2] is not None
    forced = release("--force", "bob@elsewhere")
    assert forced.exit_code == 0, forced.output
    assert target_state(tb, "fx-lease")[2] is None


def test_a_deploy_that_lost_its_lock_does_not_switch_or_free_the_new_holder(
    tb: dict[str, str], images: Images, arts: Artifacts
) -> None:
    """Someone cleared the running deploy's lock and a second deploy took it: the first must neither switch
    traffic nor, cleaning up, remove the second one's lock."""
    deploy(request_for(tb, "fx-lost", images.v1, "1.0.0"), artifacts=arts, actor="alice@dev")
    waiting = threading.Event()
    outcome: list[BaseException | None] = []

    def on_step(event: StepEvent) -> None:
        if event.step == "ready" and event.state == "running":
            waiting.set()

    def first() -> None:
        request = request_for(tb, "fx-lost", images.v2, "2.0.0", env={"READY_AFTER_S": "4"})
        try:
            deploy(request, artifacts=arts, actor="alice@dev", on_step=on_step)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    runner = threading.Thread(target=first)
    runner.start()
    assert waiting.wait(timeout=120)
    with connect(target(tb)) as client:
        client.containers.get(lock.lock_name("fx-lost")).remove(force=True)  # taken away from under it
        lock.acquire(client, "fx-lost", owner="bob@elsewhere", version="9.9.9", image=target(tb).proxy_image)
    runner.join(timeout=120)
    assert isinstance(outcome[0], WorkbenchError), outcome
    assert get(APPS["fx-lost"])[1]["version"] == "1.0.0"
    held = target_state(tb, "fx-lost")[2]
    assert held is not None and held.owner == "bob@elsewhere"


# 14: a start that fails leaves neither the container nor its API-key volume on the target.


def test_a_failed_start_leaves_nothing_behind(
    tb: dict[str, str], images: Images, arts: Artifacts, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEYS_ENV, "a-key")
    request = request_for(tb, "fx-leak", images.v1, "1.0.0", api_keys_env=KEYS_ENV, gpus=1)  # no GPU there
    with pytest.raises(DeployFailedError, match="start"):
        deploy(request, artifacts=arts, actor="alice@dev")
    assert target_state(tb, "fx-leak") == ([], [], None)
    assert [r.status for r in releases.history(arts.store, "fx-leak", "staging")] == ["failed"]
