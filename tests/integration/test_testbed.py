"""The test bed itself: every service that `scripts/testbed up` starts answers as promised.

Reads STATE/testbed.json (written by `scripts/testbed up`). Without it the tests skip on a
developer machine and fail in CI (CI=true), where the test bed must have been started.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

TIMEOUT = 60


def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, input=input, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False)


def docker(tb: dict[str, str], *args: str, input: str | None = None, docker_config: str | None = None):
    env = dict(os.environ)
    env.pop("DOCKER_CONTEXT", None)
    env["DOCKER_HOST"] = tb["WORKBENCH_TESTBED_DOCKER_HOST"]
    if docker_config:
        env["DOCKER_CONFIG"] = docker_config
    return run("docker", *args, input=input, env=env)


def ssh_args(tb: dict[str, str], known_hosts: str) -> list[str]:
    return [
        "ssh",
        "-F", "/dev/null",  # no user or system client config
        "-i", tb["WORKBENCH_TESTBED_DEPLOY_SSH_KEY"],
        "-o", "IdentitiesOnly=yes",
        "-o", f"UserKnownHostsFile={known_hosts}",
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "StrictHostKeyChecking=yes",
        "-o", "BatchMode=yes",
        "-o", "ConnectTimeout=5",
        tb["WORKBENCH_TESTBED_DEPLOY_SSH"],
    ]  # fmt: skip


def ssh(tb: dict[str, str], command: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return run(*ssh_args(tb, tb["WORKBENCH_TESTBED_DEPLOY_KNOWN_HOSTS"]), command, input=input)


def registry_password(tb: dict[str, str]) -> str:
    return Path(tb["WORKBENCH_TESTBED_REGISTRY_PASSWORD_FILE"]).read_text().strip()


def http_status(url: str, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, headers=headers or {})
    # a direct opener: proxy settings of the environment must not apply to test addresses
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_host_engine_answers(tb):
    result = docker(tb, "info", "--format", "{{json .RegistryConfig.IndexConfigs}}")
    assert result.returncode == 0, result.stderr
    assert tb["WORKBENCH_TESTBED_REGISTRY"] in json.loads(result.stdout), "registry must be trusted"


def test_base_image_present(tb):
    result = docker(
        tb, "run", "--rm", tb["WORKBENCH_TESTBED_BASE_IMAGE"], "python3", "-c", "import venv, ssl; print('ok')"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_registry_refuses_anonymous_and_accepts_user(tb):
    url = f"http://{tb['WORKBENCH_TESTBED_REGISTRY']}/v2/"
    assert http_status(url) == 401
    wrong = base64.b64encode(f"{tb['WORKBENCH_TESTBED_REGISTRY_USER']}:wrong".encode()).decode()
    assert http_status(url, {"Authorization": f"Basic {wrong}"}) == 401
    good = base64.b64encode(f"{tb['WORKBENCH_TESTBED_REGISTRY_USER']}:{registry_password(tb)}".encode()).decode()
    assert http_status(url, {"Authorization": f"Basic {good}"}) == 200


def test_registry_password_file_is_private(tb):
    mode = Path(tb["WORKBENCH_TESTBED_REGISTRY_PASSWORD_FILE"]).stat().st_mode & 0o777
    assert mode == 0o600


def test_azurite_blob_answers(tb):
    # an unauthenticated list request: Azurite answers with an HTTP error, which proves it listens
    assert http_status(f"{tb['WORKBENCH_TESTBED_AZURITE_BLOB_URL']}?comp=list") in {200, 400, 401, 403}


def test_ssh_with_pinned_host_key_reaches_deploy_engine(tb):
    result = ssh(tb, "docker info --format '{{.DockerRootDir}}'")
    assert result.returncode == 0, result.stderr
    # the deploy engine, not the host engine: it has its own data root
    assert "/deployhost/" in result.stdout


def test_ssh_with_unknown_host_key_is_refused(tb, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    result = run(*ssh_args(tb, str(empty)), "true")
    assert result.returncode == 255
    assert "Host key verification failed" in result.stderr


def test_deploy_engine_pulls_from_registry_and_containers_reach_it(tb):
    registry = tb["WORKBENCH_TESTBED_REGISTRY"]
    user = tb["WORKBENCH_TESTBED_REGISTRY_USER"]
    image = f"{registry}/testbed/base:1"
    password = registry_password(tb) + "\n"
    config = tempfile.mkdtemp(prefix="testbed-docker-config-")
    try:
        assert docker(tb, "tag", tb["WORKBENCH_TESTBED_BASE_IMAGE"], image).returncode == 0
        login = docker(tb, "login", "-u", user, "--password-stdin", registry, input=password, docker_config=config)
        assert login.returncode == 0, login.stderr
        push = docker(tb, "push", "-q", image, docker_config=config)
        assert push.returncode == 0, push.stderr
    finally:
        shutil.rmtree(config, ignore_errors=True)

    probe = (
        "import urllib.request, urllib.error\n"
        "try:\n"
        f"    urllib.request.urlopen('http://{registry}/v2/', timeout=5)\n"
        "except urllib.error.HTTPError as e:\n"
        "    print(e.code)\n"
    )
    # On the deploy host: log in with a throwaway config, drop any earlier copy, pull over
    # the veth link, then let a container talk to the registry.
    script = f"""set -e
export DOCKER_CONFIG=$(mktemp -d)
trap 'rm -rf "$DOCKER_CONFIG"' EXIT
docker login -u {user} --password-stdin {registry} >/dev/null
docker rmi -f {image} >/dev/null 2>&1 || true
docker pull -q {image}
docker run --rm {image} python3 -c "{probe}"
"""
    result = ssh(tb, script, input=password)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "401", result.stdout
