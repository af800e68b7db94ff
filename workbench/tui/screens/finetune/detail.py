"""The detail pane of the Fine-tune mode: progress, throughput, loss curve, adapter and log tail of one job."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Label, Log, ProgressBar, Static

from services.finetune.jobs import JobView, State
from services.finetune.watch import JobDetail
from services.units import human_bytes
from workbench.present.finetune import duration
from workbench.tui.widgets import short_path
from workbench.tui.widgets.loss_curve import LossCurve

STATE_STYLE: dict[State, str] = {
    "queued": "$text-muted",
    "running": "$accent",
    "completed": "$success",
    "failed": "$error",
    "cancelled": "$warning",
}
NO_JOBS = (
    "No fine-tune jobs yet.\n\nPress n to configure one: the form starts from defaults for the model you pick,\n"
    "and its last page checks data, memory and disk before anything launches."
)


def started_text(stamp: str | None) -> str:
    """An ISO timestamp as local "YYYY-MM-DD HH:MM"."""
    if stamp is None:
        return "-"
    return datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M")


def loss_text(loss: float | None) -> str:
    return f"{loss:.4f}" if loss is not None else "-"


def progress_text(view: JobView) -> str:
    s = view.status
    if not s.max_steps:
        return f"step {s.step}" if s.step else "waiting to start"
    eta = f" · ETA {duration(view.eta_s)}" if view.eta_s is not None else ""
    return f"step {s.step}/{s.max_steps} · {s.progress:.0%}{eta}"


def head_text(view: JobView) -> Content:
    state = view.status.state
    return Content.from_markup(
        "[b]$name[/b]  [$style reverse] $state [/]\n[$text-muted]$id[/]\n$model · $method",
        name=view.name,
        style=STATE_STYLE[state],
        state=state,
        id=view.id,
        model=view.base_model,
        method=view.method,
    )


def times_text(view: JobView) -> str:
    return f"started {started_text(view.status.started_at)} · ran {duration(view.duration_s)}"


def stats_text(detail: JobDetail) -> str:
    """Throughput, learning rate, epoch and GPU figures of the latest logged step."""
    row: dict[str, Any] = detail.latest
    parts = []
    if row.get("tokens_per_s"):
        parts.append(f"{row['tokens_per_s']:,.0f} tokens/s")
    if row.get("learning_rate") is not None:
        parts.append(f"lr {row['learning_rate']:.2e}")
    if row.get("epoch") is not None:
        parts.append(f"epoch {row['epoch']:.2f}")
    lines = [" · ".join(parts)] if parts else []
    if row.get("gpu_memory_bytes"):
        lines.append(f"trainer GPU memory peak {human_bytes(row['gpu_memory_bytes'])}")
    lines += [
        f"GPU {g.index}: {g.utilisation_pct}% busy · {human_bytes(g.used_bytes)} of {human_bytes(g.total_bytes)} used"
        for g in detail.gpus
    ]
    return "\n".join(lines)


def curve_title(detail: JobDetail) -> str:
    train, evals = detail.train_loss, detail.eval_loss
    parts = [f"train loss {train[-1][1]:.4f}" if train else "train loss -"]
    if evals:
        parts.append(f"eval loss {evals[-1][1]:.4f} (step {evals[-1][0]})")
    return "  ·  ".join(parts)


def adapter_text(detail: JobDetail) -> Content:
    """Where the finished adapter is and what its manifest records."""
    if detail.adapter is None:
        return Content.styled("adapter: written to the job folder when the job completes", "$text-muted")
    m = detail.manifest or {}
    base = m.get("base_model") or {}
    data = m.get("dataset") or {}
    metrics = m.get("metrics") or {}
    lines = [
        Content.from_markup("[b]adapter[/b] $path", path=short_path(detail.adapter)),
        Content(f"  base     {base.get('id', '-')} @ {str(base.get('revision') or '-')[:12]}"),
        Content(f"  dataset  {short_path(str(data.get('path', '-')))}"),
        Content(f"           sha256 {str(data.get('sha256') or '-')[:16]}"),
        Content(f"  git      {str(m.get('git_revision') or '-')[:12]}"),
        Content(
            f"  final    train loss {loss_text(metrics.get('train_loss'))}"
            f" · eval loss {loss_text(metrics.get('eval_loss'))}"
        ),
    ]
    if detail.merged is not None:
        lines.append(Content.from_markup("[b]merged[/b]  $path", path=short_path(detail.merged)))
    return Content("\n").join(lines)


class JobDetailPane(Vertical):
    """One job as of the latest poll; `show` updates it in place."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.detail: JobDetail | None = None
        """What is shown; None before the first job is selected."""

    def compose(self) -> ComposeResult:
        yield Static(NO_JOBS, id="job-empty")
        with Horizontal(id="job-top"):
            with VerticalScroll(id="job-facts"):
                yield Static("", id="job-head")
                with Horizontal(id="job-progress"):
                    yield ProgressBar(total=1.0, show_eta=False, show_percentage=False, id="job-bar")
                    yield Label("", id="job-progress-text")
                yield Static("", id="job-times")
                yield Static("", id="job-stats")
                yield Static("", id="job-error")
                yield Static("", id="job-adapter")
            with Vertical(id="job-plot"):
                yield Label("", id="job-curve-title")
                yield LossCurve(id="job-curve")
        yield Log(id="job-log", max_lines=1000)

    def show_empty(self) -> None:
        self.detail = None
        self.add_class("-empty")

    def show(self, detail: JobDetail) -> None:
        """Update every part from `detail` (the log only when it changed)."""
        previous, self.detail = self.detail, detail
        self.remove_class("-empty")
        view = detail.view
        self.query_one("#job-head", Static).update(head_text(view))
        bar = self.query_one(ProgressBar)
        bar.update(total=max(view.status.max_steps, 1), progress=view.status.step)
        self.query_one("#job-progress-text", Label).update(progress_text(view))
        self.query_one("#job-times", Static).update(times_text(view))
        self.query_one("#job-stats", Static).update(stats_text(detail))
        error = self.query_one("#job-error", Static)
        error.update(Content.styled(f"error: {view.status.error}", "$error") if view.status.error else "")
        error.display = bool(view.status.error)
        self.query_one("#job-adapter", Static).update(adapter_text(detail))
        self.query_one("#job-curve-title", Label).update(curve_title(detail))
        self.query_one(LossCurve).show(detail.train_loss, detail.eval_loss)
        same_job = previous is not None and previous.view.id == view.id
        if not same_job or previous is None or previous.log_tail != detail.log_tail:
            self._show_log(detail.log_tail)

    def _show_log(self, lines: list[str]) -> None:
        log = self.query_one(Log)
        log.clear()
        log.write_lines(lines)
        self.call_after_refresh(log.scroll_end, animate=False)

    @property
    def adapter(self) -> Path | None:
        return self.detail.adapter if self.detail is not None else None
