"""What every mode screen shares: the mode bar, the status bar, the footer, worker-error forwarding."""

from __future__ import annotations

from textual import events, on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.dom import DOMNode
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from workbench.modes import MODES
from workbench.tui.context import WorkbenchContext, context_of
from workbench.tui.messages import WorkerFailed
from workbench.tui.widgets import KeyFooter, ModeBar, StatusBar, StatusInfo


def forward_failure(node: DOMNode, event: Worker.StateChanged) -> None:
    """Hand a failed worker's error to the app's one error handler (StateChanged does not bubble)."""
    worker = event.worker
    if event.state is WorkerState.ERROR and worker.error is not None:
        node.app.post_message(WorkerFailed(worker.description or worker.name, worker.error))


class Pane(Vertical):
    """A part of a mode screen that runs its own workers."""

    @property
    def context(self) -> WorkbenchContext:
        return context_of(self.app)

    @on(Worker.StateChanged)
    def _forward_failure(self, event: Worker.StateChanged) -> None:
        forward_failure(self, event)


class ModeScreen(Screen[None]):
    """Base of the mode screens: subclasses set MODE and implement `compose_body`."""

    MODE = ""
    """Id of the mode in `workbench.modes.MODES` (or pass `mode_id`)."""

    def __init__(self, mode_id: str | None = None) -> None:
        super().__init__()
        self.mode_id = mode_id or self.MODE
        self.has_resumed = False

    @property
    def context(self) -> WorkbenchContext:
        return context_of(self.app)

    def compose(self) -> ComposeResult:
        yield ModeBar("LLM Workbench", [(mode.id, mode.title) for mode in MODES], id="mode-bar")
        with Vertical(id="body"):
            yield from self.compose_body()
        yield StatusBar(id="status-bar")
        yield KeyFooter()

    def compose_body(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        self.query_one(ModeBar).active = self.mode_id
        self.watch(self.app, "status", self._show_status)

    @on(events.ScreenResume)
    def _keep_fresh_styles(self, event: events.ScreenResume) -> None:
        """The first resume follows composition, which styled every widget: Textual would style them all
        again (its handler runs after this one; ~20 ms of the first frame)."""
        if not self.has_resumed:
            self.has_resumed = True
            event.refresh_styles = False

    def on_screen_resume(self) -> None:
        self.query_one(ModeBar).keys = self._mode_keys()

    def _show_status(self, status: StatusInfo) -> None:
        self.query_one(StatusBar).info = status

    def _mode_keys(self) -> dict[str, str]:
        """Mode id to the key display of its binding, after the user's keymap."""
        by_id = {mode.binding_id: mode.id for mode in MODES}
        keys: dict[str, str] = {}
        for active in self.app.active_bindings.values():
            mode_id = by_id.get(active.binding.id or "")
            if mode_id and mode_id not in keys:
                keys[mode_id] = self.app.get_key_display(active.binding)
        return keys

    @on(Worker.StateChanged)
    def _forward_failure(self, event: Worker.StateChanged) -> None:
        forward_failure(self, event)
