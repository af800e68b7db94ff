"""Text and JSON renderings of fine-tune plans and jobs for the CLI (JSON shapes are stable)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from services.finetune.jobs import JobView
from services.finetune.plan import Plan
from services.units import human_bytes
from workbench.present.text import human_count, table


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def plan_text(plan: Plan) -> str:
    t = plan.tokens
    lines = [
        f"data: {plan.rows} rows ({plan.train_rows} train, {plan.eval_rows} eval), {plan.steps} optimiser steps",
        f"tokens per row: min {t.minimum}, mean {t.mean:.0f}, p95 {t.p95}, max {t.maximum};"
        f" {t.over_limit} rows longer than max_seq_length",
    ]
    lines += [f"  empty field: row {row}, column '{col}'" for row, col in plan.empty[:20]]
    if len(plan.empty) > 20:
        lines.append(f"  ... and {len(plan.empty) - 20} more empty fields")
    for i, ex in enumerate(plan.examples, start=1):
        lines += [f"--- example {i}", ex.prompt + ex.completion]
    lines += [
        "---",
        f"parameters: {human_count(plan.trainable_params)} trainable of {human_count(plan.total_params)}"
        f" ({plan.trainable_params / max(plan.total_params, 1):.2%})",
        f"device: {plan.device.name} ({human_bytes(plan.device.memory_bytes)}), weights at {plan.precision_bits} bits",
    ]
    for i, m in enumerate(plan.memory):
        mode = "with" if m.checkpointing else "without"
        mine = "  (this job)" if i == 0 else ""
        lines.append(f"memory {mode} gradient checkpointing: {human_bytes(m.bytes)} -> {m.verdict}{mine}")
    lines.append(f"disk for checkpoints and adapter: {human_bytes(plan.disk_bytes)}")
    lines += [f"suggestion: {tip}" for tip in plan.suggestions]
    if plan.refusal:
        lines.append(f"REFUSED: {plan.refusal}")
    return "\n".join(lines)


def plan_json(plan: Plan) -> str:
    data = asdict(plan)
    data["device"] = {"name": plan.device.name, "memory_bytes": plan.device.memory_bytes, "cuda": plan.device.cuda}
    data["fits"] = plan.fits
    return json.dumps(data, indent=2)


def job_dict(view: JobView) -> dict[str, Any]:
    return {
        "id": view.id,
        "folder": str(view.folder),
        "name": view.name,
        "base_model": view.base_model,
        "method": view.method,
        "state": view.status.state,
        "step": view.status.step,
        "max_steps": view.status.max_steps,
        "progress": round(view.status.progress, 4),
        "eta_s": view.eta_s,
        "last_loss": view.last_loss,
        "started_at": view.status.started_at,
        "duration_s": view.duration_s,
        "error": view.status.error,
    }


def jobs_json(views: list[JobView]) -> str:
    return json.dumps([job_dict(v) for v in views], indent=2)


def jobs_table(views: list[JobView]) -> str:
    if not views:
        return "no jobs yet: `workbench finetune init` then `workbench finetune run job.toml`"
    headers = ["JOB", "BASE MODEL", "METHOD", "STATUS", "PROGRESS", "ETA", "LOSS", "STARTED", "DURATION"]
    rows = [
        [
            v.id,
            v.base_model,
            v.method,
            v.status.state,
            f"{v.status.step}/{v.status.max_steps}",
            duration(v.eta_s),
            f"{v.last_loss:.4f}" if v.last_loss is not None else "-",
            (v.status.started_at or "-")[:19],
            duration(v.duration_s),
        ]
        for v in views
    ]
    return table(headers, rows)


def job_json(view: JobView, metrics: list[dict[str, Any]]) -> str:
    return json.dumps({**job_dict(view), "metrics": metrics}, indent=2)


def job_text(view: JobView, metrics: list[dict[str, Any]]) -> str:
    losses = [m for m in metrics if m.get("loss") is not None]
    evals = [m for m in metrics if m.get("eval_loss") is not None]
    lines = [
        f"{view.id}: {view.status.state} · {view.base_model} · {view.method}",
        f"step {view.status.step}/{view.status.max_steps} ({view.status.progress:.0%}) · ETA {duration(view.eta_s)}"
        f" · running {duration(view.duration_s)}",
    ]
    if losses:
        lines.append(f"loss {losses[0]['loss']:.4f} -> {losses[-1]['loss']:.4f} over {len(losses)} logged steps")
    if evals:
        lines.append(f"eval loss {evals[-1]['eval_loss']:.4f} at step {evals[-1]['step']}")
    speeds = [m["tokens_per_s"] for m in metrics if m.get("tokens_per_s")]
    if speeds:
        lines.append(f"throughput {speeds[-1]:.0f} tokens/s")
    if view.status.error:
        lines.append(f"error: {view.status.error}")
    adapter = view.folder / "adapter"
    if adapter.is_dir():
        lines.append(f"adapter: {adapter}")
    return "\n".join(lines)
