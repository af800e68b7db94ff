"""The Infra mode: choose an environment, validate, preview (what-if), deploy, read outputs, tear down.

Thin: `services.infra` does the work in threaded workers that post messages; handlers fill one table.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import DataTable, Label, Select, Static

from services.infra import arm
from services.infra.arm.deployment import DeployProgress, DeployResult
from services.infra.arm.whatif import WhatIfResult
from services.infra.findings import ValidationReport
from services.infra.inputs import ENVIRONMENTS, InfraInputs
from services.progress import CancelToken
from workbench.present.infra import CHANGE_SIGNS, what_if_summary
from workbench.settings import Settings
from workbench.tui.keymap import bindings_for
from workbench.tui.screens.base import ModeScreen
from workbench.tui.widgets import ConfirmScreen
from workbench.tui.widgets.table import Table
from workbench.tui.widgets.typed_confirm import TypedConfirmScreen
from workbench.usecases import infra as usecase

Row = tuple[str, ...]


def report_rows(report: ValidationReport) -> list[Row]:
    rows: list[Row] = [(f.severity, f.where, f.message) for f in report.findings]
    return rows + [("policy", v.where, f"[{v.policy}] {v.message}") for v in report.violations]


def report_summary(report: ValidationReport) -> str:
    verdict = "valid" if report.ok else f"{len(report.errors) + len(report.violations)} problem(s)"
    return f"{report.env}: {verdict}, {len(report.warnings)} warning(s)"


def what_if_rows(result: WhatIfResult) -> list[Row]:
    return [
        (CHANGE_SIGNS.get(c.change, "?"), c.change, c.resource_type, c.name, "; ".join(c.properties))
        for c in result.changes
    ]


def operation_rows(progress: DeployProgress) -> list[Row]:
    return [(op.state, op.resource_type, op.resource_name, str(op.error or "")) for op in progress.operations]


def output_rows(outputs: dict[str, Any]) -> list[Row]:
    return [(name, "-" if value in (None, "") else str(value)) for name, value in outputs.items()]


class InfraScreen(ModeScreen):
    """Validate, preview, deploy and tear down the environments in infra/."""

    MODE = "infra"
    AUTO_FOCUS = "#infra-table"

    CSS_PATH = "infra.tcss"
    """Read when a screen of this mode is first shown: off the app's start path."""
    BINDINGS: ClassVar[list[BindingType]] = bindings_for("InfraScreen")

    @dataclass
    class Validated(Message):
        report: ValidationReport

    @dataclass
    class Previewed(Message):
        result: WhatIfResult

    @dataclass
    class Progressed(Message):
        progress: DeployProgress

        def can_replace(self, message: Message) -> bool:
            # Each report carries every operation so far, so a newer one makes an older one redundant.
            return isinstance(message, InfraScreen.Progressed)

    @dataclass
    class Deployed(Message):
        result: DeployResult
        settings_file: Path
        written: list[str]

    @dataclass
    class OutputsRead(Message):
        env: str
        outputs: dict[str, Any]

    @dataclass
    class Deleted(Message):
        group: str

    def __init__(self, mode_id: str | None = None) -> None:
        super().__init__(mode_id)
        self.cancel_token: CancelToken | None = None

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="infra-bar"):
            yield Label("Environment ", id="infra-env-label")
            yield Select([(env, env) for env in ENVIRONMENTS], value="dev", allow_blank=False, id="infra-env")
            yield Static("", id="infra-target")
        yield Static("v validate · w what-if · u up · o outputs · D down", id="infra-summary")
        yield Table(id="infra-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        super().on_mount()
        self._show_target()

    @property
    def settings(self) -> Settings:
        return self.context.settings

    @property
    def env(self) -> str:
        return str(self.query_one("#infra-env", Select).value)

    @property
    def table(self) -> DataTable[str]:
        return self.query_one("#infra-table", DataTable)

    @on(Select.Changed, "#infra-env")
    def _show_target(self) -> None:
        target = self.context.services.azure_target(self.env)
        where = f"resource group {target.resource_group} · {target.location}"
        self.query_one("#infra-target", Static).update(f"  {where} · deployment {arm.deployment_name(self.env)}")

    def _fill(self, summary: str, columns: Row, rows: list[Row]) -> None:
        self.query_one("#infra-summary", Static).update(summary)
        table = self.table
        table.clear(columns=True)
        table.add_columns(*columns)
        for row in rows:
            table.add_row(*row)

    # ------------------------------------------------------------------ actions

    def action_validate(self) -> None:
        self.validate(self.env)

    def action_what_if(self) -> None:
        self._fill(f"{self.env}: asking Azure what would change…", ("",), [])
        self.preview(self.env)

    def action_up(self) -> None:
        env, group = self.env, self.context.services.azure_target(self.env).resource_group

        def answered(go: bool | None) -> None:
            if go:
                self.cancel_token = CancelToken()
                self.deploy(env, self.cancel_token)

        question = f"Deploy {env} to resource group {group}?\n\nRun what-if (w) first to see what changes."
        self.app.push_screen(ConfirmScreen("Deploy the environment", question, confirm_label="Deploy"), answered)

    def action_outputs(self) -> None:
        self.read_outputs(self.env)

    def action_down(self) -> None:
        env, group = self.env, self.context.services.azure_target(self.env).resource_group

        def answered(go: bool | None) -> None:
            if go:
                self.delete(env)

        body = (
            f"This deletes resource group {group} and every resource in it: VMs, disks, storage, registry."
            f"\n\nType {group} to confirm."
        )
        self.app.push_screen(TypedConfirmScreen(f"Delete {env}", body, group), answered)

    def action_cancel(self) -> None:
        if self.cancel_token is not None:
            self.cancel_token.cancel()
            self.notify("Cancelling the deployment…", title="Infra")

    # ------------------------------------------------------------------ workers

    def _checked_inputs(self, env: str) -> InfraInputs:
        def show(report: ValidationReport) -> None:
            if not report.ok:
                self.post_message(self.Validated(report))

        return usecase.checked_inputs(self.context.services, env, on_report=show)

    @work(thread=True, exclusive=True, exit_on_error=False, group="infra-check", description="Validate the templates")
    def validate(self, env: str) -> None:
        _inputs, report = usecase.validate(self.context.services, env)
        self.post_message(self.Validated(report))

    @work(thread=True, exclusive=True, exit_on_error=False, group="infra-check", description="Preview (what-if)")
    def preview(self, env: str) -> None:
        inputs = self._checked_inputs(env)
        session = arm.connect(self.context.services.azure_target(env))
        self.post_message(self.Previewed(arm.what_if(session, inputs)))

    @work(thread=True, exclusive=True, exit_on_error=False, group="infra-up", description="Deploy the environment")
    def deploy(self, env: str, cancel: CancelToken) -> None:
        inputs = self._checked_inputs(env)

        def report(progress: DeployProgress) -> None:
            self.post_message(self.Progressed(progress))

        done = usecase.provision(self.context.services, env, inputs, on_progress=report, cancel=cancel)
        self.post_message(self.Deployed(done.result, done.settings_file, done.written))

    @work(thread=True, exclusive=True, exit_on_error=False, group="infra-check", description="Read the outputs")
    def read_outputs(self, env: str) -> None:
        self.post_message(self.OutputsRead(env, arm.deployment_outputs(self.context.services.azure_target(env), env)))

    @work(thread=True, exclusive=True, exit_on_error=False, group="infra-down", description="Delete the environment")
    def delete(self, env: str) -> None:
        session = arm.connect(self.context.services.azure_target(env))
        arm.delete_group(session)
        self.post_message(self.Deleted(session.group))

    # ------------------------------------------------------------------ results

    @on(Validated)
    def _validated(self, event: Validated) -> None:
        self._fill(report_summary(event.report), ("Severity", "Where", "Problem"), report_rows(event.report))

    @on(Previewed)
    def _previewed(self, event: Previewed) -> None:
        result = event.result
        summary = f"{self.env}: {what_if_summary(result)}"
        if not result.group_exists:
            summary += f" (resource group {result.resource_group} does not exist yet)"
        self._fill(summary, ("", "Change", "Type", "Name", "Properties"), what_if_rows(result))

    @on(Progressed)
    def _progressed(self, event: Progressed) -> None:
        progress = event.progress
        self._fill(
            f"{progress.phase}: {progress.message}", ("State", "Type", "Name", "Error"), operation_rows(progress)
        )

    @on(Deployed)
    def _deployed(self, event: Deployed) -> None:
        self.cancel_token = None
        result = event.result
        self._fill(
            f"deployed {result.deployment} in {result.seconds:.0f} s", ("Output", "Value"), output_rows(result.outputs)
        )
        self.notify(f"Wrote {', '.join(event.written)} to {event.settings_file}", title="Infra: deployed")

    @on(OutputsRead)
    def _outputs(self, event: OutputsRead) -> None:
        self._fill(f"{event.env}: outputs of the last deployment", ("Output", "Value"), output_rows(event.outputs))

    @on(Deleted)
    def _deleted(self, event: Deleted) -> None:
        self._fill(f"deleted resource group {event.group}", ("",), [])
        self.notify(f"Deleted resource group {event.group}", title="Infra")
