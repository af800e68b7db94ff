"""The new-job form: every field of a job, defaults from the chosen model, and the preflight page.

The form page builds a `JobSpec` (validated by the same model as job files); the preflight page
shows `make_plan` for it, and only that page launches: the screen dismisses with the spec when the
plan fits, and never when it refuses or the job does not fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal, get_args

from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.events import DescendantFocus
from textual.message import Message
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Checkbox, ContentSwitcher, Input, Label, Select, Static, TextArea
from textual.worker import Worker, get_current_worker

from services.demo import DEMO_MODEL
from services.errors import ConfigError, WorkbenchError
from services.finetune.plan import Plan, make_plan
from services.finetune.spec import JobSpec, Task, parse_spec
from services.gpu import Gpu
from workbench.tui.context import context_of
from workbench.tui.keymap import bindings_for
from workbench.tui.screens.base import forward_failure

if TYPE_CHECKING:
    from workbench.wiring import Services

from workbench.tui.screens.finetune.fields import (
    FIELD_BY_ID,
    FIELDS,
    LEFT,
    RIGHT,
    Field,
    Shown,
    description,
    field_of,
    form_data,
    shown,
    spec_value,
)
from workbench.tui.screens.finetune.plan_text import examples_text, plan_text, verdict_text
from workbench.tui.steps import error_text, keymap_of
from workbench.tui.widgets import KeyFooter


class FormColumn(VerticalScroll, can_focus=False):
    """A column of fields: Tab goes from field to field, never to the column itself."""


class NewJobScreen(ModalScreen[JobSpec | None]):
    """Configure a job, preflight it, launch it: dismisses with the spec to launch, or None."""

    CSS_PATH = "finetune.tcss"
    """Read when a screen of this mode is first shown: off the app's start path."""
    BINDINGS: ClassVar[list[BindingType]] = bindings_for("NewJobScreen")

    @dataclass
    class Defaults(Message):
        specs: dict[str, JobSpec]

    @dataclass
    class PlanReady(Message):
        spec: JobSpec
        plan: Plan

    @dataclass
    class PlanFailed(Message):
        text: str

    def __init__(self) -> None:
        super().__init__()
        self.defaults: dict[str, JobSpec] = {}
        """Default specs of the cached models, by repo id."""
        self.applied: JobSpec | None = None
        """The defaults the form was last filled from."""
        self.spec: JobSpec | None = None
        """The spec being preflighted."""
        self.plan: Plan | None = None
        """Its plan, once made."""

    def compose(self) -> ComposeResult:
        with Vertical(id="form-dialog"):
            yield Label("New fine-tune job", id="form-title")
            with ContentSwitcher(initial="form-page", id="form-pages"):
                with Vertical(id="form-page"):
                    with Horizontal(id="form-columns"):
                        yield from self._column("form-left", LEFT)
                        yield from self._column("form-right", RIGHT)
                    yield Static("", id="form-error")
                    yield Static("", id="form-help")
                    with Horizontal(classes="form-buttons"):
                        yield Button("Cancel (esc)", id="form-cancel")
                        yield Button("Preflight › (ctrl+n)", variant="primary", id="form-next")
                with Vertical(id="plan-page"):
                    with VerticalScroll(id="plan-body"):
                        yield Static("", id="plan-text")
                        yield Static("", id="plan-verdict")
                        yield Static("", id="plan-examples")
                    with Horizontal(classes="form-buttons"):
                        yield Button("‹ Edit (esc)", id="plan-back")
                        yield Button("Launch (l)", variant="success", id="plan-launch")
        yield KeyFooter()

    def _column(self, column_id: str, items: tuple[str | Field, ...]) -> ComposeResult:
        with FormColumn(id=column_id, classes="form-column"):
            for item in items:
                if isinstance(item, str):
                    yield Label(item, classes="form-section")
                    continue
                only = f" -only-{item.task}" if item.task else ""
                tall = " -tall" if item.kind == "multiline" else ""
                with Horizontal(classes=f"form-row{only}{tall}"):
                    yield Label(item.label, classes="form-label")
                    yield self._widget(item)

    def _widget(self, field: Field) -> Widget:
        wid = field.widget_id
        if field.kind == "choice":
            return Select([(c, c) for c in field.choices], allow_blank=False, compact=True, id=wid)
        if field.kind == "model":
            return Select([], prompt="reading the HF cache…", compact=True, id=wid)
        if field.kind == "bool":
            return Checkbox("", compact=True, id=wid)
        if field.kind == "multiline":
            return TextArea("", soft_wrap=True, compact=True, id=wid)
        input_type: Literal["integer", "text"] = "integer" if field.kind == "int" else "text"
        return Input("", type=input_type, compact=True, id=wid)

    @property
    def gpus(self) -> list[Gpu] | None:
        return context_of(self.app).gpus

    def on_mount(self) -> None:
        context = context_of(self.app)
        dataset = context.settings.workspace.data_dir / "demo" / "instructions.jsonl"
        self.load_defaults(context.services, str(dataset))
        self.query_one("#f-name").focus()
        self._show_task("causal-lm")

    # ------------------------------------------------------------------ form page

    @work(thread=True, exclusive=True, exit_on_error=False, group="finetune-form", description="Read the HF cache")
    def load_defaults(self, services: Services, dataset: str) -> None:
        from workbench.usecases.finetune import default_jobs

        self.post_message(self.Defaults(default_jobs(services, dataset)))

    @on(Defaults)
    def _defaults(self, event: Defaults) -> None:
        self.defaults = event.specs
        select: Select[str] = self.query_one("#f-model-id", Select)
        if not event.specs:
            select.prompt = "no models in the HF cache: download one in Models"
            return
        select.set_options([(repo, repo) for repo in event.specs])
        first = DEMO_MODEL if DEMO_MODEL in event.specs else next(iter(event.specs))
        self.fill(event.specs[first])

    def values(self) -> dict[str, Shown]:
        """What every field of the form holds now."""
        out: dict[str, Shown] = {}
        for field in FIELDS:
            widget = self.query_one(f"#{field.widget_id}")
            if isinstance(widget, Input):
                out[field.path] = widget.value
            elif isinstance(widget, TextArea):
                out[field.path] = widget.text
            elif isinstance(widget, Checkbox):
                out[field.path] = widget.value
            elif isinstance(widget, Select):
                out[field.path] = "" if widget.value is Select.NULL else str(widget.value)
        return out

    def fill(self, spec: JobSpec) -> None:
        """Put `spec` into the form; after the first fill only fields still at their old default change."""
        current, old = self.values(), self.applied
        for field in FIELDS:
            if old is not None and current[field.path] != shown(field, spec_value(old, field.path)):
                continue
            self._set(field, shown(field, spec_value(spec, field.path)))
        self.applied = spec

    def _set(self, field: Field, value: Shown) -> None:
        widget = self.query_one(f"#{field.widget_id}")
        if isinstance(widget, Input):
            widget.value = str(value)
        elif isinstance(widget, TextArea):
            widget.load_text(str(value))
        elif isinstance(widget, Checkbox):
            widget.value = bool(value)
        elif isinstance(widget, Select):
            widget.value = value

    @on(Select.Changed, "#f-model-id")
    def _model_changed(self, event: Select.Changed) -> None:
        spec = self.defaults.get(str(event.value))
        if spec is not None and self.applied is not None and spec.model.id != self.applied.model.id:
            self.fill(spec)

    @on(Select.Changed, "#f-task")
    def _task_changed(self, event: Select.Changed) -> None:
        self._show_task(str(event.value))

    def _show_task(self, task: str) -> None:
        for name in get_args(Task):
            self.set_class(name == task, f"-task-{name}")

    @on(DescendantFocus)
    def _explain(self, event: DescendantFocus) -> None:
        field = FIELD_BY_ID.get(event.widget.id or "")
        if field is not None:
            self.query_one("#form-help", Static).update(f"{field.path}: {description(field.path)}")

    def build_spec(self) -> JobSpec | None:
        """The spec the form describes; None (and the error shown) when a field is wrong."""
        error = self.query_one("#form-error", Static)
        if self.applied is None:
            error.update("No base model yet: download one in Models (press escape).")
            return None
        try:
            spec = parse_spec(form_data(self.applied, self.values()), source="form")
        except ConfigError as exc:
            error.update(Content.styled(exc.message.removeprefix("form: "), "$error"))
            self._focus_field(field_of(exc))
            return None
        error.update("")
        return spec

    def _focus_field(self, path: str) -> None:
        field = next((f for f in FIELDS if path.startswith(f.path)), None)
        if field is not None:
            self.query_one(f"#{field.widget_id}").focus()

    # ------------------------------------------------------------------ preflight page

    @property
    def page(self) -> str:
        return self.query_one(ContentSwitcher).current or "form-page"

    @on(Button.Pressed, "#form-next")
    @on(Input.Submitted)
    def action_preflight(self) -> None:
        """Check the form, then show the plan page and make the plan."""
        if self.page != "form-page":
            return
        spec = self.build_spec()
        if spec is None:
            return
        self.spec, self.plan = spec, None
        self.query_one(ContentSwitcher).current = "plan-page"
        self.query_one("#plan-text", Static).update(f"Preflight of {spec.name}: reading the data and the model…")
        self.query_one("#plan-verdict", Static).update("")
        self.query_one("#plan-examples", Static).update("")
        self.query_one("#plan-back", Button).focus()
        self._show_launch(False)
        self.preflight(spec, context_of(self.app).hub.cache_path, self.gpus)

    @work(thread=True, exclusive=True, exit_on_error=False, group="finetune-plan", description="Preflight the job")
    def preflight(self, spec: JobSpec, cache_dir: Path, gpus: list[Gpu] | None) -> None:
        try:
            plan = make_plan(spec, cache_dir=cache_dir, gpus=gpus)
        except WorkbenchError as exc:
            self.post_message(self.PlanFailed(error_text(exc, keymap_of(self.app))))
            return
        if not get_current_worker().is_cancelled:
            self.post_message(self.PlanReady(spec, plan))

    @on(PlanReady)
    def _plan_ready(self, event: PlanReady) -> None:
        if event.spec != self.spec:
            return
        self.plan = event.plan
        self.query_one("#plan-text", Static).update(plan_text(event.spec, event.plan))
        self.query_one("#plan-verdict", Static).update(verdict_text(event.plan))
        self.query_one("#plan-examples", Static).update(examples_text(event.plan))
        self._show_launch(event.plan.fits)

    @on(PlanFailed)
    def _plan_failed(self, event: PlanFailed) -> None:
        self.query_one("#plan-text", Static).update(Content.styled(event.text, "$error"))
        self.query_one("#plan-verdict", Static).update(Content.styled("Press escape to change the job.", "$text-muted"))

    def _show_launch(self, fits: bool) -> None:
        launch = self.query_one("#plan-launch", Button)
        launch.display = fits
        if fits:
            launch.focus()
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "launch":
            return self.page == "plan-page" and self.plan is not None and self.plan.fits
        if action == "preflight":
            return self.page == "form-page"
        return True

    @on(Button.Pressed, "#plan-launch")
    def action_launch(self) -> None:
        """Launch: only from the preflight page, only when the plan fits."""
        if self.page == "plan-page" and self.plan is not None and self.plan.fits and self.spec is not None:
            self.dismiss(self.spec)

    @on(Button.Pressed, "#plan-back")
    @on(Button.Pressed, "#form-cancel")
    def action_back(self) -> None:
        """From the plan back to the form; from the form, close without launching."""
        if self.page == "plan-page":
            self.spec, self.plan = None, None
            self.query_one(ContentSwitcher).current = "form-page"
            self.query_one("#form-next", Button).focus()
            self.refresh_bindings()
        else:
            self.dismiss(None)

    @on(Worker.StateChanged)
    def _forward_failure(self, event: Worker.StateChanged) -> None:
        forward_failure(self, event)
