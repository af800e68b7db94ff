"""A row of tabs drawn by one widget: the labels and the bar under them that Textual's `Tabs` draws."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.cells import cell_len
from rich.console import Group
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import BindingType
from textual.message import Message
from textual.reactive import reactive
from textual.renderables.bar import Bar
from textual.widget import Widget

from workbench.tui.keymap import bindings_for


class TabStrip(Widget, can_focus=True):
    """Tab labels over a bar that marks the active one, drawn as Textual's `Tabs` draws them (which
    takes seven widgets for two tabs; the bar moves without its animation). A click on a label or
    the bar, or left and right while it has the focus, chooses a tab; `Activated` says which, also
    when `active` is set in code. Show the tabs' content with a `ContentSwitcher`."""

    ALLOW_SELECT = False
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "tab-strip--tab",
        "tab-strip--hover",
        "tab-strip--active",
        "tab-strip--bar",
    }
    DEFAULT_CSS = """
    TabStrip {
        width: 100%;
        height: 2;
        & > .tab-strip--tab { color: $foreground 50%; }
        & > .tab-strip--hover { color: $foreground; }
        & > .tab-strip--active { color: $foreground; }
        & > .tab-strip--bar { color: $block-cursor-background; background: $foreground 10%; }
        &:focus {
            & > .tab-strip--active {
                text-style: $block-cursor-text-style;
                color: $block-cursor-foreground;
                background: $block-cursor-background;
            }
            & > .tab-strip--bar { background: $foreground 30%; }
        }
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = bindings_for("TabStrip")

    active: reactive[str] = reactive("", init=False)
    """The id of the active tab."""
    hovered: reactive[str | None] = reactive(None)

    @dataclass
    class Activated(Message):
        """A tab became the active one."""

        strip: TabStrip
        tab: str

        @property
        def control(self) -> TabStrip:
            return self.strip

    def __init__(self, tabs: Sequence[tuple[str, str]], *, active: str, id: str | None = None) -> None:
        """`tabs`: (id, label) of each tab, in order."""
        super().__init__(id=id)
        self.tabs = list(tabs)
        self.set_reactive(TabStrip.active, active)

    def watch_active(self, active: str) -> None:
        self.post_message(self.Activated(self, active))

    def spans(self) -> list[tuple[int, int, str, str]]:
        """(start, end, id, label) of each tab's label with its padding of one cell either side."""
        spans, x = [], 0
        for tab, label in self.tabs:
            width = cell_len(label) + 2
            spans.append((x, x + width, tab, label))
            x += width
        return spans

    def render(self) -> Group:
        labels, highlight = Text(no_wrap=True, overflow="crop"), (0, 0)
        for start, end, tab, label in self.spans():
            if tab == self.active:
                look, highlight = "active", (start + 1, end - 1)
            else:
                look = "hover" if tab == self.hovered else "tab"
            labels.append(f" {label} ", self.get_component_rich_style(f"tab-strip--{look}"))
        bar = self.get_component_rich_style("tab-strip--bar")
        return Group(labels, Bar(highlight, Style.from_color(bar.color), Style.from_color(bar.bgcolor)))

    def _tab_at(self, x: int) -> str | None:
        return next((tab for start, end, tab, _ in self.spans() if start <= x < end), None)

    def on_click(self, event: events.Click) -> None:
        if (tab := self._tab_at(event.x)) is not None:
            self.active = tab

    def on_mouse_move(self, event: events.MouseMove) -> None:
        self.hovered = self._tab_at(event.x) if event.y == 0 else None

    def on_leave(self) -> None:
        self.hovered = None

    def action_previous_tab(self) -> None:
        self._move(-1)

    def action_next_tab(self) -> None:
        self._move(1)

    def _move(self, step: int) -> None:
        ids = [tab for tab, _ in self.tabs]
        self.active = ids[(ids.index(self.active) + step) % len(ids)]
