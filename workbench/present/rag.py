"""Plain-text and JSON renderings of the RAG services' results for `workbench rag ...`.

JSON shapes (stable; scripts parse them):
- `rag query --json`: list of `{id, source, chunk_index, distance, text, metadata}`, nearest first.
- `rag ls --json`: list of `{name, count, model, read_only}`.
- `rag ingest --json`: `{added_files, replaced_files, unchanged_files, removed_files, chunks_added,
  chunks_removed, seconds, skipped: [{path, reason}]}`.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from services.rag.types import CollectionInfo, Hit, IngestProgress, IngestReport
from workbench.present.text import table


def progress_line(p: IngestProgress, width: int = 100) -> str:
    """One carriage-return line: files, chunks and chunks/s, then the current file's tail."""
    head = f"files {p.files_done}/{p.files_total}  chunks {p.chunks_done}  {p.chunks_per_s:.1f} chunks/s  "
    room = max(width - len(head), 10)
    current = p.current if len(p.current) <= room else "..." + p.current[-(room - 3) :]
    return f"\r{head}{current}".ljust(width + 1)


def report_dict(report: IngestReport) -> dict[str, Any]:
    data = asdict(report)
    data["seconds"] = round(report.seconds, 3)
    data["skipped"] = [{"path": path, "reason": reason} for path, reason in report.skipped]
    return data


def report_json(report: IngestReport) -> str:
    return json.dumps(report_dict(report), indent=2)


def report_text(report: IngestReport, collection: str) -> str:
    lines = [
        f"{collection}: {report.added_files} added, {report.replaced_files} replaced, "
        f"{report.unchanged_files} unchanged, {report.removed_files} removed files",
        f"chunks: {report.chunks_added} embedded and stored, {report.chunks_removed} removed in {report.seconds:.1f} s",
    ]
    if report.skipped:
        lines.append(f"skipped {len(report.skipped)} files:")
        lines += [f"  {path}: {reason}" for path, reason in report.skipped]
    return "\n".join(lines)


def hit_dict(hit: Hit) -> dict[str, Any]:
    return {
        "id": hit.id,
        "source": hit.source,
        "chunk_index": hit.chunk_index,
        "distance": hit.distance,
        "text": hit.text,
        "metadata": hit.metadata,
    }


def hits_json(hits: list[Hit]) -> str:
    return json.dumps([hit_dict(h) for h in hits], indent=2)


HIDDEN_METADATA = {"source", "chunk_index", "chunk_count", "content_hash", "file_hash"}


def hits_text(hits: list[Hit], *, preview: int = 300) -> str:
    if not hits:
        return "no chunks found"
    blocks = []
    for rank, hit in enumerate(hits, 1):
        extra = {k: v for k, v in hit.metadata.items() if k not in HIDDEN_METADATA}
        shown = " ".join(hit.text.split())
        shown = shown if len(shown) <= preview else shown[: preview - 3] + "..."
        head = f"#{rank}  distance {hit.distance:.4f}  {hit.source} [chunk {hit.chunk_index}]"
        blocks.append("\n".join([head, *([f"    {json.dumps(extra)}"] if extra else []), f"    {shown}"]))
    return "\n\n".join(blocks)


def collection_dict(info: CollectionInfo) -> dict[str, Any]:
    return {"name": info.name, "count": info.count, "model": info.model_id, "read_only": info.read_only}


def collections_json(found: list[CollectionInfo]) -> str:
    return json.dumps([collection_dict(c) for c in found], indent=2)


def collections_table(found: list[CollectionInfo]) -> str:
    if not found:
        return "no collections (make one with `workbench rag ingest PATH --collection NAME`)"
    rows = [[c.name, str(c.count), c.model_id or "unknown", "read-only" if c.read_only else "workbench"] for c in found]
    return table(["COLLECTION", "CHUNKS", "EMBEDDING MODEL", "ACCESS"], rows)
