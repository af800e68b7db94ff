"""The preflight page's text: the plan of a job (data, tokens, parameters, memory, disk) and its verdict."""

from __future__ import annotations

from textual.content import Content

from services.finetune.plan import Plan
from services.finetune.spec import JobSpec
from services.units import human_bytes
from workbench.present.text import human_count
from workbench.tui.widgets import short_path

VERDICT_STYLE = {"fits": "$success", "tight": "$warning", "does not fit": "$error", "needs CUDA": "$text-muted"}


def _line(label: str, body: Content | str) -> Content:
    return Content.assemble((f"{label:<10}", "bold"), body)


def plan_text(spec: JobSpec, plan: Plan) -> Content:
    """The preflight report: data, tokens, parameters, device, memory with verdicts, disk, steps."""
    t = plan.tokens
    share = plan.trainable_params / max(plan.total_params, 1)
    lora = spec.lora
    lines = [
        Content.from_markup(
            "[b]Preflight of $name[/b]: $model · $task · $method r$r alpha $alpha",
            name=spec.name,
            model=spec.model.id,
            task=spec.task,
            method=lora.method,
            r=lora.r,
            alpha=lora.alpha,
        ),
        Content(""),
        _line(
            "data",
            f"{plan.rows} rows ({plan.train_rows} train, {plan.eval_rows} eval) in {short_path(spec.dataset.path)}",
        ),
        _line("steps", f"{plan.steps} optimiser steps"),
        _line(
            "tokens",
            f"per row min {t.minimum} · mean {t.mean:.0f} · p95 {t.p95} · max {t.maximum}"
            f" · {t.over_limit} rows longer than {spec.training.max_seq_length}",
        ),
        _line("empty", ", ".join(f"row {r} '{c}'" for r, c in plan.empty[:6]) if plan.empty else "no empty fields"),
        _line(
            "params",
            f"{human_count(plan.trainable_params)} trainable of {human_count(plan.total_params)} ({share:.2%})",
        ),
        _line(
            "device",
            f"{plan.device.name} ({human_bytes(plan.device.memory_bytes)}) · weights at {plan.precision_bits} bits",
        ),
    ]
    for i, m in enumerate(plan.memory):
        mode = "with" if m.checkpointing else "without"
        mine = "  (this job)" if i == 0 else ""
        body = Content.assemble(
            f"{human_bytes(m.bytes):>9} {mode} gradient checkpointing  ",
            (m.verdict, f"bold {VERDICT_STYLE.get(m.verdict, '')}"),
            mine,
        )
        lines.append(_line("memory" if i == 0 else "", body))
    lines.append(_line("disk", f"{human_bytes(plan.disk_bytes)} for checkpoints and the adapter"))
    return Content("\n").join(lines)


def verdict_text(plan: Plan) -> Content:
    """The go/no-go line and what to change."""
    lines: list[Content] = []
    if plan.refusal:
        lines.append(Content.from_markup("[bold $error]REFUSED[/] $why", why=plan.refusal))
    elif plan.fits:
        lines.append(Content.from_markup("[bold $success]Ready to launch[/]: l or the Launch button starts it."))
    else:
        lines.append(Content.from_markup("[bold $error]Does not fit[/] on $device.", device=plan.device.name))
    lines += [Content.from_markup("  [$warning]suggestion[/] $tip", tip=tip) for tip in plan.suggestions]
    if not plan.fits:
        lines.append(Content.styled("Press escape to change the job.", "$text-muted"))
    return Content("\n").join(lines)


def examples_text(plan: Plan) -> Content:
    parts: list[Content] = []
    for i, ex in enumerate(plan.examples[:2], start=1):
        parts.append(Content.styled(f"example {i}", "bold"))
        parts.append(Content.assemble((ex.prompt, "$text-muted"), (ex.completion, "$success")))
    return Content("\n").join(parts)
