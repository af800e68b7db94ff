"""Text and JSON renderings of deploy status for the CLI and the Deploy mode (JSON shapes are stable)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from services.deploy.releases import AppStatus, Release

if TYPE_CHECKING:
    from services.deploy.target import Target


def hosts_text(target: Target) -> str:
    """Every engine of `target`, the proxy's first (marked when there are several)."""
    first, *others = target.engines
    return ", ".join([f"{first} (proxy)", *others]) if others else first


def uptime(started_at: str | None, now: datetime) -> str:
    """`3h02m` from an engine timestamp to `now`, or `-`."""
    if not started_at or started_at.startswith("0001"):
        return "-"
    started = datetime.fromisoformat(started_at[:19]).replace(tzinfo=UTC)  # the engine reports UTC
    minutes = int((now - started).total_seconds() // 60)
    hours, minutes = divmod(max(minutes, 0), 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m"


def release_line(r: Release) -> str:
    duration = r.bom.get("duration_s")
    took = f" in {duration:.1f} s" if isinstance(duration, int | float) else ""
    rolled = f" (rollback of {r.bom['rollback_of']})" if r.bom.get("rollback_of") else ""
    error = f": {r.bom['error']}" if r.bom.get("error") else ""
    when = r.created_at[:19].replace("T", " ")
    return f"{when}  {r.id}  {r.version:<24} {r.status:<11} by {r.created_by}{took}{rolled}{error}"


def status_text(found: list[AppStatus], now: datetime) -> str:
    if not found:
        return "no targets with apps are configured"
    lines: list[str] = []
    for s in found:
        serving = f"{s.version} ({s.container})" if s.version else s.state
        if len(s.replicas) > 1:
            serving += f", {len(s.replicas)} replicas"
        lines += [
            f"{s.target} / {s.app}: {serving}  state {s.state}, health {s.health}, up {uptime(s.started_at, now)}"
        ]
        lines += [f"  {release_line(r)}" for r in s.releases[:5]]
        lines += [f"  | {line}" for line in s.logs.splitlines()[-5:]]
    return "\n".join(lines)


def status_dicts(found: list[AppStatus]) -> list[dict[str, Any]]:
    return [
        {
            "target": s.target,
            "app": s.app,
            "version": s.version,
            "container": s.container,
            "state": s.state,
            "health": s.health,
            "started_at": s.started_at,
            "releases": [release_dict(r) for r in s.releases],
            "logs": s.logs,
            "replicas": s.replicas,
        }
        for s in found
    ]


def release_dict(r: Release) -> dict[str, Any]:
    keys = ("digest", "artifacts", "suite", "duration_s", "serving_after_s", "rollback_of", "error")
    return {
        "id": r.id,
        "version": r.version,
        "status": r.status,
        "created_by": r.created_by,
        "created_at": r.created_at,
        **{key: r.bom.get(key) for key in keys},
    }
