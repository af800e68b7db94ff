"""LazySelect: no option list until first opened, then the keys, values and messages of Select."""

from __future__ import annotations

from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.widgets import Select
from textual.widgets._select import SelectCurrent, SelectOverlay

from workbench.tui.widgets.lazy_select import LazySelect

OPTIONS = [("alpha", "a"), ("beta", "b"), ("gamma", "c")]


class Pair(App[None]):
    """The same options in a Select and a LazySelect; records every Changed value by widget id."""

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
    return str(select.query_one(SelectCurrent).query_one("#label").render())


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
