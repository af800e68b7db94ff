"""Rollback: back to the previous release in seconds when its container is still there (stopped, kept
for this), else a redeploy of that release's image digest and exact artifact versions.

Either way the rollback is itself a release, with the bill of materials of the one it restores and
`rollback_of` naming the one it replaces, so the history shows both.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from services.deploy import lock, pipeline, releases
from services.deploy.engine import connect
from services.deploy.target import Target
from services.errors import NotFoundError

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
        if container is None:
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
            raise NotFoundError(f"no finished release {to!r} to roll back to", hint="see `workbench status`")
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
    with steps.step("lock"):
        lock.acquire(client, app, owner=actor, version=previous.version, image=target.proxy_image)
    releases.begin(artifacts.store, rid, app, target.name, previous.version, actor, bom)
    try:
        with steps.step("start") as note:
            container.start()
            note(container.name)
        with steps.step("ready") as note:
            note(f"/readyz after {pipeline.wait_ready(container, spec):.1f} s")
        with steps.step("switch") as note:
            old = pipeline.switch(client, target, spec, container.name)
            note(f"from {old}")
        bom["serving_after_s"] = round(time.monotonic() - started, 2)
        with steps.step("drain"):
            pipeline.drain(client, old, container.name)
        with steps.step("record"):
            bom["duration_s"] = round(time.monotonic() - started, 2)
            return releases.finish(artifacts.store, rid, "live", bom)
    except BaseException as exc:
        bom["error"] = getattr(exc, "message", None) or str(exc)
        releases.finish(artifacts.store, rid, "failed", bom)
        raise
    finally:
        lock.release(client, app)
