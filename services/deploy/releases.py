"""Releases: the record of every deploy (store table `releases`, and labels on the target's containers),
retention of old versions, recovery after an interrupted deploy, rollback and status.

A release is `running` while its deploy runs, then `live` (serving), `retained` (replaced, its
container kept stopped for rollback), `failed`, or `interrupted` (its deploy died and was cleaned up).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from services.deploy import lock, proxy, volumes
from services.store import Store, utcnow

if TYPE_CHECKING:
    from docker import DockerClient

    from services.deploy.target import Target


@dataclass(frozen=True)
class Release:
    """One deploy of an app version to a target, with its bill of materials."""

    id: str
    app: str
    target: str
    version: str
    status: str
    bom: dict[str, Any]
    created_by: str
    created_at: str
    finished_at: str | None


def begin(store: Store, rid: str, app: str, target: str, version: str, actor: str, bom: dict[str, Any]) -> None:
    with store.transaction() as db:
        db.execute(
            "INSERT INTO releases (id, app, target, version, status, bom, created_by, created_at)"
            " VALUES (?, ?, ?, ?, 'running', ?, ?, ?)",
            (rid, app, target, version, json.dumps(bom, sort_keys=True), actor, utcnow()),
        )
    store.audit(
        actor=actor,
        action="deploy.start",
        subject=f"release:{app}@{target}",
        details={"release": rid, "version": version},
    )


def finish(store: Store, rid: str, status: str, bom: dict[str, Any]) -> Release:
    """Close a release; a `live` one demotes the previous live release of its app and target to `retained`."""
    with store.transaction() as db:
        row = db.execute("SELECT app, target, created_by FROM releases WHERE id = ?", (rid,)).fetchone()
        if status == "live":
            db.execute(
                "UPDATE releases SET status = 'retained' WHERE app = ? AND target = ? AND status = 'live'",
                (row["app"], row["target"]),
            )
        db.execute(
            "UPDATE releases SET status = ?, bom = ?, finished_at = ? WHERE id = ?",
            (status, json.dumps(bom, sort_keys=True), utcnow(), rid),
        )
    store.audit(
        actor=row["created_by"], action=f"deploy.{status}", subject=f"release:{row['app']}@{row['target']}",
        details={"release": rid, "error": bom.get("error")},
    )  # fmt: skip
    return get(store, rid)


def get(store: Store, rid: str) -> Release:
    from services.errors import NextStep, NotFoundError

    with store.connect() as db:
        row = db.execute("SELECT * FROM releases WHERE id = ?", (rid,)).fetchone()
    if row is None:
        raise NotFoundError(f"no release {rid!r}", step=NextStep("deploy.status"))
    return _release(row)


def history(store: Store, app: str, target: str, *, limit: int = 20) -> list[Release]:
    """Releases of `app` on `target`, newest first."""
    with store.connect() as db:
        rows = db.execute(
            "SELECT * FROM releases WHERE app = ? AND target = ? ORDER BY created_at DESC, id DESC LIMIT ?",
            (app, target, limit),
        ).fetchall()
    return [_release(r) for r in rows]


def recorded_seals(store: Store, app: str, target: str, *, limit: int = 20) -> dict[str, dict[str, str]]:
    """Engine to artifact volume to the seal the newest full check there recorded (`volumes.seal`), from the
    bills of materials of the app's recent releases on the target (this machine's store, never the target)."""
    found: dict[str, dict[str, str]] = {}
    for release in reversed(history(store, app, target, limit=limit)):
        recorded = release.bom.get("seals")
        for engine, sealed in recorded.items() if isinstance(recorded, dict) else ():
            if isinstance(sealed, dict):
                found.setdefault(engine, {}).update({k: v for k, v in sealed.items() if isinstance(v, str)})
    return found


def _release(row: Any) -> Release:
    return Release(
        row["id"], row["app"], row["target"], row["version"], row["status"], json.loads(row["bom"] or "{}"),
        row["created_by"], row["created_at"], row["finished_at"],
    )  # fmt: skip


def app_containers(client: DockerClient, app: str) -> list[Any]:
    """Every container of `app` the workbench started on this target, newest first."""
    found = client.containers.list(all=True, filters={"label": ["workbench.role=app", f"workbench.app={app}"]})
    return sorted(found, key=lambda c: c.attrs.get("Created", ""), reverse=True)


def remove_container(client: DockerClient, name: str) -> None:
    """Remove a container and its secrets volume (the keys it was started with)."""
    from docker.errors import NotFound

    with contextlib.suppress(NotFound):
        client.containers.get(name).remove(force=True)
    volumes.remove_secrets(client, name)


def prune(client: DockerClient, app: str, *, keep: int, live: str | Collection[str]) -> list[str]:
    """Keep the live containers (on this engine) and the newest `keep` stopped ones; remove the rest."""
    serving = {live} if isinstance(live, str) else set(live)
    old = [c for c in app_containers(client, app) if c.name not in serving]
    removed = [c.name for c in old[keep:]]
    for name in removed:
        remove_container(client, name)
    return removed


def recover(
    clients: Mapping[str, DockerClient], store: Store, target: Target, app: str, confirm: Callable[[str], bool]
) -> None:
    """After a deploy that died (its lease expired, or its process is provably gone): offer to clear its lock
    and what it left running on every host of the target (`clients`: engine to client, the proxy's first); only
    what that deploy started or restarted is touched, never a replica the proxy routes to."""
    client = clients[target.docker_host]
    held = lock.current(client, app)
    if held is None or not held.stale:
        return
    routed = serving_replicas(client, app)
    left = {engine: _left_running(each, app, held, routed) for engine, each in clients.items()}
    where = (lambda e: f" on {target.address(e)}") if len(clients) > 1 else (lambda e: "")
    named = [f"{c.name}{where(engine)}" for engine, found in left.items() for c in found]
    question = (
        f"A deploy of {app} to {target.name} by {held.describe()} did not finish. Clear its lock"
        + (f" and stop what it left running ({', '.join(named)})" if named else "")
        + f"? {', '.join(routed) or 'nothing'} keeps serving."
    )
    if not confirm(question):
        return
    for engine, found in left.items():
        for container in found:
            _undo_start(clients[engine], container, held)
    lock.break_lock(client, held)
    _mark_interrupted(store, app, target.name, held.release)


def _left_running(client: DockerClient, app: str, held: lock.Lock, routed: Collection[str]) -> list[Any]:
    """The app's running containers on one engine that the dead deploy `held` started (or restarted) and the
    proxy does not route to."""
    running = [c for c in app_containers(client, app) if c.name not in routed and c.status == "running"]
    if not held.release:
        return running
    return [c for c in running if c.labels.get("workbench.release") == held.release or c.name in held.containers]


def serving_replicas(client: DockerClient, app: str) -> list[str]:
    """Every container the proxy (on `client`'s engine) sends `app` to, on whichever host; none without a proxy."""
    from docker.errors import NotFound

    try:
        return [r.container for r in proxy.replicas_of(client.containers.get(proxy.PROXY), app)]
    except NotFound:
        return []


def _undo_start(client: DockerClient, container: Any, held: lock.Lock) -> None:
    """Remove the container the dead deploy made; only stop one it restarted (a kept one, for rollback)."""
    if held.release and container.labels.get("workbench.release") != held.release:
        container.stop(timeout=10)
    else:
        remove_container(client, container.name)


def _mark_interrupted(store: Store, app: str, target: str, release: str) -> None:
    with store.transaction() as db:
        db.execute(
            "UPDATE releases SET status = 'interrupted', finished_at = ?"
            " WHERE app = ? AND target = ? AND status = 'running' AND (? = '' OR id = ?)",
            (utcnow(), app, target, release, release),
        )


def live_container(client: DockerClient, app: str) -> str | None:
    """The container the target's proxy sends `app` to, or None."""
    from docker.errors import NotFound

    try:
        return proxy.routed_to(client.containers.get(proxy.PROXY), app)
    except NotFound:
        return None


@dataclass(frozen=True)
class AppStatus:
    """What one app looks like on a target right now."""

    app: str
    target: str
    container: str | None
    version: str | None
    state: str
    health: str
    started_at: str | None
    releases: list[Release]
    logs: str
    replicas: list[str] = field(default_factory=list)
    """Every container in the app's upstream (the first is `container`), on whichever host."""


def status(client: DockerClient, store: Store, target: Target, app: str, *, log_lines: int = 20) -> AppStatus:
    """The serving container of `app`, its health and uptime, recent releases and a log tail."""
    from docker.errors import NotFound

    serving = serving_replicas(client, app)
    name = serving[0] if serving else None
    recent = history(store, app, target.name, limit=10)
    try:
        container = client.containers.get(name) if name else None
    except NotFound:
        container = None
    if container is None:
        return AppStatus(app, target.name, name, None, "not deployed" if not name else "missing", "-", None, recent, "")
    state = container.attrs.get("State", {})
    return AppStatus(
        app=app,
        target=target.name,
        container=container.name,
        version=container.labels.get("workbench.version"),
        state=container.status,
        health=(state.get("Health") or {}).get("Status", "none"),
        started_at=state.get("StartedAt"),
        releases=recent,
        logs=container.logs(tail=log_lines).decode(errors="replace"),
        replicas=serving,
    )
