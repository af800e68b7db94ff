"""Releases: the record of every deploy (store table `releases`, and labels on the target's containers),
retention of old versions, recovery after an interrupted deploy, rollback and status.

A release is `running` while its deploy runs, then `live` (serving), `retained` (replaced, its
container kept stopped for rollback), `failed`, or `interrupted` (its deploy died and was cleaned up).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Collection
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


def recover(client: DockerClient, store: Store, target: Target, app: str, confirm: Callable[[str], bool]) -> None:
    """After a deploy that died (its lease expired, or its process is provably gone): offer to clear its lock
    and what it left running; only what that deploy started is touched."""
    held = lock.current(client, app)
    if held is None or not held.stale:
        return
    live = live_container(client, app)
    started = [c for c in app_containers(client, app) if c.name != live and c.status == "running"]
    if held.release:
        started = [c for c in started if c.labels.get("workbench.release") == held.release or c.name == held.container]
    question = (
        f"A deploy of {app} to {target.name} by {held.describe()} did not finish. Clear its lock"
        + (f" and stop what it left running ({', '.join(c.name for c in started)})" if started else "")
        + f"? {live or 'nothing'} keeps serving."
    )
    if not confirm(question):
        return
    for container in started:
        _undo_start(client, container, held)
    lock.break_lock(client, held)
    _mark_interrupted(store, app, target.name, held.release)


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

    try:
        serving = [r.container for r in proxy.replicas_of(client.containers.get(proxy.PROXY), app)]
    except NotFound:
        serving = []
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
