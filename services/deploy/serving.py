"""What a deploy and a rollback both do to serve a container: API keys, readiness, draining.

A new release (`services.deploy.pipeline`) and a rollback (`services.deploy.rollback`) bring containers into
service the same way, one replica at a time (`services.deploy.rolling`): wait for its /readyz, route the app's
port to it, then let the replaced container's requests finish before stopping it (or, with
`keep_previous_warm`, keep it running out of rotation so the next rollback is a proxy switch).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from services.deploy.target import AppSpec
from services.errors import DeployFailedError, UsageError

if TYPE_CHECKING:
    from docker import DockerClient


DRAIN_SETTLE_S = 1.0
"""The replaced container counts as drained once it has had no open connection from outside for this long
(covers the proxy's reload: its old workers may take a request in the first moments after it)."""

STOP_TIMEOUT_S = 10
"""Seconds a stopping container gets between SIGTERM and SIGKILL."""

READY_PROBE = """
import json, sys, time, urllib.error, urllib.request
deadline = time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline:
    try:
        if urllib.request.urlopen(sys.argv[1], timeout=2).status == 200:
            sys.exit(0)
    except urllib.error.HTTPError as answer:
        try:
            if json.loads(answer.read(4096)).get("status") == "failed":
                sys.exit(2)
        except ValueError:
            pass
    except Exception:
        pass
    time.sleep(0.1)
sys.exit(1)
"""
"""Polls /readyz until 200 (exit 0), the app says its load failed (exit 2: no use waiting), or the time is up."""

DRAIN_PROBE = """
import sys, time
port, settle, deadline = int(sys.argv[1]), float(sys.argv[2]), time.monotonic() + float(sys.argv[3])
LOOPBACK = ("0100007F", "00000000000000000000000001000000", "0000000000000000FFFF00000100007F")

def connections():
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, remote, state = row.split()[1:4]
            if state == "01" and int(local.rsplit(":", 1)[1], 16) == port and remote.rsplit(":", 1)[0] not in LOOPBACK:
                count += 1
    return count

quiet = time.monotonic()
while True:
    now = time.monotonic()
    if connections():
        quiet = now
    elif now - quiet >= settle:
        sys.exit(0)
    if now >= deadline:
        sys.exit(1)
    time.sleep(0.1)
"""


def wait_ready(container: Any, spec: AppSpec) -> float:
    """Seconds until the container's /readyz answers 200, polled from inside it by one exec;
    DeployFailedError on timeout, when the container stops, or as soon as the app says its load failed."""
    started = time.monotonic()
    url = f"http://127.0.0.1:{spec.container_port}/readyz"
    code = None
    with contextlib.suppress(Exception):  # an exec into a container that died fails: told apart below
        code = container.exec_run(["python3", "-c", READY_PROBE, url, str(spec.ready_timeout_s)]).exit_code
    if code == 0:
        return time.monotonic() - started
    if code == 2:
        raise DeployFailedError(
            f"{container.name} failed to load (/readyz says failed)",
            hint="its last log lines are below; the old version keeps serving",
        )
    container.reload()
    if container.status != "running":
        state = container.attrs["State"]
        raise DeployFailedError(f"{container.name} stopped before it was ready (exit {state.get('ExitCode')})")
    raise DeployFailedError(
        f"{container.name} was not ready within {spec.ready_timeout_s:.0f} s (/readyz never answered 200)",
        hint="its last log lines are below; the old version keeps serving",
    )


def drain(client: DockerClient, spec: AppSpec, old: str | None, new: str, *, keep: Collection[str] = ()) -> str:
    """After a switch from `old` to `new`: with `keep_previous_warm` keep `old` running (out of rotation) for a
    rollback; else let its in-flight requests end (`wait_drained`, at most the app's drain timeout), then stop
    it (kept for rollback). Any other running container of the app on this engine but those in `keep` (the
    other replicas in rotation, the warm ones this deploy kept) is drained and stopped the same way: at most one
    release's containers are ever kept warm. Returns the step's detail."""
    warm = old if spec.keep_previous_warm and old and old != new else None
    labels = ["workbench.role=app", f"workbench.app={spec.name}"]
    running = [c["Names"][0].lstrip("/") for c in client.api.containers(filters={"label": labels, "status": "running"})]
    deadline = time.monotonic() + spec.drain_timeout
    said = [f"{warm} kept running (warm) for rollback"] if warm else []
    for name in running:
        if name in (new, warm) or name in keep:
            continue
        container = client.containers.get(name)
        drained = wait_drained(container, spec, max(0.0, deadline - time.monotonic()))
        with contextlib.suppress(Exception):
            # the app's own graceful shutdown gets the rest of the drain time when the probe could not tell
            container.stop(timeout=STOP_TIMEOUT_S if drained is not None else int(spec.drain_timeout) + 1)
        how = {True: "once drained", False: f"at the drain timeout ({spec.drain_timeout:.0f} s)", None: "gracefully"}
        said.append(f"{container.name} stopped {how[drained]}")
    return "; ".join(said) or "nothing to drain"


def wait_drained(container: Any, spec: AppSpec, timeout: float) -> bool | None:
    """Whether `container`'s requests from outside it ended within `timeout` s: polled from inside it (one
    exec) until none of its connections on the app's port has been open for DRAIN_SETTLE_S. The proxy's reload
    lets its old workers finish their requests and then close their connections, so a streamed answer that
    began before the switch ends before the container gets SIGTERM. None when the probe cannot run (no
    python3 in the image); False on timeout or when the container stopped."""
    settle = min(DRAIN_SETTLE_S, timeout)
    probe = ["python3", "-c", DRAIN_PROBE, str(spec.container_port), str(settle), str(timeout)]
    try:
        code = container.exec_run(probe).exit_code
    except Exception:  # it stopped already: nothing more to wait for
        return False
    return None if code in (126, 127) else code == 0


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
