"""The Deploy mode: each target's apps with version and health, one key to deploy (the pipeline shown
step by step), one key to roll back, the release history and a live log tail.

Thin: `services.deploy` does the work in threaded workers that post messages; handlers own the tables.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.coordinate import Coordinate
from textual.message import Message
from textual.widgets import DataTable, Label, Log, Select, Static
from textual.worker import Worker

from services.deploy.pipeline import STEPS, StepEvent
from services.errors import WorkbenchError
from workbench.present.deploy import hosts_text, release_line, uptime
from workbench.tui.keymap import bindings_for
from workbench.tui.screens.base import ModeScreen
from workbench.tui.widgets import ConfirmScreen
from workbench.tui.widgets.prompt import PromptScreen
from workbench.tui.widgets.table import Table
from workbench.tui.widgets.typed_confirm import TypedConfirmScreen
from workbench.usecases import deploy as usecase

if TYPE_CHECKING:
    from services.deploy.releases import AppStatus, Release

STATUS_EVERY_S = 5.0
MARKS = {"running": "…", "done": "✓", "failed": "✗", "skipped": "–"}


class DeployScreen(ModeScreen):
    """Apps per target; deploy (d), roll back (b); the pipeline, releases and logs of the highlighted app."""

    MODE = "deploy"
    AUTO_FOCUS = "#deploy-apps"

    CSS_PATH = "deploy.tcss"
    """Read when a screen of this mode is first shown: off the app's start path."""
    BINDINGS: ClassVar[list[BindingType]] = bindings_for("DeployScreen")

    @dataclass
    class StatusRead(Message):
        target: str
        found: list[AppStatus]

    @dataclass
    class Stepped(Message):
        event: StepEvent

    @dataclass
    class Finished(Message):
        verb: str
        release: Release

    def __init__(self) -> None:
        super().__init__()
        self.found: list[AppStatus] = []
        self.busy = False

    def compose_body(self) -> ComposeResult:
        names = self.context.services.configured_targets()
        with Horizontal(id="deploy-bar"):
            yield Label("Target ", id="deploy-target-label")
            options = [(n, n) for n in names]
            if names:
                yield Select(options, value=names[0], allow_blank=False, id="deploy-target")
            else:
                yield Select(options, id="deploy-target")
            yield Static("" if names else "  no targets: add [targets.staging] to workbench.toml", id="deploy-where")
        with Horizontal(id="deploy-main"):
            yield Table(id="deploy-apps", cursor_type="row", zebra_stripes=True)
            with Vertical(id="deploy-side"):
                yield Table(id="deploy-steps", cursor_type="none")
                yield Static("", id="deploy-releases", markup=False)
                yield Log(id="deploy-log", max_lines=200)
        yield Static("", id="deploy-status", markup=False)

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#deploy-apps", DataTable).add_columns("App", "Version", "State", "Health", "Up", "Container")
        steps = self.query_one("#deploy-steps", DataTable)
        steps.add_columns("", "Step", "Time", "Detail")
        self.set_interval(STATUS_EVERY_S, self.action_refresh)
        self.action_refresh()

    @property
    def target_name(self) -> str | None:
        value = self.query_one("#deploy-target", Select).value
        return value if isinstance(value, str) else None

    @property
    def selected(self) -> AppStatus | None:
        table = self.query_one("#deploy-apps", DataTable)
        return self.found[table.cursor_row] if self.found and table.cursor_row < len(self.found) else None

    # ------------------------------------------------------------------ status

    @on(Select.Changed, "#deploy-target")
    def action_refresh(self) -> None:
        if self.target_name and not self.busy:
            self.read_status(self.target_name)

    @work(thread=True, exclusive=True, exit_on_error=False, group="deploy-status", description="Read the target")
    def read_status(self, name: str) -> None:
        found = usecase.status(self.context.services, [name], log_lines=20)
        self.post_message(self.StatusRead(name, found))

    @on(StatusRead)
    def _status_read(self, event: StatusRead) -> None:
        if event.target != self.target_name:
            return
        table = self.query_one("#deploy-apps", DataTable)
        row = table.cursor_row
        self.found = event.found
        table.clear()
        now = self.context.services.clock()
        for s in event.found:
            table.add_row(s.app, s.version or "-", s.state, s.health, uptime(s.started_at, now), s.container or "-")
        if event.found:
            table.move_cursor(row=min(row, len(event.found) - 1))
        self._show_app()

    @on(DataTable.RowHighlighted, "#deploy-apps")
    def _show_app(self) -> None:
        app = self.selected
        lines = [release_line(r) for r in app.releases[:8]] if app else []
        self.query_one("#deploy-releases", Static).update("Releases\n" + ("\n".join(lines) or "none yet"))
        log = self.query_one("#deploy-log", Log)
        log.clear()
        if app and app.logs:
            log.write(app.logs)

    # ------------------------------------------------------------------ deploy, rollback

    def action_deploy(self) -> None:
        app, name = self.selected, self.target_name
        if app is None or name is None or self.busy:
            return
        prompt = PromptScreen(
            f"Deploy {app.app} to {name}", "Version (image tag) to deploy:", value=self._version(app.app)
        )
        self.app.push_screen(prompt, lambda version: self._confirm_deploy(app.app, name, version))

    def _version(self, app: str) -> str:
        try:
            return usecase.app_version(self.context.services, app)
        except WorkbenchError:  # not an app under images.apps_dir: the user types the version
            return ""

    def _confirm_deploy(self, app: str, name: str, version: str | None) -> None:
        if not version:
            return
        target = self.context.services.deploy_target(name)
        body = f"Deploy {app} {version} to {name} ({hosts_text(target)})?"
        if target.environment == "prod":
            screen: Any = TypedConfirmScreen(
                f"Deploy to {name} (prod)", f"{body}\n\nType {app} to confirm.", app, confirm_label="Deploy"
            )
        else:
            screen = ConfirmScreen(f"Deploy {app}", body, confirm_label="Deploy")
        self.app.push_screen(screen, lambda go: self._start("deploy", app, name, version) if go else None)

    def action_rollback(self) -> None:
        app, name = self.selected, self.target_name
        if app is None or name is None or self.busy:
            return
        body = f"Serve the previous release of {app.app} on {name} again?\nNow serving: {app.version or 'nothing'}."
        screen = ConfirmScreen(f"Roll back {app.app}", body, confirm_label="Roll back", danger=True)
        self.app.push_screen(screen, lambda go: self._start("rollback", app.app, name, None) if go else None)

    def _start(self, verb: str, app: str, name: str, version: str | None) -> None:
        self.busy = True
        steps = self.query_one("#deploy-steps", DataTable)
        steps.clear()
        for step in STEPS:
            steps.add_row("", step, "", "", key=step)
        self._set_status(f"{verb} {app} {version or ''} on {name}…")
        self.run_pipeline(verb, app, name, version)

    @work(thread=True, exclusive=True, exit_on_error=False, group="deploy-run", description="Deploy")
    def run_pipeline(self, verb: str, app: str, name: str, version: str | None) -> None:
        services = self.context.services

        def stepped(event: StepEvent) -> None:
            self.post_message(self.Stepped(event))

        if verb == "rollback":
            release = usecase.rollback(services, app, name, on_step=stepped)
        else:
            request = usecase.deploy_request(services, app, name, version=version, gate=True)
            release = usecase.deploy(services, request, on_step=stepped, confirm=self._ask)
        self.post_message(self.Finished(verb, release))

    def _ask(self, question: str) -> bool:
        """Ask from the worker thread and wait for the answer (recovering after a deploy that died)."""
        answered, box = threading.Event(), [False]

        def done(value: bool | None) -> None:
            box[0] = bool(value)
            answered.set()

        screen = ConfirmScreen("Recover the target", question, confirm_label="Clean up", danger=True)
        self.app.call_from_thread(self.app.push_screen, screen, done)
        answered.wait()
        return box[0]

    @on(Stepped)
    def _stepped(self, event: Stepped) -> None:
        e = event.event
        steps = self.query_one("#deploy-steps", DataTable)
        if e.step not in steps.rows:
            return
        seconds = f"{e.seconds:.1f} s" if e.state != "running" else ""
        for column, value in enumerate((MARKS.get(e.state, "?"), e.step, seconds, e.detail)):
            steps.update_cell_at(Coordinate(steps.get_row_index(e.step), column), value)

    @on(Finished)
    def _finished(self, event: Finished) -> None:
        r = event.release
        self._set_status(f"{r.app} {r.version} is live on {r.target} (release {r.id}, {event.verb})")

    @on(Worker.StateChanged)
    def _pipeline_finished(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group == "deploy-run" and worker.is_finished:
            self.busy = False
            if worker.error is not None:
                self._set_status(
                    f"stopped: {getattr(worker.error, 'message', worker.error)} — the old version keeps serving"
                )
                logs = getattr(worker.error, "logs", "")
                if logs:
                    self.query_one("#deploy-log", Log).write("\n--- the new container's last lines\n" + logs)
            self.action_refresh()

    def _set_status(self, text: str) -> None:
        self.query_one("#deploy-status", Static).update(text)
