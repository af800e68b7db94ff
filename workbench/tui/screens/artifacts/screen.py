"""The Artifacts mode: versions in the workspace and in remote storage, their lineage, labels and transfers.

Thin: the use cases of `workbench.usecases.artifacts` do the work in threaded workers that post
messages; handlers own the table, the detail pane and the transfer bar.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Label, Static
from textual.worker import Worker

from services.progress import CancelToken, TransferProgress
from services.units import human_bytes
from workbench.present.artifacts import lineage_rows
from workbench.tui.keymap import bindings_for
from workbench.tui.screens.base import ModeScreen
from workbench.tui.widgets import ConfirmScreen, TransferBar, short_path
from workbench.tui.widgets.prompt import PromptScreen
from workbench.tui.widgets.table import Table
from workbench.usecases import artifacts as usecase

if TYPE_CHECKING:
    from services.artifacts.catalog import VersionInfo
    from services.artifacts.evals import EvalLink
    from workbench.usecases.artifacts import Copied
    from workbench.wiring import Services

COLUMNS = ("Name", "Kind", "Version", "Size", "Labels", "Created", "By")


def version_row(info: VersionInfo) -> tuple[str, ...]:
    m = info.manifest
    created = m.created_at[:16].replace("T", " ") or "-"
    return (m.name, m.kind, m.version, human_bytes(m.size), ", ".join(info.labels) or "-", created, m.created_by)


def detail_text(info: VersionInfo, evals: list[EvalLink], where: str) -> str:
    """The detail pane: what it is, where it came from, what tested it."""
    m = info.manifest
    lines = [
        f"{m.ref}",
        f"{m.kind} · {human_bytes(m.size)} in {len(m.files)} files · {where}",
        f"labels: {', '.join(info.labels) or 'none'}",
        f"created {m.created_at} by {m.created_by}",
        "",
        "Lineage",
        *(f"  {what:<16}{value}" for what, value in lineage_rows(m)),
        "",
        "Eval runs" if evals else "Eval runs: none yet (run a suite that uses it)",
        *(f"  {e.started[:16]}  {e.passed} passed, {e.failed} failed  {e.run_id}" for e in evals),
    ]
    return "\n".join(lines)


class ArtifactsScreen(ModeScreen):
    """Workspace and remote versions side by side with lineage; push, pull, label, delete."""

    MODE = "artifacts"
    AUTO_FOCUS = "#artifacts-table"

    CSS_PATH = "artifacts.tcss"
    """Read when a screen of this mode is first shown: off the app's start path."""
    BINDINGS: ClassVar[list[BindingType]] = bindings_for("ArtifactsScreen")

    @dataclass
    class Loaded(Message):
        where: str
        description: str
        infos: list[VersionInfo]
        evals: dict[str, list[EvalLink]]
        refused: tuple[str, ...] = ()
        """Entries the listing skipped because they failed a check (a manifest naming another version)."""

    @dataclass
    class Progressed(Message):
        progress: TransferProgress

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, ArtifactsScreen.Progressed)

    @dataclass
    class Transferred(Message):
        verb: str
        copied: Copied

    @dataclass
    class Changed(Message):
        text: str

    def __init__(self) -> None:
        super().__init__()
        self.where = "workspace"
        self.description = "the workspace"
        self.infos: list[VersionInfo] = []
        self.evals: dict[str, list[EvalLink]] = {}
        self.cancel_token: CancelToken | None = None

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="artifacts-bar"):
            yield Label("", id="artifacts-where")
            yield Label("", id="artifacts-summary")
        with Horizontal(id="artifacts-main"):
            yield Table(id="artifacts-table", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="artifacts-detail-scroll"):
                yield Static("", id="artifacts-detail", markup=False)
        yield TransferBar(id="artifacts-transfer")
        yield Static("", id="artifacts-status", markup=False)

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one(DataTable).add_columns(*COLUMNS)
        self.query_one(TransferBar).display = False
        self.action_refresh()

    # ------------------------------------------------------------------ listing

    def action_show(self, where: str) -> None:
        self.where = where
        self.action_refresh()

    def action_refresh(self) -> None:
        self.query_one("#artifacts-where", Label).update("Workspace" if self.where == "workspace" else "Remote")
        self.load(self.context.services, remote=self.where == "remote")

    @work(thread=True, exclusive=True, exit_on_error=False, group="artifacts-load", description="List artifacts")
    def load(self, services: Services, *, remote: bool) -> None:
        from workbench.usecases.artifacts import list_versions

        listing = list_versions(services, remote=remote, with_evals=True)
        where = "remote" if remote else "workspace"
        storage = listing.catalog.storage.description
        description = storage if remote else f"workspace {short_path(services.data_dir)}"
        self.post_message(self.Loaded(where, description, listing.versions, listing.evals, listing.refused))

    @on(Loaded)
    def _loaded(self, event: Loaded) -> None:
        if event.where != self.where:
            return
        self.infos, self.evals, self.description = event.infos, event.evals, event.description
        table = self.query_one(DataTable)
        table.clear()
        for info in event.infos:
            table.add_row(*version_row(info), key=info.manifest.ref)
        total = sum(i.manifest.size for i in event.infos)
        self.query_one("#artifacts-summary", Label).update(
            f"  {len(event.infos)} versions · {human_bytes(total)} · {event.description}"
        )
        self._show_detail()
        self.refresh_bindings()
        if event.refused:
            self.notify("\n".join(event.refused), title="Entries refused", severity="warning", markup=False)

    @on(DataTable.RowHighlighted, "#artifacts-table")
    def _show_detail(self) -> None:
        info = self.selected
        text = detail_text(info, self.evals.get(info.manifest.ref, []), self.description) if info else self._empty()
        self.query_one("#artifacts-detail", Static).update(text)

    def _empty(self) -> str:
        if self.where == "remote":
            return "Nothing in remote storage yet: select a workspace version (l) and push it (p)."
        return "No artifacts yet. Finished fine-tunes, merges and collection ingests register here."

    @property
    def selected(self) -> VersionInfo | None:
        table = self.query_one(DataTable)
        if not self.infos or table.cursor_row >= len(self.infos):
            return None
        return self.infos[table.cursor_row]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        busy = self.cancel_token is not None
        if action == "cancel":
            return busy
        if action in ("push", "pull"):
            wanted = "workspace" if action == "push" else "remote"
            return self.where == wanted and not busy and self.selected is not None
        if action in ("label", "undo_label", "delete"):
            return self.selected is not None
        return True

    # ------------------------------------------------------------------ transfers

    def action_push(self) -> None:
        self._transfer("push")

    def action_pull(self) -> None:
        self._transfer("pull")

    def _transfer(self, verb: str) -> None:
        info = self.selected
        if info is None or self.cancel_token is not None:
            return
        self.cancel_token = CancelToken()
        bar = self.query_one(TransferBar)
        bar.display = True
        bar.start(f"{verb} {info.manifest.ref}")
        self.refresh_bindings()
        self.transfer(self.context.services, verb, info.manifest.ref, self.cancel_token)

    @work(thread=True, exclusive=True, exit_on_error=False, group="artifacts-transfer", description="Copy an artifact")
    def transfer(self, services: Services, verb: str, ref: str, cancel: CancelToken) -> None:
        def progressed(progress: TransferProgress) -> None:
            self.post_message(self.Progressed(progress))

        copy = usecase.push if verb == "push" else usecase.pull
        self.post_message(self.Transferred(verb, copy(services, ref, on_progress=progressed, cancel=cancel)))

    @on(Progressed)
    def _progressed(self, event: Progressed) -> None:
        self.query_one(TransferBar).show_progress(event.progress)

    @on(Transferred)
    def _transferred(self, event: Transferred) -> None:
        from workbench.present.artifacts import copy_text

        self._status(copy_text(event.copied.report, f"{event.verb}ed", event.copied.where))

    @on(Worker.StateChanged)
    def _transfer_finished(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "artifacts-transfer" and event.worker.is_finished:
            self.cancel_token = None
            self.query_one(TransferBar).display = False
            if event.worker.error is not None:
                self._status(f"stopped: {event.worker.error}")
            self.refresh_bindings()

    def action_cancel(self) -> None:
        if self.cancel_token is not None:
            self.cancel_token.cancel()
            self.query_one(TransferBar).note("cancelling… (run it again to resume)")

    # ------------------------------------------------------------------ labels, delete

    def action_label(self) -> None:
        info = self.selected
        if info is None:
            return
        body = f"Point a label of {info.manifest.name} at version {info.manifest.version} ({self.where})."
        prompt = PromptScreen("Label", body, value="staging", placeholder="candidate, staging, prod, …")
        self.app.push_screen(prompt, lambda label: self._set_label(info, label))

    def _set_label(self, info: VersionInfo, label: str | None) -> None:
        if label:
            self.change(self.context.services, self.where, "label", info, label)

    def action_undo_label(self) -> None:
        info = self.selected
        if info is None:
            return
        body = f"Move a label of {info.manifest.name} back to where its last move took it from."
        prompt = PromptScreen("Undo label move", body, value=(info.labels or ("staging",))[0])
        self.app.push_screen(prompt, lambda label: self._undo_label(info, label))

    def _undo_label(self, info: VersionInfo, label: str | None) -> None:
        if label:
            self.change(self.context.services, self.where, "undo", info, label)

    def action_delete(self) -> None:
        info = self.selected
        if info is None:
            return
        body = (
            f"Delete {info.manifest.ref} ({human_bytes(info.manifest.size)}) from {self.description}?\n"
            "A version that a label or a live release points to is not deleted."
        )
        confirm = ConfirmScreen("Delete artifact version", body, confirm_label="Delete", danger=True)
        self.app.push_screen(confirm, lambda yes: self._delete(info, bool(yes)))

    def _delete(self, info: VersionInfo, confirmed: bool) -> None:
        if confirmed:
            self.change(self.context.services, self.where, "delete", info, "")

    @work(thread=True, exclusive=True, exit_on_error=False, group="artifacts-change", description="Change an artifact")
    def change(self, services: Services, where: str, what: str, info: VersionInfo, label: str) -> None:
        from workbench.present.artifacts import label_text, removed_text

        remote, m = where == "remote", info.manifest
        if what == "label":
            text = label_text(usecase.set_label(services, m.ref, label, remote=remote))
        elif what == "undo":
            text = label_text(usecase.undo_label(services, m.name, label, remote=remote))
        else:
            text = removed_text(usecase.remove(services, m.ref, remote=remote))
        self.post_message(self.Changed(text))

    @on(Changed)
    def _changed(self, event: Changed) -> None:
        self._status(event.text)
        self.action_refresh()

    def _status(self, text: str) -> None:
        self.query_one("#artifacts-status", Static).update(text)
