"""A docker-py client for a target's engine, over SSH or a local socket."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from services.deploy.ssh import DockerTunnel
from services.deploy.target import Target
from services.errors import TargetUnavailableError

if TYPE_CHECKING:
    from docker import DockerClient

API_TIMEOUT_S = 300


@contextlib.contextmanager
def connect(target: Target) -> Iterator[DockerClient]:
    """An open client to `target`'s engine, closed (and its SSH tunnel with it) on exit."""
    import docker
    from docker.errors import DockerException

    with contextlib.ExitStack() as stack:
        url = target.docker_host
        if target.is_ssh:
            url = stack.enter_context(DockerTunnel(target)).url
        try:
            client = docker.DockerClient(base_url=url, timeout=API_TIMEOUT_S)
            client.ping()
        except DockerException as exc:
            raise TargetUnavailableError(
                f"target {target.name}: the Docker engine at {target.docker_host} does not answer ({exc})"
            ) from None
        stack.callback(client.close)
        yield client


@contextlib.contextmanager
def connect_all(target: Target) -> Iterator[dict[str, DockerClient]]:
    """Open clients to every engine of `target` (engine address to client, the proxy's first), all closed on
    exit; TargetUnavailableError naming the first engine that does not answer."""
    with contextlib.ExitStack() as stack:
        yield {engine: stack.enter_context(connect(target.on(engine))) for engine in target.engines}
