"""The terminal app shell: modes, keys, the status bar's facts, first start and worker errors.

Each mode lives in `screens/`; this module only wires them together. Heavy libraries stay out of
the import path: services import them inside the functions that run in workers.
"""

from __future__ import annotations

import gc
import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from textual import on, work
from textual.app import App
from textual.binding import BindingType
from textual.command import Provider
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.reactive import var
from textual.screen import Screen
from textual.worker import Worker

from services.errors import CancelledError, WorkbenchError
from services.gpu import Gpu, describe, detect_gpus
from workbench import modes
from workbench.settings import Layer, Settings, untrusted_project
from workbench.trust import ProjectTrust, question_text
from workbench.tui.context import WorkbenchContext
from workbench.tui.keymap import bindings_for
from workbench.tui.messages import CacheChanged, WorkerFailed
from workbench.tui.screens.base import forward_failure
from workbench.tui.screens.models.screen import ModelsScreen
from workbench.tui.stylesheet import VariablesStylesheet
from workbench.tui.widgets import ConfirmScreen, StatusInfo, short_path
from workbench.usecases import models
from workbench.wiring import Services

MODE_HINTS = {
    "finetune": "Jobs wait in the machine's GPU queue (`workbench gpu`): when several users wait, the next free "
    "GPU goes to the user with the least GPU time in the fairness window, then to the oldest job.",
}
GPU_POLL_S = 5.0
"""How often the status bar reads the GPUs and who holds them."""
KEYS_HINT = 'Remap keys by binding id in workbench.toml, e.g. [ui.keys] "mode.models" = "f1,1".'


LAZY_MODES = {
    "finetune": "workbench.tui.screens.finetune.screen:FinetuneScreen",
    "playground": "workbench.tui.screens.playground.screen:PlaygroundScreen",
    "artifacts": "workbench.tui.screens.artifacts.screen:ArtifactsScreen",
    "deploy": "workbench.tui.screens.deploy.screen:DeployScreen",
    "infra": "workbench.tui.screens.infra.screen:InfraScreen",
    "images": "workbench.tui.screens.images.screen:ImagesScreen",
}
"""Modes whose screen module (and the libraries it needs) is imported when the mode first opens."""


def lazy_screen(target: str) -> Callable[[], Screen[Any]]:
    """A factory that imports `module:Class` on first use, keeping the mode off the start path."""

    def build() -> Screen[Any]:
        module, name = target.split(":")
        screen: Screen[Any] = getattr(importlib.import_module(module), name)()
        return screen

    return build


def mode_screens() -> dict[str, str | Callable[[], Screen[Any]]]:
    """The base screen of every mode: Models at once, the others imported when first opened."""
    built: dict[str, Callable[[], Screen[Any]]] = {
        "models": ModelsScreen,
        **{mode: lazy_screen(target) for mode, target in LAZY_MODES.items()},
    }
    return {mode.id: built[mode.id] for mode in modes.MODES}


def workbench_commands() -> type[Provider]:
    """The workbench's command palette provider, imported when the palette first opens."""
    from workbench.tui.palette import WorkbenchCommands

    return WorkbenchCommands


def failure_text(error: BaseException, keymap: Mapping[str, str] | None = None) -> tuple[str, SeverityLevel]:
    """The notification for a background error: what happened and what to do next, its next step
    phrased for the app (the keys after `keymap`, the user's `[ui] keys`)."""
    from workbench.tui.steps import error_text  # the error path only

    if isinstance(error, WorkbenchError):
        return error_text(error, keymap), "warning" if isinstance(error, CancelledError) else "error"
    return f"unexpected {type(error).__name__}: {error}", "error"


class WorkbenchApp(App[bool]):
    """LLM Workbench: one mode per area, switched with the number keys.

    It returns True when it should start again with settings loaded anew (a project file was trusted).
    """

    CSS_PATH = "app.tcss"
    TITLE = "LLM Workbench"
    MODES = mode_screens()
    DEFAULT_MODE = "models"
    COMMANDS = App.COMMANDS | {workbench_commands}
    BINDINGS: ClassVar[list[BindingType]] = bindings_for("WorkbenchApp")

    status: var[StatusInfo] = var(StatusInfo("", ""))
    """What the status bar of every mode shows."""

    @dataclass
    class HubChecked(Message):
        online: bool

    @dataclass
    class GpuDetected(Message):
        line: str

    @dataclass
    class DemoStarted(Message):
        pass

    @dataclass
    class DemoReady(Message):
        created: list[str]

    def __init__(
        self,
        settings: Settings,
        *,
        init_demo_on_empty: bool = True,
        gpus: list[Gpu] | None = None,
        untrusted: ProjectTrust | None = None,
        services: Services | None = None,
    ) -> None:
        """`init_demo_on_empty`: create the demo workspace when the HF cache is empty.
        `gpus`: assume these GPUs instead of detecting them (tests, snapshots).
        `untrusted`: a project file whose secret-routing keys were ignored; the app asks once to trust it.
        `services`: the service clients to use (tests hand in fakes); default: built from `settings`."""
        super().__init__()
        self.stylesheet = VariablesStylesheet(variables=self.get_css_variables())
        self.settings = settings
        self.untrusted = untrusted
        self.context = WorkbenchContext(services or Services(settings, gpus=gpus))
        self.init_demo_on_empty = init_demo_on_empty
        self.set_keymap(settings.ui.keys)
        if settings.ui.theme in self.available_themes:
            self.theme = settings.ui.theme
        self.status = StatusInfo(short_path(settings.workspace.data_dir), self.context.hub.url)

    def on_ready(self) -> None:
        # What start-up built (modules, styles, the first screen) lives as long as the app: out of the
        # collector's sight, a full collection on the UI thread scans only what came later (during a
        # download after ten searches: a 50 ms pause became 12 ms). `workbench` started with the
        # collector off (cli.main), since collections during start-up find no garbage.
        gc.freeze()
        gc.enable()
        # Background checks start after the first frame, so that they do not delay it.
        self.check_hub(self.context.services)
        if self.context.gpus is None:
            self.detect_gpu()
            self.set_interval(GPU_POLL_S, self.detect_gpu)
        else:
            self.status = replace(self.status, gpu=describe(self.context.gpus))
        if self.init_demo_on_empty:
            self.first_start(self.context.services)
        if self.untrusted is not None and not self.untrusted.declined:
            self.ask_trust(self.untrusted)

    def ask_trust(self, project: ProjectTrust) -> None:
        """Ask whether the project file may route secrets; the answer is recorded with its hash."""

        def answered(trusted: bool | None) -> None:
            project.decide(bool(trusted))
            if trusted:
                self.exit(True)  # start again at once, with the project's keys
            else:
                self.notify(f"{project.path.name} not trusted: its keys stay ignored", title="Project settings")

        question = ConfirmScreen(
            "Trust this project's settings?", question_text(project), confirm_label="Trust", danger=True
        )
        self.push_screen(question, answered)

    async def action_in_mode(self, mode: str, action: str) -> None:
        """Switch to `mode` and run `action` on its screen (command palette entries)."""
        await self.switch_mode(mode)
        await self.run_action(action, self.screen)

    def action_keys(self) -> None:
        """Show every key of the current screen."""
        from workbench.tui.widgets.keys import KeysScreen, key_rows

        if isinstance(self.screen, KeysScreen):
            return
        active = list(self.screen.active_bindings.values())
        display = {item.binding.key: self.get_key_display(item.binding) for item in active}
        mode = modes.MODE_BY_ID.get(self.current_mode)
        title = f"Keys: {mode.title if mode else self.current_mode}"
        hint = f"{MODE_HINTS[self.current_mode]}\n{KEYS_HINT}" if self.current_mode in MODE_HINTS else KEYS_HINT
        self.push_screen(KeysScreen(title, key_rows(active, display), hint))

    # ------------------------------------------------------------------ status

    @work(thread=True, exclusive=True, exit_on_error=False, group="hub-status", description="Check the hub")
    def check_hub(self, services: Services) -> None:
        self.post_message(self.HubChecked(online=models.hub_online(services)))

    @on(HubChecked)
    def _hub_checked(self, event: HubChecked) -> None:
        self.status = replace(self.status, hub_state="online" if event.online else "offline")

    @work(thread=True, exclusive=True, exit_on_error=False, group="gpu", description="Detect GPUs")
    def detect_gpu(self) -> None:
        """The GPUs and who holds them in the machine's queue; read again every `GPU_POLL_S`."""
        line = describe(detect_gpus())
        view = self.context.services.gpu_queue().view()
        if any(holders for _, holders in view.slots):  # the formatter's imports cost ~50 ms: only when needed
            from workbench.present.gpu import holders_line

            line = f"{line} · {holders_line(view, os.geteuid())}"
        self.post_message(self.GpuDetected(line))

    @on(GpuDetected)
    def _gpu_detected(self, event: GpuDetected) -> None:
        self.status = replace(self.status, gpu=event.line)

    # ------------------------------------------------------------------ first start

    @work(thread=True, exclusive=True, exit_on_error=False, group="demo", description="Create the demo workspace")
    def first_start(self, services: Services) -> None:
        if not models.first_start(services):
            return
        self.post_message(self.DemoStarted())
        self.post_message(self.DemoReady(models.init_demo(services).created))

    @on(DemoStarted)
    def _demo_started(self) -> None:
        self.notify("Creating demo workspace…", title="First start")

    @on(DemoReady)
    def _demo_ready(self, event: DemoReady) -> None:
        self.notify(
            f"Demo workspace ready: {len(event.created)} items created. Its models are in Models › Local.",
            title="First start",
        )
        self.screen.post_message(CacheChanged())

    # ------------------------------------------------------------------ errors

    @on(Worker.StateChanged)
    def _worker_state(self, event: Worker.StateChanged) -> None:
        forward_failure(self, event)

    @on(WorkerFailed)
    def _notify_failure(self, event: WorkerFailed) -> None:
        """The one place background errors reach the user; the app keeps running."""
        text, severity = failure_text(event.error, self.settings.ui.keys)
        self.notify(text, title=event.description, severity=severity, timeout=10, markup=False)


def run_app(load: Callable[[], tuple[Settings, list[Layer]]]) -> None:
    """Run the app on the settings `load` returns until the user quits; it asks to trust the project
    file when the layers show its secret-routing keys were ignored, and starts again once trusted."""
    while True:
        settings, layers = load()
        if not WorkbenchApp(settings, untrusted=untrusted_project(layers)).run():
            return
