"""What a deploy and a rollback both do to serve a container: API keys, readiness, the proxy switch, draining.

A new release (`services.deploy.pipeline`) and a rollback (`services.deploy.rollback`) bring a
container into service the same way: wait for its /readyz, route the app's port to it, then let the
old container's requests finish before stopping it.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

from services.deploy import proxy
from services.deploy.target import AppSpec, Target
from services.errors import DeployFailedError, UsageError

if TYPE_CHECKING:
    from docker import DockerClient


DRAIN_S = 2.0
"""Time the proxy's old workers get to finish their requests before the old container stops."""

STOP_TIMEOUT_S = 10
"""Seconds a stopping container gets between SIGTERM and SIGKILL."""

READY_PROBE = """
import sys, time, urllib.request
deadline = time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline:
    try:
        if urllib.request.urlopen(sys.argv[1], timeout=2).status == 200:
            sys.exit(0)
    except Exception:
        pass
    time.sleep(0.1)
sys.exit(1)
"""


def wait_ready(container: Any, spec: AppSpec) -> float:
    """Seconds until the container's /readyz answers 200, polled from inside it by one exec;
    DeployFailedError on timeout or when the container stops."""
    started = time.monotonic()
    url = f"http://127.0.0.1:{spec.container_port}/readyz"
    with contextlib.suppress(Exception):  # an exec into a container that died fails: told apart below
        if container.exec_run(["python3", "-c", READY_PROBE, url, str(spec.ready_timeout_s)]).exit_code == 0:
            return time.monotonic() - started
    container.reload()
    if container.status != "running":
        state = container.attrs["State"]
        raise DeployFailedError(f"{container.name} stopped before it was ready (exit {state.get('ExitCode')})")
    raise DeployFailedError(
        f"{container.name} was not ready within {spec.ready_timeout_s:.0f} s (/readyz never answered 200)",
        hint="its last log lines are below; the old version keeps serving",
    )


def switch(client: DockerClient, target: Target, spec: AppSpec, new: str) -> str | None:
    """Route the app's port to container `new`; returns the container it served before."""
    gateway = proxy.ensure_proxy(client, target)
    old = proxy.routed_to(gateway, spec.name)
    proxy.route(gateway, spec.name, spec.port, new, spec.container_port, target.tls)
    return old if old != new else None  # a recreated proxy may route a first version to it already


def drain(client: DockerClient, old: str | None, new: str) -> None:
    """Let the proxy's old workers finish their requests to `old`, then stop it (kept for rollback)."""
    if not old or old == new:
        return
    time.sleep(DRAIN_S)
    with contextlib.suppress(Exception):
        client.containers.get(old).stop(timeout=STOP_TIMEOUT_S)


def api_keys(spec: AppSpec) -> list[str]:
    """The app's API keys from the variable its spec names (comma- or line-separated); none when it names none."""
    import os

    if not spec.api_keys_env:
        return []
    raw = os.environ.get(spec.api_keys_env, "")
    keys = [k.strip() for k in raw.replace(",", "\n").splitlines() if k.strip()]
    if not keys:
        raise UsageError(
            f"app {spec.name}: no API keys in ${spec.api_keys_env}", hint=f"export {spec.api_keys_env}=KEY1,KEY2"
        )
    return keys


def container_resources(spec: AppSpec) -> dict[str, Any]:
    """docker-py `run` options for the app's memory, CPU and GPU limits."""
    from docker.types import DeviceRequest

    options: dict[str, Any] = {}
    if spec.memory:
        options["mem_limit"] = spec.memory
    if spec.cpus:
        options["nano_cpus"] = int(spec.cpus * 1e9)
    if spec.gpus is not None:
        options["device_requests"] = [DeviceRequest(count=spec.gpus, capabilities=[["gpu"]])]
    return options
