"""Models: plain-text and JSON renderings of hub search, details, fit and the local cache.

The JSON shapes are stable (documented in the README): scripts parse them.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from services.units import human_bytes
from workbench.present.text import human_count, table

if TYPE_CHECKING:  # `models search` renders summaries only: the other shapes' modules load when used
    from services.cache import CacheListing
    from services.fit import FitEstimate, Workload
    from services.hub.details import ModelDetails
    from services.hub.search import ModelSummary


def fit_for(details: ModelDetails, work: Workload) -> FitEstimate | None:
    from services.fit import estimate_on_host

    return estimate_on_host(details.config, details.params, work)


def _date(value: datetime | None) -> str:
    return value.date().isoformat() if value else "-"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def summaries_table(found: list[ModelSummary]) -> str:
    if not found:
        return "no models found"
    headers = ["MODEL", "TASK", "DOWNLOADS", "LIKES", "PARAMS", "LICENSE", "GATED", "UPDATED"]
    return table(headers, [list(summary_row(m)) for m in found])


def summary_row(m: ModelSummary) -> tuple[str, ...]:
    """One search result as the CLI table and the Hub tab show it."""
    return (
        m.id,
        m.task or "-",
        human_count(m.downloads),
        human_count(m.likes),
        human_count(m.params),
        m.license or "-",
        "yes" if m.gated else "no",
        _date(m.updated),
    )


def summary_dict(m: ModelSummary) -> dict[str, Any]:
    return {
        "id": m.id,
        "task": m.task,
        "library": m.library,
        "downloads": m.downloads,
        "likes": m.likes,
        "params": m.params,
        "license": m.license,
        "gated": m.gated,
        "updated": _iso(m.updated),
    }


def summaries_json(found: list[ModelSummary]) -> str:
    return json.dumps([summary_dict(m) for m in found], indent=2)


def fit_dict(fit: FitEstimate | None) -> dict[str, Any] | None:
    if fit is None:
        return None
    return {
        "device": fit.device.name,
        "device_memory_bytes": fit.device.memory_bytes,
        "seq_len": fit.workload.seq_len,
        "batch_size": fit.workload.batch_size,
        "lora_rank": fit.workload.lora_rank,
        "badge": fit.badge(),
        "scenarios": [{"name": r.scenario, "bytes": r.bytes, "verdict": r.verdict} for r in fit.rows],
    }


def details_json(d: ModelDetails, fit: FitEstimate | None) -> str:
    return json.dumps(
        {
            "id": d.id,
            "sha": d.sha,
            "task": d.task,
            "library": d.library,
            "license": d.license,
            "gated": d.gated,
            "access": d.access,
            "params": d.params,
            "download_bytes": d.download_bytes,
            "files": [{"path": f.path, "size": f.size, "selected": f.selected} for f in d.files],
            "fit": fit_dict(fit),
        },
        indent=2,
    )


def fit_lines(fit: FitEstimate | None) -> list[str]:
    if fit is None:
        return ["fit: unknown (no config.json with transformer dimensions)"]
    w = fit.workload
    head = f"fit on {fit.device.name} ({human_bytes(fit.device.memory_bytes)}), seq {w.seq_len}, batch {w.batch_size}:"
    rows = [f"  {r.scenario:<16} {human_bytes(r.bytes):>9}  {r.verdict}" for r in fit.rows]
    return [f"{head} {fit.badge().upper()}", *rows]


def details_text(d: ModelDetails, fit: FitEstimate | None) -> str:
    access = "open" if not d.gated else ("gated, token has access" if d.access else "gated, NO ACCESS")
    lines = [
        f"{d.id}@{d.sha[:12]}",
        f"task {d.task or '-'} · library {d.library or '-'} · licence {d.license or '-'} · {access}",
        f"parameters {human_count(d.params)} · download {human_bytes(d.download_bytes)}"
        f" ({sum(f.selected for f in d.files)} of {len(d.files)} files)",
        *fit_lines(fit),
        "files:",
        *(f"  {'+' if f.selected else '-'} {f.path:<50} {human_bytes(f.size):>9}" for f in d.files),
    ]
    return "\n".join(lines)


def cache_table(listing: CacheListing) -> str:
    if not listing.models:
        return f"no models in {listing.path}"
    headers = ["MODEL", "REVISIONS", "SIZE", "LAST ACCESSED", "LAST MODIFIED"]
    rows = [
        [
            m.repo_id,
            ", ".join(f"{r.commit[:8]}{'(' + ','.join(r.refs) + ')' if r.refs else ''}" for r in m.revisions),
            human_bytes(m.size),
            _date(m.last_accessed),
            _date(m.last_modified),
        ]
        for m in listing.models
    ]
    return table(headers, rows) + f"\n\ntotal {human_bytes(listing.size)} in {listing.path}"


def cache_json(listing: CacheListing) -> str:
    return json.dumps(
        [
            {
                "id": m.repo_id,
                "path": str(m.path),
                "size": m.size,
                "last_accessed": _iso(m.last_accessed),
                "last_modified": _iso(m.last_modified),
                "revisions": [
                    {
                        "commit": r.commit,
                        "refs": list(r.refs),
                        "size": r.size,
                        "files": r.files,
                        "last_modified": _iso(r.last_modified),
                    }
                    for r in m.revisions
                ],
            }
            for m in listing.models
        ],
        indent=2,
    )
