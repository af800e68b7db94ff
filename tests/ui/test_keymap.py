"""`[ui] keys` remaps the registry's actions: the binding, the footer's key and the `?` screen follow."""

from __future__ import annotations

import json

from tests.fakehub import FakeHub
from tests.ui.conftest import SettingsFactory, make_app, wait_for
from workbench.tui.screens.models.screen import ModelsScreen
from workbench.tui.widgets.keys import KeysScreen
from workbench.tui.widgets.tab_strip import TabStrip


async def test_remapped_keys_change_the_binding_and_the_keys_screen(
    make_settings: SettingsFactory, fake_hub: FakeHub
) -> None:
    keys = {"models.local": "f6,L", "app.keys": "f1"}
    app = make_app(make_settings(fake_hub.endpoint, ui__keys=json.dumps(keys)))
    async with app.run_test(size=(140, 42)) as pilot:
        await wait_for(pilot, lambda: app.focused is not None and app.focused.id == "hub-results")
        tabs = app.screen.query_one(TabStrip)
        await pilot.press("l")  # the default key no longer switches tabs
        assert tabs.active == "hub"
        await pilot.press("f6")
        assert tabs.active == "local"
        await pilot.press("h")
        assert tabs.active == "hub"
        await pilot.press("L")
        assert tabs.active == "local"
        bound = {key for key, active in app.screen.active_bindings.items() if active.binding.id == "models.local"}
        assert bound == {"f6", "L"}

        await pilot.press("question_mark")
        assert isinstance(app.screen, ModelsScreen)
        await pilot.press("f1")
        assert isinstance(app.screen, KeysScreen)
        rows = {row.binding_id: row for row in app.screen.rows}
        assert (rows["models.local"].keys, rows["models.local"].description) == ("f6 / L", "Local")
        assert (rows["app.keys"].keys, rows["app.keys"].description) == ("f1", "Keys")
        assert rows["models.hub"].keys == "h"
        await pilot.press("escape")
        assert isinstance(app.screen, ModelsScreen)
