"""Eval runs attached to the artifact versions they tested.

A stored suite run records each variant's inputs: the adapter's weights hash and the collection's
name and size. Those are matched against the workspace's versions when the run is saved.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from services.store import Store


@dataclass(frozen=True)
class EvalLink:
    """A suite run that tested a version."""

    run_id: str
    suite: str
    started: str
    passed: int
    failed: int


def attach_run(store: Store, run_id: str, inputs: dict[str, Any]) -> list[tuple[str, str]]:
    """Link run `run_id` to the versions its variants used; returns the (name, version) pairs."""
    versions = _indexed(store)
    tested = set()
    for variant in (inputs.get("variants") or {}).values():
        tested.update(_adapter_versions(manifests=versions, used=variant.get("adapter")))
        tested.update(_collection_versions(manifests=versions, used=variant.get("collection")))
    with store.transaction() as db:
        db.executemany(
            "INSERT OR IGNORE INTO artifact_evals (name, version, run_id) VALUES (?, ?, ?)",
            [(name, version, run_id) for name, version in sorted(tested)],
        )
    return sorted(tested)


def evals_for(store: Store, name: str, version: str) -> list[EvalLink]:
    """Runs that tested `name@version`, newest first."""
    with store.connect() as db:
        rows = db.execute(
            "SELECT r.id, r.suite, r.started, r.passed, r.failed FROM artifact_evals a"
            " JOIN eval_runs r ON r.id = a.run_id WHERE a.name = ? AND a.version = ? ORDER BY r.started DESC",
            (name, version),
        ).fetchall()
    return [EvalLink(*row) for row in rows]


def _indexed(store: Store) -> list[dict[str, Any]]:
    with store.connect() as db:
        rows = db.execute("SELECT manifest FROM artifacts WHERE kind IN ('adapter', 'collection')").fetchall()
    return [json.loads(row[0]) for row in rows]


def _adapter_versions(*, manifests: list[dict[str, Any]], used: Any) -> list[tuple[str, str]]:
    """Adapter versions whose weights have the hash the run recorded."""
    if not isinstance(used, dict) or not used.get("sha256"):
        return []
    short = str(used["sha256"])
    return [
        (m["name"], m["version"])
        for m in manifests
        if m["kind"] == "adapter"
        and any(f["path"].startswith("adapter_model.") and f["sha256"].startswith(short) for f in m["files"])
    ]


def _collection_versions(*, manifests: list[dict[str, Any]], used: Any) -> list[tuple[str, str]]:
    """The newest version of the collection the run queried, if it has the size the run saw."""
    if not isinstance(used, dict) or not used.get("name"):
        return []
    same = [
        m
        for m in manifests
        if m["kind"] == "collection" and m["name"] == used["name"] and m["lineage"].get("count") == used.get("count")
    ]
    newest = max(same, key=lambda m: m.get("created_at", ""), default=None)
    return [(newest["name"], newest["version"])] if newest else []
