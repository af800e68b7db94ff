"""Images on the real test bed: the fixture app built from the local base image on the host engine,
pushed to the htpasswd registry, pulled and run on the second engine and called over HTTP; refused
pushes, image hardening, no secret in history or config, dirty tags, and cancelling a build.

The real apps (apps/chatbot, apps/classifier) go the same way in test_images_apps.py.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from services.errors import CancelledError, ConfigError, RegistryAuthError
from services.images.apps import is_deployable
from services.images.build import BuildEvent, BuildLog
from services.images.engine import connect
from services.images.ops import build_app, push_app
from services.images.registry import RegistryClient
from services.progress import CancelToken
from tests.images_support import git_app, short_head
from tests.integration.images_support import (
    DEPLOY_HOST_IP,
    ImagesBed,
    engine,
    http,
    pull,
    running,
    wait_healthy,
)

CANARY = f"canary-build-env-{uuid.uuid4().hex[:10]}"
API_KEY = "test-key-" + uuid.uuid4().hex[:8]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    git_app(tmp_path / "repo")
    return tmp_path / "repo"


def test_build_push_pull_run_and_call(bed: ImagesBed, repo: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # docker-py, urllib3 and httpx log at debug level: never the password
    config = bed.config(repo / "apps")
    built = build_app(config, "hello")
    assert built.reference == f"{bed.registry}/hello:{short_head(repo)}" and not built.dirty
    pushed = push_app(config, "hello")
    assert pushed.digest.startswith("sha256:") and pushed.size_bytes and pushed.size_bytes > 1_000_000
    with RegistryClient(config.registry) as client:
        assert client.manifest_digest("hello", short_head(repo)) == pushed.digest
        assert short_head(repo) in client.tags("hello")
    assert caplog.records and bed.password not in caplog.text

    deploy = engine(bed.deploy_docker_host)
    pull(deploy, built.reference, bed)
    assert f"{bed.registry}/hello@{pushed.digest}" in deploy.inspect_image(built.reference)["RepoDigests"]
    with running(deploy, built.reference, {"APP_API_KEY": API_KEY}) as (container, port):
        wait_healthy(deploy, container)
        url = f"http://{DEPLOY_HOST_IP}:{port}"
        assert http(f"{url}/healthz") == (200, {"status": "ok"})
        assert http(f"{url}/v1/hello")[0] == 401
        assert http(f"{url}/v1/hello", key="wrong")[0] == 403
        assert http(f"{url}/v1/hello", key=API_KEY) == (200, {"message": "hello", "version": short_head(repo)})
    deploy.remove_image(built.reference, force=True)


def test_unauthenticated_and_wrong_pushes_are_refused(
    bed: ImagesBed, repo: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    config = bed.config(repo / "apps")
    build_app(config, "hello")
    anonymous = bed.config(repo / "apps", auth="docker-config", docker_config=tmp_path / "no-docker-config")
    with pytest.raises(RegistryAuthError) as err:
        push_app(anonymous, "hello")
    assert err.value.message.startswith(f"registry {bed.registry} refused the push of {bed.registry}/hello:")
    assert "no basic auth credentials" in err.value.message or "unauthorized" in err.value.message
    assert f"docker login {bed.registry}" in (err.value.hint or "")

    wrong = bed.config(repo / "apps", environ={"WB_TEST_REGISTRY_PASSWORD": CANARY})
    with pytest.raises(RegistryAuthError) as err:
        push_app(wrong, "hello")
    assert CANARY not in str(err.value) and "WB_TEST_REGISTRY_PASSWORD" in (err.value.hint or "")
    assert CANARY not in caplog.text

    with pytest.raises(ConfigError):
        push_app(bed.config(repo / "apps", environ={}), "hello")


def test_image_is_non_root_has_a_health_check_and_no_build_secret(
    bed: ImagesBed, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # secrets in the calling process's environment, where a careless build would pick them up
    monkeypatch.setenv("WB_CANARY_SECRET", CANARY)
    monkeypatch.setenv("WB_TEST_REGISTRY_PASSWORD", bed.password)
    config = bed.config(repo / "apps", environ=None)
    built = build_app(config, "hello", build_args={"PIP_NO_CACHE_DIR": "1"}, nocache=True)
    api = connect(bed.docker_host)
    image = api.inspect_image(built.reference)
    assert image["Config"]["User"] == "10001:10001"
    assert image["Config"]["Healthcheck"]["Test"][0] == "CMD"
    labels = image["Config"]["Labels"]
    assert labels["org.opencontainers.image.revision"] == built.revision and len(built.revision) == 40
    assert labels["org.opencontainers.image.version"] == built.version
    history = json.dumps(api.history(built.reference))
    config_text = json.dumps(image)
    for secret in (CANARY, bed.password):
        assert secret not in history and secret not in config_text
    assert f"APP_VERSION={built.version}" in image["Config"]["Env"]  # the build arguments did arrive


def test_a_dirty_tree_gets_a_dirty_tag_that_prod_refuses(bed: ImagesBed, repo: Path) -> None:
    (repo / "apps" / "hello" / "app" / "extra.txt").write_text("not committed\n")
    built = build_app(bed.config(repo / "apps"), "hello")
    assert built.reference == f"{bed.registry}/hello:{short_head(repo)}-dirty" and built.dirty
    assert is_deployable(built.version, "dev") and not is_deployable(built.version, "prod")
    labels = connect(bed.docker_host).inspect_image(built.reference)["Config"]["Labels"]
    assert labels["org.opencontainers.image.version"].endswith("-dirty")


def slow_app(root: Path) -> Path:
    """An app whose second step sleeps a minute and prints nothing (a unique step: never cached)."""
    app = root / "slow"
    app.mkdir(parents=True)
    (app / "Dockerfile").write_text(
        f"ARG BASE_IMAGE=python:3.11-slim\nFROM ${{BASE_IMAGE}}\nRUN echo {uuid.uuid4().hex} && sleep 60\n"
    )
    return app


def build_containers(api: Any, container: str) -> list[Any]:
    return api.containers(all=True, filters={"id": container})


def test_cancel_stops_a_build_in_a_silent_step(bed: ImagesBed, tmp_path: Path) -> None:
    config = bed.config(tmp_path / "apps", app_dirs=(slow_app(tmp_path),))
    cancel = CancelToken()
    running_in: list[str] = []

    def watch(event: BuildEvent) -> None:
        if isinstance(event, BuildLog) and event.text.startswith(" ---> Running in "):
            running_in.append(event.text.split()[-1])
            threading.Timer(1.0, cancel.cancel).start()

    started = time.monotonic()
    with pytest.raises(CancelledError) as err:
        build_app(config, "slow", on_event=watch, cancel=cancel)
    assert time.monotonic() - started < 30, "the cancel waited for the sleeping step"
    assert err.value.message == "build of slow cancelled" and running_in
    api = connect(bed.docker_host)
    deadline = time.monotonic() + 30
    while build_containers(api, running_in[0]) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert build_containers(api, running_in[0]) == [], "the engine kept running the cancelled step"
    assert api.images(name=f"{bed.registry}/slow") == []


def test_ctrl_c_cancels_a_cli_build_cleanly(bed: ImagesBed, tmp_path: Path) -> None:
    app = slow_app(tmp_path)
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "WORKBENCH_IMAGES__APPS_DIR": str(tmp_path),
        "WORKBENCH_IMAGES__BASE_IMAGE": bed.base_image,
        "WORKBENCH_IMAGES__DOCKER_HOST": bed.docker_host,
        "WORKBENCH_REGISTRY__LOGIN_SERVER": bed.registry,
    }
    root = Path(__file__).parents[2]
    process = subprocess.Popen(
        [sys.executable, "-m", "workbench", "image", "build", app.name],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    for line in process.stderr:
        if line.startswith(" ---> Running in "):
            break
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    stderr = process.stderr.read()
    assert process.wait(timeout=30) == 130, stderr
    assert "cancelling" in stderr and "build of slow cancelled" in stderr
    assert "Traceback" not in stderr
