"""Rollback: back to the previous release in seconds when its container is still there (stopped, kept
for this; or still running with `keep_previous_warm`, then only the proxy switches), else a redeploy of
that release's image digest and exact artifact versions.

With several replicas the kept containers of that release (on their hosts) come back the way a deploy brings
new ones, one at a time in place of one current replica (`services.deploy.rolling`); when any of them is
gone, the release is redeployed (rolling as well).

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
from services.deploy.engine import connect_all
from services.deploy.rolling import Rollout, Slot
from services.deploy.target import AppSpec, Target
from services.errors import NextStep, NotFoundError

if TYPE_CHECKING:
    from docker import DockerClient

    from services.artifacts.workspace import Artifacts


Kept = list[tuple[str, Any]]
"""A release's kept containers: (engine, container), in replica order."""


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
    with connect_all(target) as clients:
        kept = _kept_replicas(clients, target, previous)
        if kept is None or not all(_keys_fit(container, target.app(app)) for _, container in kept):
            request = pipeline.DeployRequest(
                target, app, f"{previous.bom['image'].rsplit(':', 1)[0]}@{previous.bom['digest']}", previous.version,
                registry_auth=registry_auth,
                artifact_refs={a["mount"]: f"{a['name']}@{a['version']}" for a in previous.bom.get("artifacts", [])},
                rollback_of=live.id if live else None, replicas=_replica_count(previous),
            )  # fmt: skip
            return pipeline.DeployRun(request, artifacts, actor, report, lambda question: False).execute(clients)
        return _restart(clients, target, app, kept, previous, live, artifacts, actor, report)


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


def _replica_count(release: releases.Release) -> int:
    """How many replicas `release` ran (1 for a release of a workbench before replicas)."""
    listed = release.bom.get("replicas")
    return len(listed) if isinstance(listed, list) and listed else 1


def _kept_replicas(clients: dict[str, DockerClient], target: Target, previous: releases.Release) -> Kept | None:
    """The containers of `previous` still on the target's engines, with their engines; None when any is gone."""
    listed = previous.bom.get("replicas") or [{"container": previous.bom.get("container")}]
    found = []
    for item in listed if isinstance(listed, list) else []:
        engine = str(item.get("engine") or target.docker_host) if isinstance(item, dict) else ""
        client = clients.get(engine)
        container = _kept(client, item.get("container")) if client is not None else None
        if container is None:
            return None
        found.append((engine, container))
    return found or None


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
    clients: dict[str, DockerClient],
    target: Target,
    app: str,
    kept: Kept,
    previous: releases.Release,
    live: releases.Release | None,
    artifacts: Artifacts,
    actor: str,
    on_step: pipeline.OnStep,
) -> releases.Release:
    """The fast path: start the kept containers one at a time, each ready before it replaces a current replica."""
    client = clients[target.docker_host]
    spec = target.app(app)
    steps = pipeline.Steps(on_step)
    started = time.monotonic()
    rid = pipeline.release_id()
    bom = {**previous.bom, "rollback_of": live.id if live else None, "deployer": actor}
    bom["started_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    warm = {container.name for _, container in kept if container.status == "running"}
    with steps.step("lock"):
        held = lock.acquire(client, app, owner=actor, version=previous.version, image=target.proxy_image,
                            release=rid, containers=[c.name for _, c in kept if c.name not in warm])  # fmt: skip
    steps.check = held.check
    releases.begin(artifacts.store, rid, app, target.name, previous.version, actor, bom)
    rollout = Rollout(target, spec, clients, steps.step, hold=lambda: held.renew(client))
    try:
        with held.kept(client):
            slots = [_slot(clients[e], spec, c, " (warm)" if c.name in warm else "", e) for e, c in kept]
            replicas = rollout.run(slots, on_serving=lambda: bom.__setitem__("serving_after_s", _since(started)))
            with steps.step("record"):
                bom["container"] = replicas[0].container
                bom["replicas"] = [{"container": r.container, "engine": r.engine, "server": r.server} for r in replicas]
                bom["duration_s"] = _since(started)
                return releases.finish(artifacts.store, rid, "live", bom)
    except BaseException as exc:
        bom["error"] = getattr(exc, "message", None) or str(exc)
        releases.finish(artifacts.store, rid, "failed", bom)
        with contextlib.suppress(Exception):
            rollout.undo()
        for _, container in kept:  # not serving: kept stopped (or warm) again, as before the rollback
            with contextlib.suppress(Exception):
                if container.name not in warm and container.name not in rollout.routed():
                    container.stop(timeout=serving.STOP_TIMEOUT_S)
        raise
    finally:
        with contextlib.suppress(Exception):
            held.release(client)


def _slot(client: DockerClient, spec: AppSpec, container: Any, label: str, engine: str) -> Slot:
    """Bring a kept container back: today's API keys into its key file first (a warm one's app rereads it)."""

    def start(_: DockerClient) -> Any:
        secrets = volumes.secrets_of(container)
        if secrets is not None:
            volumes.write_keys(client, container.image.id, secrets, serving.api_keys(spec))
        container.reload()  # its state now, not when the rollback began
        if container.status != "running":
            container.start()
        return container

    return Slot(engine, start, label, name=container.name)


def _since(started: float) -> float:
    return round(time.monotonic() - started, 2)
