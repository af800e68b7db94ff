"""The test bed for the Images tests: the host engine that builds, the registry with htpasswd auth,
and the second engine (the deployment server) that pulls and runs what was pushed.

`images_bed()` reads STATE/testbed.json (written by `scripts/testbed up`); without it a test skips on a
developer machine and fails under CI=true, where the test bed must be up.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.images.credentials import RegistryAccess
from services.images.ops import ImagesConfig
from tests.testbed import read_testbed

PASSWORD_ENV = "WB_TEST_REGISTRY_PASSWORD"
DEPLOY_HOST_IP = "10.203.0.2"
"""Address of the deployment engine's network namespace: its published ports answer there."""


@dataclass(frozen=True)
class ImagesBed:
    docker_host: str
    deploy_docker_host: str
    registry: str
    user: str
    password: str
    base_image: str

    def access(self, **changes: Any) -> RegistryAccess:
        """Password login with the test bed's user; the password in PASSWORD_ENV of `environ`."""
        values: dict[str, Any] = {
            "server": self.registry,
            "auth": "password",
            "username": self.user,
            "password_env": PASSWORD_ENV,
            "plain_http": True,
            "environ": {PASSWORD_ENV: self.password},
        }
        return RegistryAccess(**{**values, **changes})

    def config(
        self,
        apps_dir: Path,
        *,
        app_dirs: tuple[Path, ...] = (),
        kit_dir: Path | None = None,
        kit_cache: Path | None = None,
        **access: Any,
    ) -> ImagesConfig:
        return ImagesConfig(
            apps_dir=apps_dir,
            app_dirs=app_dirs,
            base_image=self.base_image,
            docker_host=self.docker_host,
            registry=self.access(**access),
            kit_dir=kit_dir,
            kit_cache=kit_cache or apps_dir.parent / "kit-cache",
        )


def images_bed() -> ImagesBed:
    values = read_testbed()
    return ImagesBed(
        docker_host=values["WORKBENCH_TESTBED_DOCKER_HOST"],
        deploy_docker_host=values["WORKBENCH_TESTBED_DEPLOY_DOCKER_HOST"],
        registry=values["WORKBENCH_TESTBED_REGISTRY"],
        user=values["WORKBENCH_TESTBED_REGISTRY_USER"],
        password=Path(values["WORKBENCH_TESTBED_REGISTRY_PASSWORD_FILE"]).read_text().strip(),
        base_image=values["WORKBENCH_TESTBED_BASE_IMAGE"],
    )


def engine(base_url: str) -> Any:
    import docker

    return docker.APIClient(base_url=base_url, version="auto", timeout=300)


def pull(api: Any, reference: str, bed: ImagesBed) -> None:
    """Pull `reference` on `api`'s engine with the test bed's login (any earlier copy removed first)."""
    import docker.errors

    with suppress(docker.errors.ImageNotFound):
        api.remove_image(reference, force=True)
    repository, tag = reference.rsplit(":", 1)
    auth = {"username": bed.user, "password": bed.password, "serveraddress": bed.registry}
    for event in api.pull(repository, tag=tag, stream=True, decode=True, auth_config=auth):
        if "error" in event:
            raise AssertionError(f"pull of {reference} failed: {event['error']}")


@contextmanager
def running(api: Any, reference: str, environment: dict[str, str], **host_config: Any) -> Iterator[tuple[str, int]]:
    """A container of `reference` with port 8000 published on a free port; yields (id, port)."""
    config = api.create_host_config(port_bindings={8000: None}, **host_config)
    container = api.create_container(reference, environment=environment, ports=[8000], host_config=config)
    try:
        api.start(container["Id"])
        port = int(api.inspect_container(container["Id"])["NetworkSettings"]["Ports"]["8000/tcp"][0]["HostPort"])
        yield container["Id"], port
    finally:
        api.remove_container(container["Id"], force=True)


def wait_healthy(api: Any, container: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        state = api.inspect_container(container)["State"]
        health = (state.get("Health") or {}).get("Status")
        if health == "healthy":
            return
        if not state.get("Running") or time.monotonic() > deadline:
            logs = api.logs(container, tail=40).decode(errors="replace")
            raise AssertionError(f"container not healthy ({health}, running={state.get('Running')}):\n{logs}")
        time.sleep(0.5)


def http(
    url: str, *, key: str | None = None, body: dict[str, Any] | None = None, timeout: float = 60
) -> tuple[int, Any]:
    """(status, parsed JSON body) of a GET (or a POST of `body`) without any proxy."""
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")
