"""The Collections tab of the Playground: Chroma collections, ingest with progress, and a retrieval inspector."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Button, DataTable, Input, Label, ProgressBar, Static
from textual.worker import Worker

from services.errors import UsageError
from services.playground import PlaygroundSession, demo_documents
from services.progress import CancelToken
from services.rag.query import parse_where
from services.rag.types import CollectionInfo, Hit, IngestProgress, IngestReport
from workbench.tui.keymap import bindings_for
from workbench.tui.screens.base import Pane
from workbench.tui.screens.playground.modals import hit_rows
from workbench.tui.steps import error_text, keymap_of
from workbench.tui.widgets import ConfirmScreen, short_path
from workbench.tui.widgets.table import Table

COLLECTION_COLUMNS = ("Collection", "Chunks", "Embedding model", "Access")
HIT_COLUMNS = ("#", "Distance", "Source", "Chunk", "Text")
DEMO_COLLECTION = "demo-docs"


@dataclass(frozen=True)
class IngestRequest:
    """What the ingest form asks for; model and chunking come from the collection, else the `rag` settings."""

    paths: list[Path]
    collection: str


def collection_row(info: CollectionInfo) -> tuple[str, ...]:
    model = info.model_id or "unknown: set rag.embedding_model"
    return (info.name, f"{info.count:,}", model, "read-only" if info.read_only else "read-write")


def progress_line(p: IngestProgress) -> str:
    return f"{p.files_done}/{p.files_total} files · {p.chunks_done:,} chunks · {p.chunks_per_s:,.0f} chunks/s"


def report_line(collection: str, r: IngestReport) -> str:
    """What an ingest changed, in one sentence."""
    files = (
        f"{r.added_files} added, {r.replaced_files} replaced, {r.unchanged_files} unchanged, {r.removed_files} removed"
    )
    skipped = f"; {len(r.skipped)} skipped ({r.skipped[0][0]}: {r.skipped[0][1]})" if r.skipped else ""
    return f"{collection}: {files} files; +{r.chunks_added}/-{r.chunks_removed} chunks in {r.seconds:.1f} s{skipped}"


def hit_detail(hit: Hit) -> str:
    """A chunk's full text and its metadata."""
    source = short_path(hit.source)
    meta = json.dumps({**hit.metadata, "source": source}, indent=1, sort_keys=True, default=str)
    return f"{source} · chunk {hit.chunk_index} · distance {hit.distance:.4f}\n\n{hit.text}\n\nmetadata {meta}"


class CollectionsPane(Pane):
    """Collections and the ingest form above, a query and its hits below, the highlighted hit at the bottom."""

    BINDINGS: ClassVar[list[BindingType]] = bindings_for("CollectionsPane")

    @dataclass
    class Listed(Message):
        collections: list[CollectionInfo]

    @dataclass
    class Progressed(Message):
        progress: IngestProgress

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, CollectionsPane.Progressed)

    @dataclass
    class Ingested(Message):
        collection: str
        report: IngestReport
        artifact: str
        """The collection's artifact version after the ingest (a new snapshot when anything changed)."""

    @dataclass
    class Retrieved(Message):
        collection: str
        hits: list[Hit]

    @dataclass
    class Removed(Message):
        collection: str

    def __init__(self, session: PlaygroundSession, *, data_dir: Path, rag: Any, id: str | None = None) -> None:
        super().__init__(id=id)
        self.session = session
        self.data_dir = data_dir
        self.rag = rag
        """The `rag` settings section (embedding model, chunk size, overlap, top k)."""
        self.collections: dict[str, CollectionInfo] = {}
        self.hits: list[Hit] = []
        self.cancel_token: CancelToken | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="coll-top"):
            yield Table(id="coll-table", cursor_type="row", zebra_stripes=True)
            with Vertical(id="coll-ingest"):
                with Horizontal(classes="coll-row"):
                    yield Label("path", classes="coll-label")
                    yield Input(
                        short_path(demo_documents(self.data_dir)),
                        placeholder="file or folder",
                        compact=True,
                        id="ingest-path",
                    )
                with Horizontal(classes="coll-row"):
                    yield Label("collection", classes="coll-label")
                    yield Input(DEMO_COLLECTION, placeholder="collection name", compact=True, id="ingest-collection")
                with Horizontal(classes="coll-row"):
                    yield Button("Ingest (ctrl+g)", compact=True, id="ingest-start")
                    yield ProgressBar(total=1, show_eta=False, show_percentage=True, id="ingest-bar")
                yield Static("", id="ingest-status", markup=False)
        with Horizontal(id="query-bar"):
            yield Input(placeholder="query the highlighted collection (enter)", compact=True, id="query-text")
            yield Input(str(self.rag.top_k), type="integer", placeholder="k", compact=True, id="query-k")
            yield Input(placeholder='where filter, JSON: {"source": "..."}', compact=True, id="query-where")
        yield Table(id="hits-table", cursor_type="row", zebra_stripes=True)
        with VerticalScroll(id="hit-scroll"):
            yield Static("", id="hit-detail", markup=False)

    @property
    def table(self) -> DataTable[str]:
        return self.query_one("#coll-table", DataTable)

    @property
    def hits_table(self) -> DataTable[str]:
        return self.query_one("#hits-table", DataTable)

    @property
    def selected(self) -> str | None:
        """The highlighted collection's name."""
        if not self.table.row_count:
            return None
        return str(self.table.coordinate_to_cell_key(self.table.cursor_coordinate).row_key.value)

    def on_mount(self) -> None:
        self.table.add_columns(*COLLECTION_COLUMNS)
        self.hits_table.add_columns(*HIT_COLUMNS)
        self.query_one("#ingest-bar", ProgressBar).display = False
        self.reload()

    # ------------------------------------------------------------------ list

    def reload(self) -> None:
        """List the collections again."""
        self.list_collections(self.session)

    @work(thread=True, exclusive=True, exit_on_error=False, group="rag-list", description="List the collections")
    def list_collections(self, session: PlaygroundSession) -> None:
        from services.rag.collections import list_collections

        self.post_message(self.Listed(list_collections(session.client())))

    @on(Listed)
    def _listed(self, event: Listed) -> None:
        selected = self.selected
        self.collections = {c.name: c for c in event.collections}
        self.table.clear()
        for info in event.collections:
            self.table.add_row(*collection_row(info), key=info.name)
        if selected in self.collections:
            self.table.move_cursor(row=self.table.get_row_index(selected))
        if not event.collections:
            self.set_status("no collections yet: ingest a file or folder (the demo documents are filled in)")
        self.refresh_bindings()

    def select(self, name: str) -> None:
        """Highlight collection `name` when it is listed."""
        if name in self.collections:
            self.table.move_cursor(row=self.table.get_row_index(name))

    def set_status(self, text: str) -> None:
        self.query_one("#ingest-status", Static).update(text)

    # ------------------------------------------------------------------ ingest

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_ingest":
            return self.cancel_token is not None
        if action == "ingest":
            return None if self.cancel_token is not None else True
        if action == "delete_collection":
            return None if self.selected is None or self.cancel_token is not None else True
        return True

    @on(Button.Pressed, "#ingest-start")
    @on(Input.Submitted, "#ingest-path, #ingest-collection")
    def action_ingest(self) -> None:
        """Ingest the path in the form into the named collection."""
        if self.cancel_token is not None:
            return
        request = self.ingest_request()
        if request is None:
            return
        self.cancel_token = CancelToken()
        bar = self.query_one("#ingest-bar", ProgressBar)
        bar.update(total=None, progress=0)
        bar.display = True
        self.set_status(f"reading {short_path(request.paths[0])}…")
        self.refresh_bindings()
        self.ingest(self.session, request, self.cancel_token)

    def ingest_request(self) -> IngestRequest | None:
        path = self.query_one("#ingest-path", Input).value.strip()
        name = self.query_one("#ingest-collection", Input).value.strip()
        if not path or not name:
            self.notify("Fill in a path and a collection name first.", title="Ingest", severity="warning")
            return None
        return IngestRequest([Path(path).expanduser()], name)

    @work(thread=True, exclusive=True, exit_on_error=False, group="rag-ingest", description="Ingest into a collection")
    def ingest(self, session: PlaygroundSession, request: IngestRequest, cancel: CancelToken) -> None:
        from workbench.usecases.rag import ingest

        def progress(event: IngestProgress) -> None:
            self.post_message(self.Progressed(event))

        done = ingest(
            self.context.services,
            request.paths,
            collection=request.collection,
            progress=progress,
            cancel=cancel,
            client=session.client(),
        )
        self.post_message(self.Ingested(request.collection, done.report, done.artifact))

    @on(Progressed)
    def _progressed(self, event: Progressed) -> None:
        p = event.progress
        self.query_one("#ingest-bar", ProgressBar).update(total=max(p.files_total, 1), progress=p.files_done)
        self.set_status(progress_line(p))

    @on(Ingested)
    def _ingested(self, event: Ingested) -> None:
        self.set_status(f"{report_line(event.collection, event.report)} · artifact {event.artifact}")
        self.reload()
        self.call_after_refresh(self.select, event.collection)

    @on(Worker.StateChanged)
    def _ingest_finished(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "rag-ingest" and event.worker.is_finished:
            self.cancel_token = None
            self.query_one("#ingest-bar", ProgressBar).display = False
            if event.worker.error is not None:
                self.set_status(f"ingest stopped: {event.worker.error}")
            self.refresh_bindings()

    def action_cancel_ingest(self) -> None:
        if self.cancel_token is not None:
            self.cancel_token.cancel()
            self.set_status("stopping after the current batch…")

    # ------------------------------------------------------------------ query

    @on(Input.Submitted, "#query-text, #query-k, #query-where")
    def action_query(self) -> None:
        """Retrieve the top k chunks of the highlighted collection for the query text."""
        text = self.query_one("#query-text", Input).value.strip()
        collection = self.selected
        if not text or collection is None:
            return
        try:
            where = parse_where(self.query_one("#query-where", Input).value)
        except UsageError as exc:
            self.notify(error_text(exc, keymap_of(self.app)), title="Query", severity="error", markup=False)
            return
        self.retrieve(self.session, collection, text, self.top_k(), where)

    def top_k(self) -> int:
        """The k typed, or the `rag.top_k` setting when the box holds no positive number."""
        value = self.query_one("#query-k", Input).value
        k = int(value) if value.lstrip("-").isdigit() else 0
        return k if k > 0 else int(self.rag.top_k)

    @work(thread=True, exclusive=True, exit_on_error=False, group="rag-query", description="Query the collection")
    def retrieve(
        self, session: PlaygroundSession, collection: str, text: str, k: int, where: dict[str, Any] | None
    ) -> None:
        from services.rag.query import retrieve

        hits = retrieve(session.client(), collection, text, k=k, where=where, cache_dir=session.cache_dir)
        self.post_message(self.Retrieved(collection, hits))

    @on(Retrieved)
    def _retrieved(self, event: Retrieved) -> None:
        self.hits = event.hits
        table = self.hits_table
        table.clear()
        for number, row in enumerate(hit_rows(event.hits)):
            table.add_row(*row, key=str(number))
        if not event.hits:
            self.query_one("#hit-detail", Static).update(f"no chunks in {event.collection} match")
        else:
            table.move_cursor(row=0)
            self.query_one("#hit-detail", Static).update(hit_detail(event.hits[0]))

    @on(DataTable.RowHighlighted, "#hits-table")
    def _hit_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None and int(event.row_key.value) < len(self.hits):
            self.query_one("#hit-detail", Static).update(hit_detail(self.hits[int(event.row_key.value)]))

    @on(DataTable.RowHighlighted, "#coll-table")
    def _collection_highlighted(self) -> None:
        self.refresh_bindings()

    # ------------------------------------------------------------------ delete

    def action_delete_collection(self) -> None:
        """Delete the highlighted collection after asking."""
        name = self.selected
        if name is None:
            return
        info = self.collections[name]
        note = "\n\nIt was made outside the workbench." if info.read_only else ""
        question = f"Delete collection {name} and its {info.count:,} chunks?{note}\n\nThis cannot be undone."

        def answered(go: bool | None) -> None:
            if go:
                self.delete(self.session, name)

        self.app.push_screen(
            ConfirmScreen("Delete collection", question, confirm_label="Delete", danger=True), answered
        )

    @work(thread=True, exclusive=True, exit_on_error=False, group="rag-remove", description="Delete the collection")
    def delete(self, session: PlaygroundSession, name: str) -> None:
        from services.rag.collections import remove_collection

        remove_collection(session.client(), name)
        self.post_message(self.Removed(name))

    @on(Removed)
    def _removed(self, event: Removed) -> None:
        self.notify(f"collection {event.collection} deleted", title="Playground")
        self.reload()
