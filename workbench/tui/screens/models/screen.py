"""The Models mode: the Hub tab (search, details, fit, download) and the Local tab (the HF cache)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.widgets import ContentSwitcher, Input

from services.fit import Workload
from workbench.tui.keymap import bindings_for
from workbench.tui.messages import CacheChanged
from workbench.tui.screens.base import ModeScreen
from workbench.tui.screens.models.hub import HubPane
from workbench.tui.widgets.tab_strip import TabStrip

if TYPE_CHECKING:
    from workbench.tui.screens.models.local import LocalPane


class ModelsScreen(ModeScreen):
    """Browse the hub and the local cache."""

    MODE = "models"
    AUTO_FOCUS = "#hub-results"

    BINDINGS: ClassVar[list[BindingType]] = bindings_for("ModelsScreen")

    def compose_body(self) -> ComposeResult:
        models = self.context.settings.models
        workload = Workload(seq_len=models.fit_seq_len, batch_size=models.fit_batch_size)
        yield TabStrip([("hub", "Hub"), ("local", "Local")], active="hub", id="models-tabs")
        with ContentSwitcher(id="models-panes", initial="hub"):
            with Vertical(id="hub"):
                yield HubPane(workload, models.search_page_size, id="hub-pane")
            yield Vertical(id="local")  # its pane is built when first needed: not in the first frame

    @property
    def hub(self) -> HubPane:
        return self.query_one(HubPane)

    @property
    def local(self) -> LocalPane:
        """The Local tab's pane, built on first use."""
        return self.build_local()

    def build_local(self) -> LocalPane:
        """The Local tab's pane, mounted now if it is not yet (its module loads then: not in the first frame)."""
        from workbench.tui.screens.models.local import LocalPane

        built = self.query(LocalPane)
        if built:
            return built.first()
        pane = LocalPane(id="local-pane")
        self.query_one("#local", Vertical).mount(pane)
        return pane

    @property
    def tabs(self) -> TabStrip:
        return self.query_one("#models-tabs", TabStrip)

    @on(TabStrip.Activated, "#models-tabs")
    def _tab_activated(self, event: TabStrip.Activated) -> None:
        self._show(event.tab)  # chosen by key or by mouse on the tabs

    def _show(self, tab: str) -> None:
        """The tab's content, the Local pane built when first shown."""
        if tab == "local":
            self.build_local()
        self.query_one("#models-panes", ContentSwitcher).current = tab

    def action_show_tab(self, tab: str) -> None:
        self.tabs.active = tab
        self._show(tab)
        pane: HubPane | LocalPane = self.hub if tab == "hub" else self.local
        pane.focus_list()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "leave_input":  # outside a text box: listed on `?`, but idle
            return True if isinstance(self.focused, Input) else None
        return True

    def action_leave_input(self) -> None:
        """Leave a text box (search, fit inputs) for the list of the current tab."""
        if not isinstance(self.focused, Input):
            raise SkipAction()
        self.action_show_tab(self.tabs.active)

    def action_search(self) -> None:
        self.action_show_tab("hub")
        self.hub.action_focus_search()

    def action_download(self) -> None:
        self.action_show_tab("hub")
        self.hub.action_download()

    def action_delete(self) -> None:
        self.action_show_tab("local")
        self.local.action_delete()

    def on_screen_resume(self) -> None:
        # The cache may have changed while another mode or a modal was in front.
        self._reload_local()

    @on(CacheChanged)
    def _cache_changed(self, event: CacheChanged) -> None:
        event.stop()
        self._reload_local()

    def _reload_local(self) -> None:
        """Read the cache again into the Local tab's pane (one not built yet reads it when first shown)."""
        if self.query("#local-pane"):
            self.local.reload()
