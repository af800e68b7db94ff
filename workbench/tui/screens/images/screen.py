"""The Images mode: the apps, their local images and registry tags; build (`b`) and push (`p`) one.

Thin: `services.images.ops` does the work in threaded workers that post messages. The build log
streams into a Log in batches; a push fills a per-layer table and one progress bar; escape
cancels either. Failures reach the app's one error handler; `_worker_ended` only resets state.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal
from textual.content import Content
from textual.message import Message
from textual.widgets import DataTable, Log, Static
from textual.worker import Worker, WorkerState

from services.images.build import BuildResult
from services.images.ops import AppImages, ImagesConfig, Inventory
from services.images.push import LayerProgress, PushProgress, PushResult
from services.progress import CancelToken
from services.units import human_bytes
from workbench.present.image import build_summary, push_line, version_text
from workbench.tui.keymap import bindings_for
from workbench.tui.screens.base import ModeScreen
from workbench.tui.widgets import TransferBar, short_path
from workbench.tui.widgets.table import Table
from workbench.usecases import images

if TYPE_CHECKING:
    from workbench.wiring import Services

Row = tuple[str, ...]
LOG_BATCH_S = 0.05
NO_APPS = (
    "No apps found: the Images mode builds folders under images.apps_dir (default apps/) that have a Dockerfile"
    " or [tool.appkit.image] in their pyproject.toml."
)


@dataclass
class LineBatch:
    """Collects log lines and hands them over at most every `interval_s` (and on `flush`)."""

    send: Callable[[list[str]], None]
    interval_s: float = LOG_BATCH_S
    lines: list[str] = field(default_factory=list)
    last: float = 0.0

    def add(self, line: str) -> None:
        self.lines.append(line)
        if time.monotonic() - self.last >= self.interval_s:
            self.flush()

    def flush(self) -> None:
        if self.lines:
            lines, self.lines = self.lines, []
            self.send(lines)
        self.last = time.monotonic()


def app_rows(found: Inventory) -> list[Row]:
    return [
        (
            row.app.name,
            version_text(row),
            "yes" if row.built else "no",
            str(len(row.local)),
            str(len(row.remote)) if found.remote_listed else "-",
            short_path(row.app.path),
        )
        for row in found.apps
    ]


def local_rows(row: AppImages) -> list[Row]:
    return [
        (i.tag or "-", i.image_id, human_bytes(i.size_bytes), i.created.strftime("%Y-%m-%d %H:%M")) for i in row.local
    ]


def short_digest(digest: str | None) -> str:
    """`sha256:` and the first 12 hex digits (the full digest shows after a push)."""
    return digest[:19] if digest else "-"


def remote_rows(row: AppImages) -> list[Row]:
    return [(tag.tag, short_digest(tag.digest)) for tag in row.remote]


def layer_rows(layers: tuple[LayerProgress, ...]) -> list[Row]:
    return [
        (layer.id, layer.status, f"{human_bytes(layer.current)} / {human_bytes(layer.total)}" if layer.total else "")
        for layer in layers
    ]


def registry_text(config: ImagesConfig) -> str:
    access = config.registry
    if not access.server:
        return "No registry configured (registry.login_server): builds stay local, push is off."
    engine = config.docker_host or "DOCKER_HOST or the local socket"
    return f"Registry {access.server} · login: {access.auth} · engine: {engine}"


class ImagesScreen(ModeScreen):
    """Build the apps into images and push them to the registry."""

    MODE = "images"
    AUTO_FOCUS = "#images-apps"

    CSS_PATH = "images.tcss"
    """Read when a screen of this mode is first shown: off the app's start path."""
    BINDINGS: ClassVar[list[BindingType]] = bindings_for("ImagesScreen")

    @dataclass
    class Listed(Message):
        inventory: Inventory

    @dataclass
    class BuildLogged(Message):
        lines: list[str]

    @dataclass
    class Built(Message):
        result: BuildResult

    @dataclass
    class PushProgressed(Message):
        progress: PushProgress

        def can_replace(self, message: Message) -> bool:
            # Every report carries every layer, so a newer one makes an older one redundant.
            return isinstance(message, ImagesScreen.PushProgressed)

    @dataclass
    class Pushed(Message):
        result: PushResult

    def __init__(self, mode_id: str | None = None) -> None:
        super().__init__(mode_id)
        self.inventory: Inventory | None = None
        self.cancel_token: CancelToken | None = None
        self.busy: str | None = None
        """"build" or "push" while one runs (one at a time)."""
        self.last_push: PushResult | None = None
        self.pending: str | None = None
        """An action asked for before the first listing arrived (palette from another mode)."""

    def compose_body(self) -> ComposeResult:
        yield Static("", id="images-registry")
        yield Table(id="images-apps", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="images-lists"):
            yield Table(id="images-local", cursor_type="row")
            yield Table(id="images-remote", cursor_type="row")
        yield Static("b build · p push · r refresh · escape cancels", id="images-summary")
        yield TransferBar(id="images-push")
        with Horizontal(id="images-output"):
            yield Log(id="images-log", max_lines=5000)
            yield Table(id="images-layers", cursor_type="none")

    def on_mount(self) -> None:
        super().on_mount()
        self._columns("#images-apps", ("App", "Version", "Built", "Local", "Registry", "Folder"))
        self._columns("#images-local", ("Local tag", "ID", "Size", "Created"))
        self._columns("#images-remote", ("Registry tag", "Digest"))
        self._columns("#images-layers", ("Layer", "Status", "Bytes"))
        self.query_one("#images-push", TransferBar).display = False
        self.query_one("#images-registry", Static).update(Content(registry_text(self.config)))
        self.action_refresh()

    @property
    def config(self) -> ImagesConfig:
        return self.context.services.images_config()

    @property
    def selected(self) -> AppImages | None:
        """The app under the cursor of the apps table."""
        if self.inventory is None or not self.inventory.apps:
            return None
        row = self.query_one("#images-apps", DataTable).cursor_row
        return self.inventory.apps[min(max(row, 0), len(self.inventory.apps) - 1)]

    def _columns(self, selector: str, columns: Row) -> None:
        self.query_one(selector, DataTable).add_columns(*columns)

    def _fill(self, selector: str, rows: list[Row]) -> None:
        table = self.query_one(selector, DataTable)
        cursor = table.cursor_row
        table.clear()
        for row in rows:
            table.add_row(*row)
        if rows:
            table.move_cursor(row=min(cursor, len(rows) - 1))

    def _summary(self, text: str) -> None:
        self.query_one("#images-summary", Static).update(Content(text))  # plain: messages may hold [brackets]

    # ------------------------------------------------------------------ actions

    def action_refresh(self) -> None:
        self.load(self.context.services)

    def action_build(self) -> None:
        app = self._target("build")
        if app is None or not self._idle():
            return
        self.busy, self.cancel_token = "build", CancelToken()
        self.query_one("#images-log", Log).clear()
        self._summary(f"building {app.reference}… (escape cancels)")
        self.build(self.context.services, app.app.name, self.cancel_token)

    def action_push(self) -> None:
        app = self._target("push")
        if app is None or not self._idle():
            return
        if not self.config.registry.server:
            self.notify("Set registry.login_server to push.", title="Images", severity="warning")
            return
        if not app.built:
            self.notify(f"No image {app.reference} yet: press b to build it.", title="Images", severity="warning")
            return
        self.busy, self.cancel_token = "push", CancelToken()
        bar = self.query_one("#images-push", TransferBar)
        bar.display = True
        bar.start(f"push {app.app.name}:{app.version.version}")
        self.query_one("#images-layers", DataTable).clear()
        self._summary(f"pushing {app.reference}… (escape cancels)")
        self.push(self.context.services, f"{app.app.name}:{app.version.version}", self.cancel_token)

    def action_cancel(self) -> None:
        if self.cancel_token is not None and not self.cancel_token.cancelled:
            self.cancel_token.cancel()
            self._summary(f"cancelling the {self.busy}…")

    def _target(self, action: str) -> AppImages | None:
        """The selected app; before the first listing, `action` waits for it."""
        if self.inventory is None:
            self.pending = action
        return self.selected

    def _idle(self) -> bool:
        if self.busy is not None:
            self.notify(f"A {self.busy} is running (escape cancels it).", title="Images", severity="warning")
        return self.busy is None

    # ------------------------------------------------------------------ workers

    @work(thread=True, exclusive=True, exit_on_error=False, group="images-list", description="List apps and images")
    def load(self, services: Services) -> None:
        self.post_message(self.Listed(images.inventory(services, remote=True)))

    @work(thread=True, exclusive=True, exit_on_error=False, group="images-build", description="Build the image")
    def build(self, services: Services, app: str, cancel: CancelToken) -> None:
        def send(lines: list[str]) -> None:
            self.post_message(self.BuildLogged(lines))

        batch = LineBatch(send)
        try:
            result = images.build(services, app, on_event=lambda event: batch.add(event.text), cancel=cancel)
        finally:
            batch.flush()
        self.post_message(self.Built(result))

    @work(thread=True, exclusive=True, exit_on_error=False, group="images-push", description="Push the image")
    def push(self, services: Services, target: str, cancel: CancelToken) -> None:
        def report(progress: PushProgress) -> None:
            self.post_message(self.PushProgressed(progress))

        self.post_message(self.Pushed(images.push(services, target, on_progress=report, cancel=cancel)))

    # ------------------------------------------------------------------ results

    @on(Listed)
    def _listed(self, event: Listed) -> None:
        self.inventory = event.inventory
        self._fill("#images-apps", app_rows(event.inventory))
        self._show_selected()
        if not event.inventory.apps:
            self._summary(NO_APPS)
        for problem in event.inventory.problems:
            self.notify(problem, title="Images", severity="warning", markup=False)
        if self.pending is not None:
            action, self.pending = self.pending, None
            self.action_build() if action == "build" else self.action_push()

    @on(DataTable.RowHighlighted, "#images-apps")
    def _show_selected(self) -> None:
        app = self.selected
        self._fill("#images-local", local_rows(app) if app else [])
        self._fill("#images-remote", remote_rows(app) if app else [])

    @on(BuildLogged)
    def _logged(self, event: BuildLogged) -> None:
        self.query_one("#images-log", Log).write_lines(event.lines)

    @on(Built)
    def _built(self, event: Built) -> None:
        self._summary(build_summary(event.result))
        self.action_refresh()

    @on(PushProgressed)
    def _push_progressed(self, event: PushProgressed) -> None:
        progress = event.progress
        self._fill("#images-layers", layer_rows(progress.layers))
        self.query_one("#images-push", TransferBar).show_fraction(progress.fraction, push_line(progress))

    @on(Pushed)
    def _pushed(self, event: Pushed) -> None:
        result = self.last_push = event.result
        self._fill("#images-layers", layer_rows(result.layers))
        size = human_bytes(result.size_bytes) if result.size_bytes is not None else "size unknown"
        self._summary(f"pushed {result.reference}\ndigest {result.digest} · {size} compressed")
        done = f"{result.pushed_layers} layers pushed, {result.existing_layers} already there"
        self.query_one("#images-push", TransferBar).show_fraction(1.0, done)
        self.notify(f"{result.reference}\n{result.digest}", title="Images: pushed", markup=False)
        self.action_refresh()

    @on(Worker.StateChanged)
    def _worker_ended(self, event: Worker.StateChanged) -> None:
        """A build or push that ended in any way frees the screen for the next one."""
        if event.worker.group not in ("images-build", "images-push") or not event.worker.is_finished:
            return
        if event.state is WorkerState.ERROR:
            what = "cancelled" if self.cancel_token is not None and self.cancel_token.cancelled else "failed"
            self._summary(f"{self.busy} {what}: {event.worker.error}")
        self.busy, self.cancel_token = None, None
