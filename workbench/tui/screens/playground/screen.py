"""The Playground mode: chat and compare variants, build and inspect RAG collections, run prompt suites.

Thin: each tab is a pane in its own module; the chat engine and the Chroma client are opened once,
in workers, and shared by the tabs through a `PlaygroundSession`.
"""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.widgets import Input, TabbedContent, TabPane, TextArea

from services.playground import PlaygroundSession
from workbench.tui.keymap import bindings_for
from workbench.tui.messages import CacheChanged, OpenAdapter
from workbench.tui.screens.base import ModeScreen
from workbench.tui.screens.playground.chat import ChatPane
from workbench.tui.screens.playground.collections import CollectionsPane
from workbench.tui.screens.playground.suites import SuitesPane

TABS = ("chat", "collections", "suites")


class PlaygroundScreen(ModeScreen):
    """Chat, Collections and Suites tabs."""

    MODE = "playground"
    AUTO_FOCUS = "#transcript-a"
    """The transcript, not the input: number keys keep switching modes; i (or "playground: Ask") goes to the input."""

    CSS_PATH = "playground.tcss"
    """Read when a screen of this mode is first shown: off the app's start path."""
    BINDINGS: ClassVar[list[BindingType]] = bindings_for("PlaygroundScreen")

    def __init__(self, mode_id: str | None = None) -> None:
        super().__init__(mode_id)
        self.session: PlaygroundSession | None = None

    def compose_body(self) -> ComposeResult:
        services = self.context.services
        settings, data_dir = services.settings, services.data_dir
        self.session = session = PlaygroundSession(
            cache_dir=services.cache_dir, client_factory=services.chroma_factory(), endpoints=services.chat_endpoints()
        )
        with TabbedContent(id="playground-tabs", initial="chat"):
            with TabPane("Chat (f2)", id="chat"):
                yield ChatPane(session, data_dir=data_dir, id="chat-pane")
            with TabPane("Collections (f3)", id="collections"):
                yield CollectionsPane(session, data_dir=data_dir, rag=settings.rag, id="collections-pane")
            with TabPane("Suites (f4)", id="suites"):
                yield SuitesPane(session, data_dir=data_dir, id="suites-pane")

    @property
    def chat(self) -> ChatPane:
        return self.query_one(ChatPane)

    @property
    def collections(self) -> CollectionsPane:
        return self.query_one(CollectionsPane)

    @property
    def suites(self) -> SuitesPane:
        return self.query_one(SuitesPane)

    def on_unmount(self) -> None:
        if self.session is not None:
            self.session.close()

    def action_show_tab(self, tab: str) -> None:
        """Show a tab and focus its main widget."""
        self.query_one("#playground-tabs", TabbedContent).active = tab
        focus = {"chat": "#chat-input", "collections": "#coll-table", "suites": "#suite-matrix"}[tab]
        self.query_one(focus).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "leave_input":  # outside a text box: listed on `?`, but idle
            return True if isinstance(self.focused, Input | TextArea) else None
        return True

    def action_leave_input(self) -> None:
        """Leave a text box for the tab's list, or in Chat for the transcript: then keys are keys again
        (`1`-`7` switch modes, `i` comes back to the question box)."""
        if not isinstance(self.focused, Input | TextArea):
            raise SkipAction()
        tab = self.query_one("#playground-tabs", TabbedContent).active
        if tab != "chat":
            self.action_show_tab(tab)
        else:
            self.query_one("#transcript-a").focus()

    # ------------------------------------------------------------------ palette entry points

    def action_ask(self) -> None:
        """Go to the chat input."""
        self.action_show_tab("chat")

    def action_compare(self) -> None:
        self.action_show_tab("chat")
        self.chat.action_compare()

    def action_save_case(self) -> None:
        self.action_show_tab("chat")
        self.chat.action_save_case()

    def action_ingest(self) -> None:
        self.action_show_tab("collections")
        self.collections.action_ingest()

    def action_run_suite(self) -> None:
        self.action_show_tab("suites")
        self.suites.action_run()

    @on(OpenAdapter)
    def _open_adapter(self, event: OpenAdapter) -> None:
        self.action_show_tab("chat")
        self.chat.open_adapter(event.base_model, event.adapter)

    @on(CacheChanged)
    def _cache_changed(self, event: CacheChanged) -> None:
        event.stop()
        self.chat.reload_choices()

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        # Models and adapters may have appeared while another mode was in front.
        self.chat.reload_choices()
