"""The key footer: one widget that draws what Textual's `Footer` draws, presses a key when clicked,
and follows the focus, redrawing only when the keys it shows change."""

from __future__ import annotations

from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import Footer

from tests.fakehub import FakeHub
from tests.ui.conftest import SettingsFactory, drawn_line, make_app, settle, text_of, wait_for
from workbench.tui.screens.models.hub import HubPane
from workbench.tui.widgets import KeyFooter


class Keys(App[None]):
    """Shown keys (one disabled, two on one action), a hidden one, the palette's; either footer."""

    BINDINGS = [  # noqa: RUF012
        Binding("d", "download", "Download"),
        Binding("x", "delete", "Delete", tooltip="Delete the model"),
        Binding("s", "search", "Search"),
        Binding("slash", "search", "Search again"),
        Binding("q", "quit", "Quit", show=False),
    ]

    def __init__(self, footer: type[Widget]) -> None:
        super().__init__()
        self.footer, self.pressed = footer, []

    def compose(self) -> ComposeResult:
        yield self.footer()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return None if action == "delete" else True  # None: shown, disabled

    def action_download(self) -> None:
        self.pressed.append("download")


async def drawn(footer: type[Widget], width: int) -> tuple[list[Any], list[Any]]:
    """The footer's line as drawn at first and with the mouse over its second key."""
    app = Keys(footer)
    async with app.run_test(size=(width, 6)) as pilot:
        await settle(pilot)
        shown = app.query_one(footer)
        first = drawn_line(shown, 0)
        await pilot.hover(footer, offset=(14, 0))
        await settle(pilot)
        return first, drawn_line(shown, 0)


@pytest.mark.parametrize("width", [100, 30])
async def test_it_draws_what_footer_draws(width: int) -> None:
    ours, theirs = await drawn(KeyFooter, width), await drawn(Footer, width)
    if width < 40:  # Footer scrolls what does not fit; ours leaves it out: compare what both show
        ours, theirs = [line[:12] + line[-10:] for line in ours], [line[:12] + line[-10:] for line in theirs]
    else:
        assert text_of(ours[0]).startswith(" d Download  x Delete  s Search  ")
    assert ours == theirs


async def test_a_click_presses_its_key_and_a_disabled_one_rings() -> None:
    app = Keys(KeyFooter)
    async with app.run_test(size=(100, 6)) as pilot:
        await settle(pilot)
        footer = app.query_one(KeyFooter)
        assert await pilot.click(KeyFooter, offset=(2, 0)) and app.pressed == ["download"]
        await pilot.hover(KeyFooter, offset=(14, 0))
        assert footer.tooltip == "Delete the model"
        await pilot.click(KeyFooter, offset=(14, 0))
        await settle(pilot)
        assert app.pressed == ["download"]  # disabled: nothing ran


def shown_keys(app: Any) -> list[str]:
    return [item.key for item in app.screen.query_one(KeyFooter).shown.items]


async def test_the_footer_follows_the_focus_and_redraws_only_when_its_keys_change(
    make_settings: SettingsFactory, synthetic_hub: FakeHub
) -> None:
    app = make_app(make_settings(synthetic_hub.endpoint))
    async with app.run_test(size=(140, 42)) as pilot:
        pane = app.screen.query_one(HubPane)
        await wait_for(pilot, lambda: pane.table.row_count > 0)
        await settle(pilot)
        footer = app.screen.query_one(KeyFooter)
        shown = footer.shown
        assert "d" in shown_keys(app)  # download: the results table has the focus

        app.screen.query_one("#hub-task").focus()  # a filter of the same pane: the same keys
        await settle(pilot)
        assert footer.shown is shown

        app.screen.set_focus(None)  # outside the pane: no download key
        await wait_for(pilot, lambda: "d" not in shown_keys(app))
