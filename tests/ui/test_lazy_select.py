"""LazySelect: no option list until first opened, then the keys, values and messages of Select."""

from __future__ import annotations

from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.widget import Widget
from textual.widgets import Select
from textual.widgets._select import SelectCurrent, SelectOverlay

from tests.ui.conftest import Cell, drawn_line, text_of
from workbench.tui.widgets.lazy_select import LazySelect

OPTIONS = [("alpha", "a"), ("beta", "b"), ("gamma", "c")]


class Pair(App[None]):
    """The same options in a Select and a LazySelect; records every Changed value by widget id."""

    AUTO_FOCUS = None
    CSS = "SelectCurrent Static#label { text-wrap: nowrap; text-overflow: ellipsis; }"  # as the workbench's

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        self.kwargs = kwargs
        self.changes: dict[str, list[object]] = {"plain": [], "lazy": []}

    def compose(self) -> ComposeResult:
        yield Select(OPTIONS, id="plain", **self.kwargs)
        yield LazySelect(OPTIONS, id="lazy", **self.kwargs)

    def on_select_changed(self, event: Select.Changed) -> None:
        assert event.select.id is not None
        self.changes[event.select.id].append(event.value)


def label(select: Select[Any]) -> str:
    """The label the select shows (as text), read from what it draws on the screen."""
    return text_of(drawn(select)).strip("▊▎ ").removesuffix("▼").removesuffix("▲").strip()


def drawn(widget: Widget) -> list[Cell]:
    """The line through the middle of `widget`."""
    return drawn_line(widget, widget.region.height // 2)


@pytest.mark.parametrize(
    ("kwargs", "keys"),
    [
        ({"prompt": "any"}, ["enter", "down", "down", "enter"]),
        ({"prompt": "any"}, ["space", "escape"]),
        ({"allow_blank": False, "value": "b"}, ["down", "down", "enter"]),
        ({"allow_blank": False, "value": "b"}, ["enter", "up", "enter"]),
    ],
)
async def test_keys_give_what_select_gives(kwargs: dict[str, Any], keys: list[str]) -> None:
    app = Pair(**kwargs)
    async with app.run_test() as pilot:
        lazy, plain = app.query_one("#lazy", LazySelect), app.query_one("#plain", Select)
        assert not lazy.query(SelectOverlay) and plain.query(SelectOverlay)
        assert label(lazy) == label(plain)
        for select in (plain, lazy):
            select.focus()
            await pilot.press(*keys)
            await pilot.pause()
        assert lazy.query(SelectOverlay)
        assert lazy.value == plain.value and label(lazy) == label(plain)
        assert lazy.expanded == plain.expanded
        assert app.changes["lazy"] == app.changes["plain"]


async def test_a_click_opens_it_and_a_value_set_in_code_shows() -> None:
    app = Pair(prompt="any")
    async with app.run_test() as pilot:
        lazy = app.query_one("#lazy", LazySelect)
        lazy.value = "c"
        await pilot.pause()
        assert label(lazy) == "gamma" and app.changes["lazy"][-1] == "c"
        await pilot.click("#lazy")
        await pilot.pause()
        assert lazy.expanded and lazy.query_one(SelectOverlay).highlighted == 3
        await pilot.press("up", "enter")
        await pilot.pause()
        assert lazy.value == "b" and not lazy.expanded


@pytest.mark.parametrize("width", [40, 12])
async def test_it_draws_what_select_draws(width: int) -> None:
    """Blank, with a value, focused and cut short: the same characters in the same colours."""
    app = Pair(prompt="any task")
    async with app.run_test() as pilot:
        lazy, plain = app.query_one("#lazy", LazySelect), app.query_one("#plain", Select)
        for select in (lazy, plain):
            select.styles.width = width
        await pilot.pause()
        assert drawn(lazy) == drawn(plain)
        assert label(lazy) == ("any task" if width > 12 else "any…")
        lazy.value = plain.value = "c"
        await pilot.pause()
        assert drawn(lazy) == drawn(plain)
        focused, expanded = [], []
        for select in (lazy, plain):
            select.focus()
            await pilot.pause()
            focused.append(drawn(select))
            await pilot.press("enter")
            expanded.append(drawn(select.query_one(SelectCurrent)))
            await pilot.press("escape")
        assert focused[0] == focused[1] and expanded[0] == expanded[1]
        assert "▲" in text_of(expanded[0])
