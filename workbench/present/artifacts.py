"""Text and JSON renderings of artifacts for the CLI and the Artifacts mode (JSON shapes are stable)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from services.artifacts.catalog import VersionInfo
from services.artifacts.evals import EvalLink
from services.artifacts.model import Manifest
from services.artifacts.sync import CopyReport
from services.units import human_bytes
from workbench.present.text import table

if TYPE_CHECKING:
    from workbench.usecases.artifacts import LabelMove, Removed


def version_dict(info: VersionInfo) -> dict[str, Any]:
    m = info.manifest
    return {
        "kind": m.kind,
        "name": m.name,
        "version": m.version,
        "size": m.size,
        "files": len(m.files),
        "labels": list(info.labels),
        "created_by": m.created_by,
        "created_at": m.created_at,
    }


def versions_json(infos: list[VersionInfo]) -> str:
    return json.dumps([version_dict(i) for i in infos], indent=2)


def versions_table(infos: list[VersionInfo], where: str) -> str:
    if not infos:
        return f"no artifacts in {where}"
    headers = ["NAME", "KIND", "VERSION", "SIZE", "FILES", "LABELS", "CREATED", "BY"]
    rows = [
        [
            i.manifest.name,
            i.manifest.kind,
            i.manifest.version,
            human_bytes(i.manifest.size),
            str(len(i.manifest.files)),
            ",".join(i.labels) or "-",
            i.manifest.created_at[:16].replace("T", " ") or "-",
            i.manifest.created_by or "-",
        ]
        for i in infos
    ]
    return table(headers, rows)


def lineage_rows(manifest: Manifest) -> list[tuple[str, str]]:
    """The lineage as (what, value) rows, most telling first: base model, dataset, job, git, metrics."""
    lineage = manifest.lineage
    rows: list[tuple[str, str]] = []
    base = lineage.get("base_model") or {}
    if base:
        rows.append(("base model", f"{base.get('id')} @ {str(base.get('revision') or '-')[:12]}"))
    if adapter := lineage.get("adapter"):
        rows.append(("adapter", f"{adapter.get('name')}@{adapter.get('version')}"))
    dataset = lineage.get("dataset") or {}
    if dataset:
        rows.append(("dataset", f"{dataset.get('path')} (sha256 {str(dataset.get('sha256') or '-')[:12]})"))
    if lineage.get("embedding_model"):
        rows.append(("embedding model", str(lineage["embedding_model"])))
        rows.append(
            (
                "chunks",
                f"{lineage.get('count')} (size {lineage.get('chunk_size')}, overlap {lineage.get('chunk_overlap')})",
            )
        )
    for source, digest in sorted((lineage.get("sources") or {}).items()):
        rows.append(("source", f"{source} (sha256 {digest[:12]})"))
    if lineage.get("job_id"):
        rows.append(("job", str(lineage["job_id"])))
    if lineage.get("git_revision"):
        rows.append(("git revision", str(lineage["git_revision"])[:12]))
    for key, value in sorted((lineage.get("metrics") or {}).items()):
        if key in ("eval_loss", "train_loss", "loss", "epoch"):
            rows.append((key, f"{value:.4g}" if isinstance(value, float) else str(value)))
    if lineage.get("source"):
        rows.append(("made from", str(lineage["source"])))
    return rows


def show_text(info: VersionInfo, evals: list[EvalLink], where: str) -> str:
    m = info.manifest
    lines = [
        f"{m.ref}  ({m.kind}, {where})",
        f"size        {human_bytes(m.size)} in {len(m.files)} files",
        f"labels      {', '.join(info.labels) or '-'}",
        f"created     {m.created_at} by {m.created_by}",
        "lineage:",
        *(f"  {what:<16}{value}" for what, value in lineage_rows(m)),
        "eval runs:" if evals else "eval runs:   none yet",
        *(f"  {e.run_id}  {e.passed} passed, {e.failed} failed  {e.suite}" for e in evals),
        "files:",
        *(f"  {f.sha256[:12]}  {human_bytes(f.size):>9}  {f.path}" for f in m.files),
    ]
    return "\n".join(lines)


def show_json(info: VersionInfo, evals: list[EvalLink]) -> str:
    data = version_dict(info) | {
        "lineage": info.manifest.lineage,
        "digest": info.manifest.digest(),
        "file_list": [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in info.manifest.files],
        "eval_runs": [asdict(e) for e in evals],
    }
    return json.dumps(data, indent=2)


def copy_text(report: CopyReport, verb: str, where: str) -> str:
    if report.already_there:
        return f"{report.ref}: already {verb} to {where}, identical ({report.files_skipped} files)"
    rate = report.bytes_copied / report.seconds if report.seconds else 0.0
    return (
        f"{report.ref}: {verb} {report.files_copied} files ({human_bytes(report.bytes_copied)}) in "
        f"{report.seconds:.1f} s ({human_bytes(rate)}/s); {report.files_skipped} already there -> {where}"
    )


def copy_json(report: CopyReport) -> str:
    return json.dumps(asdict(report), indent=2)


def label_text(move: LabelMove) -> str:
    if move.version is None:
        return f"{move.name}:{move.label} removed in {move.where}"
    moved = f" (was {move.previous})" if move.previous and move.previous != move.version else ""
    return f"{move.name}:{move.label} -> {move.version}{moved} in {move.where}"


def removed_text(removed: Removed) -> str:
    if removed.unpublished:
        return f"cleared the unpublished push of {removed.ref} in {removed.where}"
    return f"deleted {removed.ref} from {removed.where}"
