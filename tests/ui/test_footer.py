"""The key footer is built once at start, kept while the focus moves between widgets with the same
keys, and rebuilt when the keys it shows change."""

from __future__ import annotations

from typing import Any

import pytest
from textual.widgets._footer import FooterKey

from tests.fakehub import FakeHub
from tests.ui.conftest import SettingsFactory, make_app, settle, wait_for
from workbench.tui.screens.models.hub import HubPane
from workbench.tui.widgets import KeyFooter


def shown_keys(app: Any) -> list[str]:
    return [key.key for key in app.screen.query(FooterKey)]


async def test_the_footer_is_rebuilt_only_when_its_keys_change(
    make_settings: SettingsFactory, synthetic_hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds: list[KeyFooter] = []
    recompose = KeyFooter.recompose

    async def counted(footer: KeyFooter) -> None:
        builds.append(footer)
        await recompose(footer)

    monkeypatch.setattr(KeyFooter, "recompose", counted)
    app = make_app(make_settings(synthetic_hub.endpoint))
    async with app.run_test(size=(140, 42)) as pilot:
        pane = app.screen.query_one(HubPane)
        await wait_for(pilot, lambda: pane.table.row_count > 0)
        await settle(pilot)
        assert len(builds) == 1  # the screen updates its bindings three times while it starts
        keys = list(app.screen.query(FooterKey))
        assert "d" in shown_keys(app)  # download: the results table has the focus

        app.screen.query_one("#hub-task").focus()  # a filter of the same pane: the same keys
        await settle(pilot)
        assert list(app.screen.query(FooterKey)) == keys and len(builds) == 1

        app.screen.set_focus(None)  # outside the pane: no download key
        await wait_for(pilot, lambda: "d" not in shown_keys(app))
        assert len(builds) == 2
