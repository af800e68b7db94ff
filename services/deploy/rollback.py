"""Rollback: back to the previous release in seconds when its container is still there (stopped, kept
for this; or still running with `keep_previous_warm`, then only the proxy switches), else a redeploy of
that release's image digest and exact artifact versions.

Either way the rollback is itself a release, with the bill of materials of the one it restores and
`rollback_of` naming the one it replaces, so the history shows both. A kept container starts with the
target's current API keys, written into its key volume first: keys revoked since it last ran stay
revoked; when the app no longer takes keys from a file, the release is redeployed instead.
"""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from services.deploy import lock, pipeline, releases, serving, volumes
from services.deploy.engine import connect
from services.deploy.target import AppSpec, Target
from services.errors import NextStep, NotFoundError

if TYPE_CHECKING:
    from docker import DockerClient

    from services.artifacts.workspace import Artifacts


def rollback(
    target: Target,
    app: str,
    *,
    artifacts: Artifacts,
    actor: str,
    to: str | None = None,
    registry_auth: dict[str, str] | None = None,
    on_step: pipeline.OnStep | None = None,
) -> releases.Release:
    """Serve the release `to` (default: the one before the live one) again."""
    store = artifacts.store
    live, previous = _choose(releases.history(store, app, target.name, limit=100), to)
    report = on_step or (lambda event: None)
    with connect(target) as client:
        container = _kept(client, previous.bom.get("container"))
        if container is None or not _keys_fit(container, target.app(app)):
            request = pipeline.DeployRequest(
                target, app, f"{previous.bom['image'].rsplit(':', 1)[0]}@{previous.bom['digest']}", previous.version,
                registry_auth=registry_auth,
                artifact_refs={a["mount"]: f"{a['name']}@{a['version']}" for a in previous.bom.get("artifacts", [])},
                rollback_of=live.id if live else None,
            )  # fmt: skip
            return pipeline.DeployRun(request, artifacts, actor, report, lambda question: False).execute(client)
        return _restart(client, target, app, container, previous, live, artifacts, actor, report)


def _choose(history: list[releases.Release], to: str | None) -> tuple[releases.Release | None, releases.Release]:
    live = next((r for r in history if r.status == "live"), None)
    if to is not None:
        chosen = next((r for r in history if r.id == to or r.id.startswith(to)), None)
        if chosen is None or "digest" not in chosen.bom:
            raise NotFoundError(f"no finished release {to!r} to roll back to", step=NextStep("deploy.status"))
        return live, chosen
    candidates = [
        r for r in history if r.status == "retained" and "digest" in r.bom and (live is None or r.id != live.id)
    ]
    if live is not None:
        candidates = [r for r in candidates if r.bom.get("container") != live.bom.get("container")]
    if not candidates:
        raise NotFoundError("there is no earlier release to roll back to", hint="deploy a version first")
    return live, candidates[0]


def _kept(client: DockerClient, name: str | None) -> Any:
    from docker.errors import NotFound

    if not name:
        return None
    try:
        return client.containers.get(name)
    except NotFound:
        return None


def _keys_fit(container: Any, spec: AppSpec) -> bool:
    """The kept container can take the current keys: it reads a key file exactly when the app has keys now."""
    return (volumes.secrets_of(container) is not None) == bool(spec.api_keys_env)


def _restart(
    client: DockerClient,
    target: Target,
    app: str,
    container: Any,
    previous: releases.Release,
    live: releases.Release | None,
    artifacts: Artifacts,
    actor: str,
    on_step: pipeline.OnStep,
) -> releases.Release:
    """The fast path: start the kept container, wait until ready, switch, record."""
    spec = target.app(app)
    steps = pipeline.Steps(on_step)
    started = time.monotonic()
    rid = pipeline.release_id()
    bom = {**previous.bom, "rollback_of": live.id if live else None, "deployer": actor}
    bom["started_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    warm = container.status == "running"
    with steps.step("lock"):
        held = lock.acquire(client, app, owner=actor, version=previous.version, image=target.proxy_image,
                            release=rid, container=container.name)  # fmt: skip
    steps.check = held.check
    releases.begin(artifacts.store, rid, app, target.name, previous.version, actor, bom)
    try:
        with held.kept(client):
            return _serve(client, target, spec, container, steps, artifacts, rid, bom, started, held)
    except BaseException as exc:
        bom["error"] = getattr(exc, "message", None) or str(exc)
        releases.finish(artifacts.store, rid, "failed", bom)
        with contextlib.suppress(Exception):  # not serving: kept stopped (or warm) again, as before the rollback
            if not warm and releases.live_container(client, app) != container.name:
                container.stop(timeout=serving.STOP_TIMEOUT_S)
        raise
    finally:
        with contextlib.suppress(Exception):
            held.release(client)


def _serve(
    client: DockerClient,
    target: Target,
    spec: AppSpec,
    container: Any,
    steps: pipeline.Steps,
    artifacts: Artifacts,
    rid: str,
    bom: dict[str, Any],
    started: float,
    held: lock.Lease,
) -> releases.Release:
    """Start the kept container with today's keys, wait until ready, switch (still holding the lock), record."""
    with steps.step("start") as note:
        secrets = volumes.secrets_of(container)
        if secrets is not None:  # a warm container's app rereads its key file when it changes
            volumes.write_keys(client, container.image.id, secrets, serving.api_keys(spec))
        if container.status == "running":
            note(f"{container.name} (warm)")
        else:
            container.start()
            note(container.name)
    with steps.step("ready") as note:
        note(f"/readyz after {serving.wait_ready(container, spec):.1f} s")
    with steps.step("switch") as note:
        held.renew(client)
        old = serving.switch(client, target, spec, container.name)
        note(f"from {old}")
    bom["serving_after_s"] = round(time.monotonic() - started, 2)
    with steps.step("drain") as note:
        note(serving.drain(client, spec, old, container.name))
    with steps.step("record"):
        bom["duration_s"] = round(time.monotonic() - started, 2)
        return releases.finish(artifacts.store, rid, "live", bom)
