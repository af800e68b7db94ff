"""The Local tab of the Models mode: the HF cache, one row per repo and per revision."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.coordinate import Coordinate
from textual.message import Message
from textual.widgets import DataTable, Static

from services.cache import CachedModel, CacheListing, delete_cached_model, list_cached_models
from services.hub.connection import HubConnection
from services.units import human_bytes
from workbench.tui.keymap import bindings_for
from workbench.tui.messages import CacheChanged
from workbench.tui.screens.base import Pane
from workbench.tui.widgets import ConfirmScreen, short_path
from workbench.tui.widgets.table import Table

if TYPE_CHECKING:
    from services.finetune.adapters import Adapter

COLUMNS = ("Model", "Revision", "Size", "Files", "Last accessed", "Last modified")
ADAPTER_COLUMNS = ("Adapter", "Job", "Base model", "Eval loss", "Size", "Created", "Folder")


@dataclass(frozen=True)
class Target:
    """What deleting a row removes: a whole repo (revision None) or one revision."""

    repo_id: str
    revision: str | None = None

    @property
    def label(self) -> str:
        return f"{self.repo_id} @ {self.revision[:12]}" if self.revision else f"{self.repo_id} (all revisions)"


def day(moment: datetime) -> str:
    return moment.astimezone().date().isoformat()


Cells = tuple[str, ...]


def model_rows(model: CachedModel) -> list[tuple[Target, Cells]]:
    """The repo's row followed by one row per revision."""
    count = len(model.revisions)
    files = sum(r.files for r in model.revisions)
    head: Cells = (
        model.repo_id,
        f"{count} revision{'s' if count != 1 else ''}",
        human_bytes(model.size),
        str(files),
        day(model.last_accessed),
        day(model.last_modified),
    )
    rows: list[tuple[Target, Cells]] = [(Target(model.repo_id), head)]
    for r in model.revisions:
        refs = f" ({', '.join(r.refs)})" if r.refs else ""
        cells = ("", f"└ {r.commit[:8]}{refs}", human_bytes(r.size), str(r.files), "", day(r.last_modified))
        rows.append((Target(model.repo_id, r.commit), cells))
    return rows


def summary_text(listing: CacheListing) -> str:
    where = short_path(listing.path)
    if not listing.models:
        return f"No models in {where} yet: download one from the Hub tab."
    count = len(listing.models)
    text = f"{count} model{'s' if count != 1 else ''} · {human_bytes(listing.size)} in {where}"
    if listing.warnings:
        text += f" · {len(listing.warnings)} problem(s): {listing.warnings[0]}"
    return text


def adapter_cells(adapter: Adapter) -> Cells:
    loss = f"{adapter.eval_loss:.4f}" if adapter.eval_loss is not None else "–"
    base = adapter.base_model or "?"
    if adapter.base_revision:
        base += f" @ {adapter.base_revision[:8]}"
    created = adapter.created_at[:10]
    return (adapter.name, adapter.version, base, loss, human_bytes(adapter.size), created, short_path(adapter.path))


class LocalPane(Pane):
    """Lists the HF cache and deletes repos or revisions from it."""

    BINDINGS: ClassVar[list[BindingType]] = bindings_for("LocalPane")

    @dataclass
    class Listed(Message):
        listing: CacheListing
        adapters: list[Adapter]

    @dataclass
    class Deleted(Message):
        target: Target
        freed: int

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.targets: dict[str, Target] = {}
        self.listing: CacheListing | None = None
        self._focus_on_mount = False

    def compose(self) -> ComposeResult:
        yield Table(id="local-table", cursor_type="row", zebra_stripes=True)
        yield Static("reading the cache…", id="local-summary")
        yield Table(id="local-adapters", cursor_type="row", zebra_stripes=True)
        yield Static("", id="adapters-summary")

    @property
    def conn(self) -> HubConnection:
        return self.context.hub

    @property
    def table(self) -> DataTable[str]:
        return self.query_one("#local-table", DataTable)

    def on_mount(self) -> None:
        self.table.add_columns(*COLUMNS)
        self.query_one("#local-adapters", DataTable).add_columns(*ADAPTER_COLUMNS)
        if self._focus_on_mount:
            self.table.focus()
        self.reload()  # built when first needed (shown, or asked for), so read the cache now

    def focus_list(self) -> None:
        """Focus the cache table, now or, while the pane is still being built, once it is."""
        built = self.query("#local-table")
        if built:
            built.first().focus()
        else:
            self._focus_on_mount = True

    def reload(self) -> None:
        """Read the cache again (in a worker)."""
        self.list_cache(self.conn)

    def action_reload(self) -> None:
        self.reload()

    @work(thread=True, exclusive=True, exit_on_error=False, group="local-list", description="Read the HF cache")
    def list_cache(self, conn: HubConnection) -> None:
        from services.finetune.adapters import list_adapters  # pydantic job models stay off the start path

        adapters = list_adapters(self.context.settings.workspace.data_dir)
        self.post_message(self.Listed(list_cached_models(conn.cache_path), adapters))

    @on(Listed)
    def _show_listing(self, event: Listed) -> None:
        table = self.table
        keep = self.selected_key()
        table.clear()
        self.targets.clear()
        self.listing = event.listing
        for model in event.listing.models:
            for target, cells in model_rows(model):
                key = f"{target.repo_id}@{target.revision or ''}"
                self.targets[key] = target
                table.add_row(*cells, key=key)
        if keep in self.targets:
            table.move_cursor(row=table.get_row_index(keep))
        self.query_one("#local-summary", Static).update(summary_text(event.listing))
        self._show_adapters(event.adapters)

    def _show_adapters(self, adapters: list[Adapter]) -> None:
        table = self.query_one("#local-adapters", DataTable)
        table.clear()
        for adapter in adapters:
            table.add_row(*adapter_cells(adapter), key=adapter.version)
        count = len(adapters)
        summary = (
            f"{count} adapter{'s' if count != 1 else ''} from fine-tune jobs; chat with one in Playground (3)"
            if count
            else "No adapters yet: train one in Fine-tune (2)."
        )
        self.query_one("#adapters-summary", Static).update(summary)

    def selected_key(self) -> str | None:
        table = self.table
        if not table.row_count:
            return None
        return table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value

    def action_delete(self) -> None:
        """Delete the repo or revision under the cursor, after asking."""
        target = self.targets.get(self.selected_key() or "")
        if target is None or self.listing is None:
            return

        def answered(go: bool | None) -> None:
            if go:
                self.delete(self.conn, target)

        question = f"Delete {target.label} from {short_path(self.listing.path)}?\n\nThis cannot be undone."
        self.app.push_screen(
            ConfirmScreen("Delete from the cache", question, confirm_label="Delete", danger=True), answered
        )

    @work(
        thread=True, exclusive=True, exit_on_error=False, group="local-delete", description="Delete from the HF cache"
    )
    def delete(self, conn: HubConnection, target: Target) -> None:
        freed = delete_cached_model(conn.cache_path, target.repo_id, revision=target.revision)
        self.post_message(self.Deleted(target, freed))

    @on(Deleted)
    def _deleted(self, event: Deleted) -> None:
        self.notify(f"Deleted {event.target.label}: {human_bytes(event.freed)} freed", title="Cache")
        self.post_message(CacheChanged())
