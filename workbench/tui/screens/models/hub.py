"""The Hub tab of the Models mode: search, details with the fit estimate, download."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.coordinate import Coordinate
from textual.message import Message
from textual.timer import Timer
from textual.widgets import DataTable, Input, Select, Static
from textual.worker import Worker, get_current_worker

from services.errors import HubUnavailableError
from services.fit import FitEstimate, Workload
from services.gpu import Gpu
from services.hub.connection import HubConnection
from services.hub.details import ModelDetails, model_details
from services.hub.download import DownloadResult
from services.hub.search import ModelPager, ModelSummary, search_models
from services.progress import CancelToken, TransferProgress
from workbench.present.models import summary_row
from workbench.tui.keymap import bindings_for
from workbench.tui.messages import CacheChanged
from workbench.tui.screens.base import Pane
from workbench.tui.screens.models import hub_rows as shown
from workbench.tui.screens.models.detail import ModelDetail, import_card_widget
from workbench.tui.screens.models.hub_rows import COLUMNS, SearchQuery, download_question, fit_for, results_line
from workbench.tui.widgets import ConfirmScreen, TransferBar, short_path
from workbench.tui.widgets.lazy_select import LazySelect
from workbench.tui.widgets.table import Table

if TYPE_CHECKING:
    from workbench.wiring import Services


class HubPane(Pane):
    """Search results on the left, the highlighted model on the right, a download bar below."""

    BINDINGS: ClassVar[list[BindingType]] = bindings_for("HubPane")

    DEBOUNCE_S = 0.3
    """Quiet time after the last keystroke before a search starts."""
    DETAIL_DELAY_S = 0.2
    """Time the cursor rests on a row before its details load."""

    @dataclass
    class Results(Message):
        """A page of search results for search number `generation`."""

        generation: int
        pager: ModelPager
        rows: list[ModelSummary]
        first: bool

    @dataclass
    class Offline(Message):
        """The hub cannot be reached; `message` says why."""

        message: str

    @dataclass
    class DetailsReady(Message):
        details: ModelDetails
        fit: FitEstimate | None

    @dataclass
    class FitReady(Message):
        repo_id: str
        fit: FitEstimate | None

    @dataclass
    class DownloadPlanned(Message):
        """Access and disk are fine: ask the user."""

        details: ModelDetails
        free_bytes: int
        cache: str

    @dataclass
    class Progress(Message):
        """Download progress; a newer one replaces an unprocessed older one."""

        progress: TransferProgress

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, HubPane.Progress)

    @dataclass
    class Downloaded(Message):
        result: DownloadResult

    def __init__(self, workload: Workload, page_size: int, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.workload = workload
        self.page_size = page_size
        self.generation = 0
        self.last_query: SearchQuery | None = None
        self.pager: ModelPager | None = None
        self.paging = False
        self.offline_message: str | None = None
        self.summaries: dict[str, ModelSummary] = {}
        self.details: ModelDetails | None = None
        self.cancel_token: CancelToken | None = None
        self._search_timer: Timer | None = None
        self._detail_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="hub-filters"):
            yield Input(placeholder="search models (/)", id="hub-query")
            yield LazySelect([(t, t) for t in shown.TASKS], prompt="any task", id="hub-task", classes="hub-filter")
            yield LazySelect(
                [(x, x) for x in shown.LIBRARIES], prompt="any library", id="hub-library", classes="hub-filter"
            )
            yield LazySelect(
                [(x, x) for x in shown.LICENCES], prompt="any licence", id="hub-license", classes="hub-filter"
            )
            gated = [("gated", True), ("open", False)]
            yield LazySelect(gated, prompt="gated/open", id="hub-gated", classes="hub-filter")
            sorts = [(s, s) for s in shown.SORTS]
            yield LazySelect(sorts, allow_blank=False, value="downloads", id="hub-sort", classes="hub-filter")
        yield Static("", id="hub-offline")
        with Vertical(id="hub-main"):
            yield Table(id="hub-results", cursor_type="row", zebra_stripes=True)
            yield ModelDetail(self.workload, id="hub-detail")
        yield Static("", id="hub-info")
        yield TransferBar(id="hub-transfer")

    @property
    def conn(self) -> HubConnection:
        return self.context.hub

    @property
    def table(self) -> DataTable[str]:
        return self.query_one("#hub-results", DataTable)

    @property
    def downloading(self) -> bool:
        return self.cancel_token is not None

    def on_mount(self) -> None:
        self.table.add_columns(*COLUMNS)
        self.call_after_refresh(self.search_now)

    def on_unmount(self) -> None:
        if self.cancel_token is not None:
            self.cancel_token.cancel()

    # ------------------------------------------------------------------ search

    def current_query(self) -> SearchQuery:
        def chosen(select_id: str) -> object:
            value = self.query_one(select_id, Select).value
            return None if value is Select.NULL else value

        return SearchQuery(
            text=self.query_one("#hub-query", Input).value.strip(),
            task=chosen("#hub-task"),  # type: ignore[arg-type]
            library=chosen("#hub-library"),  # type: ignore[arg-type]
            license=chosen("#hub-license"),  # type: ignore[arg-type]
            gated=chosen("#hub-gated"),  # type: ignore[arg-type]
            sort=chosen("#hub-sort") or "downloads",  # type: ignore[arg-type]
        )

    @on(Input.Changed, "#hub-query")
    def _query_typed(self) -> None:
        if self._search_timer is not None:
            self._search_timer.stop()
        self._search_timer = self.set_timer(self.DEBOUNCE_S, self.search_now)

    @on(Input.Submitted, "#hub-query")
    def _query_submitted(self) -> None:
        self.search_now(force=True)
        self.table.focus()

    @on(Select.Changed, ".hub-filter")
    def _filter_changed(self) -> None:
        self.search_now()

    def search_now(self, force: bool = False) -> None:
        """Start a search for what the widgets ask, unless it is the one already shown."""
        if self._search_timer is not None:
            self._search_timer.stop()
            self._search_timer = None
        query = self.current_query()
        if query == self.last_query and not force:
            return
        self.last_query = query
        self.generation += 1
        self.pager, self.paging = None, False
        self.set_info("searching…")
        self.search(self.conn, query, self.generation)

    @work(thread=True, exclusive=True, exit_on_error=False, group="hub-search", description="Search the hub")
    def search(self, conn: HubConnection, query: SearchQuery, generation: int) -> None:
        try:
            pager = search_models(
                conn,
                query.text,
                task=query.task,
                library=query.library,
                license=query.license,
                gated=query.gated,
                sort=query.sort,
                page_size=self.page_size,
            )
            rows = pager.next_page()
        except HubUnavailableError as exc:
            self.post_message(self.Offline(exc.message))
            return
        if not get_current_worker().is_cancelled:
            self.post_message(self.Results(generation, pager, rows, first=True))

    @work(thread=True, exclusive=True, exit_on_error=False, group="hub-page", description="Load more search results")
    def load_page(self, pager: ModelPager, generation: int) -> None:
        try:
            rows = pager.next_page()
        except HubUnavailableError as exc:
            self.post_message(self.Offline(exc.message))
            return
        self.post_message(self.Results(generation, pager, rows, first=False))

    @on(Results)
    def _show_results(self, event: Results) -> None:
        if event.generation != self.generation:
            return
        self.show_online()
        table = self.table
        if event.first:  # columns too: a new search's columns fit its own rows, not every search's before
            table.clear(columns=True).add_columns(*COLUMNS)
            self.summaries.clear()
        for summary in event.rows:
            if summary.id not in self.summaries:
                self.summaries[summary.id] = summary
                table.add_row(*summary_row(summary), key=summary.id)
        self.pager, self.paging = event.pager, False
        self.set_info(results_line(table.row_count, event.pager.exhausted))

    @on(Offline)
    def _show_offline(self, event: Offline) -> None:
        self.offline_message = event.message
        self.paging = False
        self.last_query = None  # the same search may be retried
        self.query_one("#hub-offline", Static).update(event.message)
        self._show_banner(True)

    def show_online(self) -> None:
        self.offline_message = None
        self._show_banner(False)

    def _show_banner(self, offline: bool) -> None:
        """The offline line takes the place of the results and the info line. `display` on the three
        widgets, not a class on the pane: that would restyle every widget inside it."""
        self.query_one("#hub-offline").display = offline
        self.query_one("#hub-main").display = not offline
        self.query_one("#hub-info").display = not offline and not self.downloading

    def set_info(self, text: str) -> None:
        self.query_one("#hub-info", Static).update(text)

    # ------------------------------------------------------------------ details

    @on(DataTable.RowHighlighted, "#hub-results")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is None:
            return
        if event.cursor_row >= self.table.row_count - 1:
            self.load_more()
        if self._detail_timer is not None:
            self._detail_timer.stop()
        repo_id = event.row_key.value
        self._detail_timer = self.set_timer(self.DETAIL_DELAY_S, lambda: self.show_model(repo_id))

    def load_more(self) -> None:
        if self.pager is None or self.pager.exhausted or self.paging:
            return
        self.paging = True
        self.set_info(f"{self.table.row_count} models · loading more…")
        self.load_page(self.pager, self.generation)

    def show_model(self, repo_id: str) -> None:
        """Load the details of `repo_id` into the detail pane."""
        if self.details is not None and self.details.id == repo_id:
            return
        self.query_one(ModelDetail).show_loading(repo_id)
        self.load_details(self.conn, repo_id, self.query_one(ModelDetail).workload, self.context.gpus)

    @work(thread=True, exclusive=True, exit_on_error=False, group="hub-details", description="Load model details")
    def load_details(self, conn: HubConnection, repo_id: str, workload: Workload, gpus: list[Gpu] | None) -> None:
        try:
            details = model_details(conn, repo_id)
        except HubUnavailableError as exc:
            self.post_message(self.Offline(exc.message))
            return
        fit = fit_for(details, workload, gpus)
        import_card_widget()
        if not get_current_worker().is_cancelled:
            self.post_message(self.DetailsReady(details, fit))

    @on(DetailsReady)
    async def _show_details(self, event: DetailsReady) -> None:
        detail = self.query_one(ModelDetail)
        await detail.ready()  # built with the first model shown
        self.details = event.details
        detail.show_details(event.details, event.fit, self.conn.url)

    @on(ModelDetail.WorkloadChanged)
    def _workload_changed(self, event: ModelDetail.WorkloadChanged) -> None:
        if self.details is not None:
            self.estimate_fit(self.details, event.workload, self.context.gpus)

    @work(thread=True, exclusive=True, exit_on_error=False, group="hub-fit", description="Estimate the fit")
    def estimate_fit(self, details: ModelDetails, workload: Workload, gpus: list[Gpu] | None) -> None:
        fit = fit_for(details, workload, gpus)
        if not get_current_worker().is_cancelled:
            self.post_message(self.FitReady(details.id, fit))

    @on(FitReady)
    def _show_fit(self, event: FitReady) -> None:
        if self.details is not None and self.details.id == event.repo_id:
            self.query_one(ModelDetail).show_fit(event.fit)

    # ------------------------------------------------------------------ download

    def focus_list(self) -> None:
        self.table.focus()

    def action_focus_search(self) -> None:
        self.query_one("#hub-query", Input).focus()

    def action_download(self) -> None:
        """Download the highlighted model after checking access and disk, and asking."""
        row = self.table.cursor_row
        if self.downloading:
            self.notify("A download is running: wait for it, or press esc to cancel it.", title="Download")
            return
        if not self.table.row_count:
            return
        repo_id = str(self.table.coordinate_to_cell_key(Coordinate(row, 0)).row_key.value)
        if self.details is None or self.details.id != repo_id:
            self.notify(f"Details of {repo_id} are still loading; press d again in a moment.")
            self.show_model(repo_id)
            return
        self.plan_download(self.context.services, self.details)

    @work(thread=True, exclusive=True, exit_on_error=False, group="download-plan", description="Check the download")
    def plan_download(self, services: Services, details: ModelDetails) -> None:
        from workbench.usecases.models import check_download

        plan = check_download(services, details)
        self.post_message(self.DownloadPlanned(details, plan.free_bytes, short_path(plan.cache)))

    @on(DownloadPlanned)
    def _ask_download(self, event: DownloadPlanned) -> None:
        question = download_question(event.details, event.free_bytes, event.cache)
        details = event.details

        def answered(go: bool | None) -> None:
            if go and not self.downloading:
                self.start_download(details)

        self.app.push_screen(ConfirmScreen("Download model", question, confirm_label="Download"), answered)

    def start_download(self, details: ModelDetails) -> None:
        self.cancel_token = CancelToken()
        transfer = self.query_one(TransferBar)
        transfer.start(f"{details.id} (esc cancels)")
        self._swap_info_for_transfer(True)
        self.download(self.context.services, details.id, self.cancel_token)

    @work(thread=True, exclusive=True, exit_on_error=False, group="download", description="Download a model")
    def download(self, services: Services, repo_id: str, cancel: CancelToken) -> None:
        from workbench.usecases.models import download

        def progress(event: TransferProgress) -> None:
            self.post_message(self.Progress(event))

        result = download(services, repo_id, on_progress=progress, cancel=cancel)
        self.post_message(self.Downloaded(result))

    @on(Progress)
    def _show_progress(self, event: Progress) -> None:
        self.query_one(TransferBar).show_progress(event.progress)

    @on(Downloaded)
    def _downloaded(self, event: Downloaded) -> None:
        self.notify(shown.download_line(event.result), title="Download complete")
        self.post_message(CacheChanged())

    @on(Worker.StateChanged)
    def _download_finished(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "download" and event.worker.is_finished:
            self.cancel_token = None
            self._swap_info_for_transfer(False)

    def _swap_info_for_transfer(self, downloading: bool) -> None:
        """The one-row transfer bar takes the place of the one-row info line: the table keeps its size,
        so showing progress costs no relayout of the results (a class on the pane would restyle them all)."""
        self.query_one("#hub-info").display = not downloading and self.offline_message is None
        self.query_one(TransferBar).display = downloading

    def action_cancel_download(self) -> None:
        # The bindings stay the same while a download runs: a footer rebuild stalls the UI ~0.1 s.
        if self.cancel_token is None:
            raise SkipAction()  # escape goes on to the screen (leave a text box)
        self.cancel_token.cancel()
        self.query_one(TransferBar).note("cancelling…")
