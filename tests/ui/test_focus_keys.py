"""Keys that work from anywhere: alt+1..7 switch modes while a text box has the focus, and
escape leaves the box (then `1`-`7` switch modes again and `i` comes back)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual import events
from textual.pilot import Pilot
from textual.widgets import Input

from tests.ui import playground_support as support
from tests.ui.conftest import SettingsFactory, make_app, wait_for
from workbench.tui.widgets.keys import KeysScreen

SIZE = (140, 42)


async def alt_digit(pilot: Pilot[Any], digit: str) -> None:
    """alt+DIGIT as a terminal delivers it: ESC then the digit, which Textual parses into a key
    that also carries the printable digit (so a text box would type it unless a binding takes it first)."""
    pilot.app.post_message(events.Key(f"alt+{digit}", digit))
    await pilot.pause()


@pytest.fixture
def workspace(tmp_path: Path, demo_cache: Path, demo_template: Path) -> Path:
    return support.copy_demo(demo_template, tmp_path / "workspace")


async def test_alt_digits_switch_modes_while_the_question_box_has_the_focus(
    make_settings: SettingsFactory, workspace: Path
) -> None:
    app = make_app(make_settings())
    async with app.run_test(size=SIZE) as pilot:
        screen = await support.playground(pilot)
        await pilot.press("i")
        box = screen.query_one("#chat-input", Input)
        assert app.focused is box
        await pilot.press("1", "i")  # typed, not a mode switch
        assert (app.current_mode, box.value) == ("playground", "1i")
        await alt_digit(pilot, "2")
        await wait_for(pilot, lambda: app.current_mode == "finetune")
        await alt_digit(pilot, "3")
        await wait_for(pilot, lambda: app.current_mode == "playground")
        assert box.value == "1i"  # nothing typed is lost


async def test_escape_leaves_the_question_box_and_digits_switch_modes_again(
    make_settings: SettingsFactory, workspace: Path
) -> None:
    app = make_app(make_settings())
    async with app.run_test(size=SIZE) as pilot:
        screen = await support.playground(pilot)
        await pilot.press("i")
        assert app.focused is screen.query_one("#chat-input", Input)
        await pilot.press("escape")
        assert not isinstance(app.focused, Input)
        await pilot.press("i")
        assert app.focused is screen.query_one("#chat-input", Input)
        await pilot.press("escape", "4")
        await wait_for(pilot, lambda: app.current_mode == "artifacts")


async def test_the_keys_screen_names_both_keys_of_a_mode(make_settings: SettingsFactory, workspace: Path) -> None:
    app = make_app(make_settings())
    async with app.run_test(size=SIZE) as pilot:
        await support.playground(pilot)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, KeysScreen))
        rows = {row.binding_id: row for row in app.screen.rows}
        assert rows["mode.models"].keys == "1"
        assert rows["mode.models-anywhere"].keys == "alt+1"
        assert rows["playground.leave-input"].keys == "esc"
