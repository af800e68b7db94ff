"""The Fine-tune mode: the jobs table, the selected job's live detail, and the job actions.

The screen only reads job folders (a thread worker polls them every second); the trainer runs in
its own process session, so closing the app never touches a running job. Cancel, resume and
merge act only when the user asks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.message import Message
from textual.timer import Timer
from textual.widgets import DataTable, Static
from textual.worker import Worker, WorkerState, get_current_worker

from services.finetune import jobs
from services.finetune.jobs import ACTIVE, JobStatus, JobView
from services.finetune.spec import JobSpec
from services.finetune.watch import JobDetail, JobWatch
from workbench.present.finetune import duration
from workbench.present.gpu import queue_line
from workbench.tui.keymap import bindings_for
from workbench.tui.messages import OpenAdapter
from workbench.tui.screens.base import ModeScreen
from workbench.tui.screens.finetune.detail import JobDetailPane, loss_text, progress_text, started_text
from workbench.tui.screens.finetune.form import NewJobScreen
from workbench.tui.widgets import ConfirmScreen, short_path
from workbench.tui.widgets.table import Table
from workbench.usecases import finetune

if TYPE_CHECKING:
    from workbench.wiring import Services

COLUMNS = (
    ("name", "Name"),
    ("model", "Base model"),
    ("method", "Method"),
    ("state", "Status"),
    ("progress", "Progress"),
    ("eta", "ETA"),
    ("loss", "Last loss"),
    ("started", "Started"),
    ("duration", "Duration"),
)
CANCEL_GRACE_S = 60.0
"""Seconds the trainer gets to save a checkpoint after SIGTERM before it is killed."""


def job_cells(view: JobView) -> tuple[str, ...]:
    s = view.status
    progress = f"{s.step}/{s.max_steps} {s.progress:>4.0%}" if s.max_steps else "-"
    return (
        view.name,
        view.base_model,
        view.method,
        s.state,
        progress,
        duration(view.eta_s),
        loss_text(view.last_loss),
        started_text(s.started_at),
        duration(view.duration_s),
    )


def summary_text(views: list[JobView], jobs_dir: Path) -> str:
    if not views:
        return f"no jobs in {short_path(jobs_dir)} · n configures one"
    active = sum(v.status.state in ACTIVE for v in views)
    return f"{len(views)} job{'s' if len(views) != 1 else ''} · {active} active · in {short_path(jobs_dir)}"


class FinetuneScreen(ModeScreen):
    """Jobs above, the highlighted job below; enter shows the job on the whole screen."""

    MODE = "finetune"
    AUTO_FOCUS = "#jobs-table"
    POLL_S = 1.0
    """How often the job folders are read."""

    CSS_PATH = "finetune.tcss"
    """Read when a screen of this mode is first shown: off the app's start path."""
    BINDINGS: ClassVar[list[BindingType]] = bindings_for("FinetuneScreen")

    @dataclass
    class Polled(Message):
        """The jobs and the selected job as of one poll; a newer poll replaces an unprocessed one."""

        jobs: list[JobView]
        detail: JobDetail | None
        queue: str = ""
        """The GPU queue of every user as one line ("" when it is empty)."""

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, FinetuneScreen.Polled)

    @dataclass
    class Launched(Message):
        folder: Path

    @dataclass
    class Cancelled(Message):
        job_id: str
        status: JobStatus

    @dataclass
    class Resumed(Message):
        job_id: str

    @dataclass
    class Merged(Message):
        job_id: str
        folder: Path

    def __init__(self, mode_id: str | None = None) -> None:
        super().__init__(mode_id)
        self.views: dict[str, JobView] = {}
        """The jobs of the latest poll by id, newest first."""
        self.selected_id: str | None = None
        self.busy: dict[str, str] = {}
        """Jobs with a cancel or merge in flight, and the worker group doing it."""
        self._watch: JobWatch | None = None
        self._poller: Worker[None] | None = None
        self._timer: Timer | None = None

    def compose_body(self) -> ComposeResult:
        yield Table(id="jobs-table", cursor_type="row", zebra_stripes=True)
        yield Static("reading jobs…", id="jobs-summary")
        yield JobDetailPane(id="job-detail")

    @property
    def table(self) -> DataTable[str]:
        return self.query_one("#jobs-table", DataTable)

    @property
    def pane(self) -> JobDetailPane:
        return self.query_one(JobDetailPane)

    @property
    def jobs_dir(self) -> Path:
        return jobs.jobs_root(self.context.settings.workspace.data_dir)

    @property
    def selected(self) -> JobView | None:
        return self.views.get(self.selected_id or "")

    def on_mount(self) -> None:
        super().on_mount()
        for key, label in COLUMNS:
            self.table.add_column(label, key=key)
        gpus = self.context.gpus
        self._watch = JobWatch(self.context.settings.workspace.data_dir, watch_gpus=gpus is None or bool(gpus))
        self._timer = self.set_interval(self.POLL_S, self.poll)
        self.call_after_refresh(self.poll)

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        if self._timer is not None:
            self._timer.resume()
            self.poll()

    def on_screen_suspend(self) -> None:
        if self._timer is not None:
            self._timer.pause()

    # ------------------------------------------------------------------ polling

    def poll(self, *, now: bool = False) -> None:
        """Read the job folders again, unless a read is still going (`now`: start a new one anyway)."""
        busy = self._poller is not None and not self._poller.is_finished
        if self._watch is None or (busy and not now):
            return
        self._poller = self.read_jobs(self._watch, self.selected_id)

    @work(thread=True, exclusive=True, exit_on_error=False, group="finetune-poll", description="Read the jobs")
    def read_jobs(self, watch: JobWatch, selected_id: str | None) -> None:
        views = watch.jobs()
        chosen = next((v for v in views if v.id == selected_id), views[0] if views else None)
        detail = watch.detail(chosen) if chosen is not None else None
        queue = queue_line(self.context.services.gpu_queue().view(), os.geteuid())
        if not get_current_worker().is_cancelled:
            self.post_message(self.Polled(views, detail, queue))

    @on(Polled)
    def _polled(self, event: Polled) -> None:
        self._show_jobs(event.jobs, event.queue)
        if event.detail is None:
            self.pane.show_empty()
        elif event.detail.view.id == self.selected_id:
            self.pane.show(event.detail)
        self.refresh_bindings()

    def _show_jobs(self, views: list[JobView], queue: str = "") -> None:
        table = self.table
        old_ids = list(self.views)
        self.views = {v.id: v for v in views}
        if list(self.views) != old_ids:
            table.clear()
            for view in views:
                table.add_row(*job_cells(view), key=view.id)
        else:
            for view in views:
                for (column, _), cell in zip(COLUMNS, job_cells(view), strict=True):
                    if table.get_cell(view.id, column) != cell:
                        table.update_cell(view.id, column, cell, update_width=True)
        if self.selected_id in self.views:
            table.move_cursor(row=table.get_row_index(self.selected_id), scroll=False)
        elif views:
            self.selected_id = views[0].id
        summary = summary_text(views, self.jobs_dir)
        self.query_one("#jobs-summary", Static).update(f"{summary}\n{queue}" if queue else summary)

    @on(DataTable.RowHighlighted, "#jobs-table")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        job_id = event.row_key.value
        if job_id is not None and job_id != self.selected_id:
            self.selected_id = job_id
            self.poll(now=True)

    def select_job(self, job_id: str) -> None:
        """Highlight `job_id` as soon as a poll lists it."""
        self.selected_id = job_id
        if job_id in self.views:
            self.table.move_cursor(row=self.table.get_row_index(job_id))
        self.poll(now=True)

    # ------------------------------------------------------------------ detail

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        job = self.selected
        state = job.status.state if job is not None else None
        if action == "open_detail":
            return job is not None and not self.has_class("-detail-open")
        if action == "close_detail":
            return self.has_class("-detail-open")
        if action == "cancel_job":
            return None if state not in ACTIVE or self._busy(job) else True
        if action == "resume_job":
            return None if state not in {"cancelled", "failed"} else True
        if action in {"merge_job", "open_in_playground"}:
            busy = action == "merge_job" and self._busy(job)
            return None if self.pane.adapter is None or busy else True
        return True

    def _busy(self, job: JobView | None) -> bool:
        return job is not None and job.id in self.busy

    def action_open_detail(self) -> None:
        """Show the highlighted job on the whole screen."""
        if self.selected is not None:
            self.add_class("-detail-open")
            self.refresh_bindings()

    def action_close_detail(self) -> None:
        self.remove_class("-detail-open")
        self.table.focus()
        self.refresh_bindings()

    # ------------------------------------------------------------------ new job

    def action_new_job(self) -> None:
        """Open the new-job form; its last page (the preflight) launches."""

        def chosen(spec: JobSpec | None) -> None:
            if spec is not None:
                self.launch_job(self.context.services, spec)

        self.app.push_screen(NewJobScreen(), chosen)

    @work(thread=True, exclusive=True, exit_on_error=False, group="finetune-launch", description="Launch the job")
    def launch_job(self, services: Services, spec: JobSpec) -> None:
        """Every launch check, then the launch (the same use case as `workbench finetune run`)."""
        from workbench.usecases.finetune import submit

        self.post_message(self.Launched(submit(services, spec).folder))

    @on(Launched)
    def _launched(self, event: Launched) -> None:
        self.notify(f"{event.folder.name} launched; it keeps running when the app closes.", title="Fine-tune")
        self.select_job(event.folder.name)

    # ------------------------------------------------------------------ cancel, resume, merge

    def action_cancel_job(self) -> None:
        """Stop the highlighted job after asking; it saves a checkpoint first, so it can resume."""
        job = self.selected
        if job is None or job.status.state not in ACTIVE or job.id in self.busy:
            return

        def answered(go: bool | None) -> None:
            if go:
                self.busy[job.id] = "finetune-cancel"
                self.refresh_bindings()
                self.cancel_job(job.folder)

        question = (
            f"Cancel {job.id} ({job.status.state}, {progress_text(job)})?\n\n"
            "The trainer saves a checkpoint and stops; r resumes it from there."
        )
        self.app.push_screen(ConfirmScreen("Cancel job", question, confirm_label="Stop job", danger=True), answered)

    @work(thread=True, exclusive=True, exit_on_error=False, group="finetune-cancel", description="Cancel the job")
    def cancel_job(self, folder: Path) -> None:
        self.post_message(
            self.Cancelled(folder.name, finetune.cancel(self.context.services, str(folder), grace_s=CANCEL_GRACE_S))
        )

    @on(Cancelled)
    def _cancelled(self, event: Cancelled) -> None:
        self.busy.pop(event.job_id, None)
        if event.status.state not in ACTIVE:
            self.notify(f"{event.job_id}: {event.status.state} at step {event.status.step}", title="Fine-tune")
        self.poll(now=True)

    def action_resume_job(self) -> None:
        """Continue the highlighted cancelled or failed job from its latest checkpoint."""
        job = self.selected
        if job is not None and job.status.state in {"cancelled", "failed"}:
            self.resume_job(job.folder)

    @work(thread=True, exclusive=True, exit_on_error=False, group="finetune-resume", description="Resume the job")
    def resume_job(self, folder: Path) -> None:
        finetune.resume(self.context.services, str(folder))
        self.post_message(self.Resumed(folder.name))

    @on(Resumed)
    def _resumed(self, event: Resumed) -> None:
        self.notify(f"{event.job_id} resumed from its latest checkpoint", title="Fine-tune")
        self.poll(now=True)

    def action_merge_job(self) -> None:
        """Fold the highlighted job's adapter into its base model, after asking."""
        job, adapter = self.selected, self.pane.adapter
        if job is None or adapter is None or job.id in self.busy:
            return

        def answered(go: bool | None) -> None:
            if go:
                self.busy[job.id] = "finetune-merge"
                self.refresh_bindings()
                self.notify(f"merging {job.id}…", title="Fine-tune")
                self.merge_job(job.folder)

        question = (
            f"Merge the adapter of {job.id} into {job.base_model}?\n\n"
            f"Writes a full copy of the base weights with the adapter folded in to\n{short_path(job.folder / 'merged')}"
        )
        self.app.push_screen(ConfirmScreen("Merge adapter", question, confirm_label="Merge"), answered)

    async def action_open_in_playground(self) -> None:
        """Compare the highlighted job's base model with base + its adapter in the Playground."""
        job, adapter = self.selected, self.pane.adapter
        if job is None or adapter is None:
            return
        await self.app.switch_mode("playground")
        self.app.screen.post_message(OpenAdapter(job.base_model, adapter))

    @work(thread=True, exclusive=True, exit_on_error=False, group="finetune-merge", description="Merge the adapter")
    def merge_job(self, folder: Path) -> None:
        merged = finetune.merge(self.context.services, str(folder))
        self.post_message(self.Merged(folder.name, merged.folder))

    @on(Merged)
    def _merged(self, event: Merged) -> None:
        self.busy.pop(event.job_id, None)
        self.notify(f"{event.job_id}: merged model saved to {short_path(event.folder)}", title="Fine-tune")
        self.poll(now=True)

    @on(Worker.StateChanged)
    def _action_failed(self, event: Worker.StateChanged) -> None:
        """A failed cancel or merge frees its job for another try (the app shows the error)."""
        group = event.worker.group
        if event.state is WorkerState.ERROR and group in {"finetune-cancel", "finetune-merge"}:
            self.busy = {job: g for job, g in self.busy.items() if g != group}
            self.refresh_bindings()
