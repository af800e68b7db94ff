"""The app's stylesheet parses its sources once at start, and again when a theme changes the variables."""

from __future__ import annotations

from typing import Any

import pytest
import textual.css.stylesheet
from textual.app import App, ComposeResult
from textual.color import Color
from textual.screen import Screen
from textual.widgets import Static

from tests.ui.conftest import settle
from workbench.tui.stylesheet import VariablesStylesheet


class Mode(Screen[None]):
    def compose(self) -> ComposeResult:
        yield Static("hello")


class Themed(App[None]):
    """One mode (its first screen refreshes the app's CSS, as the workbench's modes do)."""

    CSS = "Static { background: $primary; }"
    MODES = {"main": Mode}  # noqa: RUF012
    DEFAULT_MODE = "main"

    def __init__(self, ours: bool) -> None:
        super().__init__()
        if ours:
            self.stylesheet = VariablesStylesheet(variables=self.get_css_variables())


def count_parses(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every time the app's own CSS is parsed (by where it was read from)."""
    parsed: list[object] = []
    parse = textual.css.stylesheet.parse

    def counted(scope: str, css: str, read_from: Any, **kwargs: Any) -> Any:
        if "Themed" in str(read_from):
            parsed.append(read_from)
        return parse(scope, css, read_from, **kwargs)

    monkeypatch.setattr(textual.css.stylesheet, "parse", counted)
    return parsed


@pytest.mark.parametrize(("ours", "parses"), [(True, 1), (False, 3)])
async def test_the_first_frame_parses_the_css_once(monkeypatch: pytest.MonkeyPatch, ours: bool, parses: int) -> None:
    parsed = count_parses(monkeypatch)
    async with Themed(ours).run_test() as pilot:
        await settle(pilot)
        assert len(parsed) == parses  # Textual's own stylesheet: three times


async def test_a_new_theme_parses_again_with_its_colours(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed = count_parses(monkeypatch)
    app = Themed(True)
    async with app.run_test() as pilot:
        await settle(pilot)
        app.theme = "textual-light"
        await settle(pilot)
        assert len(parsed) == 2
        primary = Color.parse(app.get_css_variables()["primary"])
        assert app.query_one(Static).styles.background == primary != Color.parse("#0178D4")  # the dark theme's
