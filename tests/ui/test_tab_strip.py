"""TabStrip: one widget that draws what Textual's tabs draw, and chooses tabs by click and keys."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widget import Widget
from textual.widgets import ContentSwitcher, Static, TabbedContent, TabPane

from tests.ui.conftest import Cell, drawn_line, settle, text_of
from workbench.tui.widgets.tab_strip import TabStrip

TABS = [("hub", "Hub"), ("local", "Local models")]


class Tabs(App[None]):
    """The two tabs as a TabStrip over a ContentSwitcher, or as Textual's TabbedContent."""

    AUTO_FOCUS = None

    def __init__(self, ours: bool) -> None:
        super().__init__()
        self.ours = ours
        self.activated: list[str] = []
        self.animation_level = "none"  # Textual's underline slides; ours moves at once

    def compose(self) -> ComposeResult:
        if self.ours:
            yield TabStrip(TABS, active="hub")
            with ContentSwitcher(initial="hub"):
                yield from (Static(label, id=tab) for tab, label in TABS)
        else:
            with TabbedContent(initial="hub"):
                yield from (TabPane(label, Static(label), id=tab) for tab, label in TABS)

    def on_tab_strip_activated(self, event: TabStrip.Activated) -> None:
        self.query_one(ContentSwitcher).current = event.tab
        self.activated.append(event.tab)


def lines(app: App[None]) -> list[list[Cell]]:
    """The two lines of the tabs."""
    return [drawn_line(app.screen, y) for y in (0, 1)]


async def looks(ours: bool) -> list[list[list[Cell]]]:
    """The tabs as drawn while they have the focus: at first, with the mouse over the second, after
    `right`, with the mouse over the first. (Unfocused, in the Models screen: the snapshot tests.)"""
    app = Tabs(ours)
    seen = []
    async with app.run_test(size=(60, 8)) as pilot:
        tabs = TabStrip if ours else "ContentTabs"
        app.set_focus(app.query_one(tabs, Widget))
        await settle(pilot)
        seen.append(lines(app))
        for offset, key in [((8, 0), "right"), ((2, 0), None)]:
            await pilot.hover(tabs, offset=offset)
            await settle(pilot)
            seen.append(lines(app))
            if key:
                await pilot.press(key)
                await settle(pilot)
                seen.append(lines(app))
    return seen


async def test_it_draws_what_textuals_tabs_draw() -> None:
    ours, theirs = await looks(True), await looks(False)
    assert ours == theirs
    labels = text_of(ours[0][0])
    assert labels.startswith(" Hub  Local models ")


async def test_a_click_or_a_key_chooses_a_tab_and_says_so() -> None:
    app = Tabs(True)
    async with app.run_test(size=(60, 8)) as pilot:
        strip = app.query_one(TabStrip)
        await pilot.click(TabStrip, offset=(8, 0))  # the second label
        await settle(pilot)
        assert strip.active == "local" and app.query_one(ContentSwitcher).current == "local"
        await pilot.click(TabStrip, offset=(2, 1))  # the bar under the first
        await settle(pilot)
        assert strip.active == "hub" and app.focused is strip
        await pilot.press("left")  # round to the last
        await settle(pilot)
        assert strip.active == "local" and app.activated == ["local", "hub", "local"]
