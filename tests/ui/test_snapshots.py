"""One snapshot per screen state, 140×42, from fixed data.

Determinism: the fake hub listens on a free port and the status bar shows it as `SHOWN_HUB`, paths
show under `~` (HOME is tmp_path), the GPU and free disk are fixed, cache times are set to a fixed
date, and animations are off.
Regenerate with `pytest tests/ui/test_snapshots.py --snapshot-update` and look at the SVGs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable

from tests.fakehub import FakeHub
from tests.ui.conftest import FIXED_GPU, TINY, SettingsFactory, make_app, settle, wait_for
from workbench.tui.screens.models.hub import HubPane
from workbench.tui.screens.models.local import LocalPane
from workbench.tui.widgets import ConfirmScreen
from workbench.tui.widgets.keys import KeysScreen
from workbench.wiring import Services

SIZE = (140, 42)
SHOWN_HUB = "http://127.0.0.1:47391"
"""The hub address the status bar shows: the snapshot hub's own port changes from run to run."""


@pytest.fixture
def snapshot_hub(tiny_llama_folder: Path) -> Iterator[FakeHub]:
    with FakeHub() as hub:
        hub.add_synthetic_models(120, seed=11)
        hub.add_folder_repo(TINY, tiny_llama_folder, pipeline_tag="text-generation", license="apache-2.0")
        yield hub


async def hub_ready(pilot: Pilot[Any]) -> HubPane:
    pane = pilot.app.screen.query_one(HubPane)
    await wait_for(pilot, lambda: pane.pager is not None and pane.details is not None)
    await wait_for(pilot, lambda: pilot.app.status.hub_state == "online")
    await card_shows(pilot, pane)
    await laid_out(pilot, pane.query_one("#hub-results", DataTable))
    return pane


async def laid_out(pilot: Pilot[Any], table: DataTable[Any]) -> None:
    """Wait until `table`'s columns are as wide as its rows (a page of results that arrived late is
    still at its headers' widths until the table's next idle)."""

    def sized() -> bool:
        if not table.row_count:
            return True
        first = str(table.get_row_at(0)[0])
        widest = max(len(str(table.get_row_at(i)[0])) for i in range(table.row_count))
        laid = table.ordered_columns[0].content_width >= widest and not table._require_update_dimensions
        return laid and first in table.render_line(1).text  # the header is line 0

    await settle(pilot)
    await wait_for(pilot, sized)
    await settle(pilot)


async def card_shows(pilot: Pilot[Any], pane: HubPane) -> None:
    """Wait until the model card (mounted early, hidden, with placeholder blocks) shows the model's own card."""

    def shown() -> bool:
        cards = list(pilot.app.screen.query("#detail-card"))
        details = pane.details
        return (
            bool(cards)
            and cards[0].display
            and details is not None
            and any(details.id in (getattr(block, "source", None) or "") for block in cards[0].children)
        )

    await wait_for(pilot, shown)


async def search_tiny(pilot: Pilot[Any]) -> HubPane:
    pane = await hub_ready(pilot)
    await pilot.press("slash", *"tiny-llama", "enter")
    await wait_for(pilot, lambda: pane.details is not None and pane.details.id == TINY)
    await card_shows(pilot, pane)
    await laid_out(pilot, pane.query_one("#hub-results", DataTable))
    return pane


def test_hub_with_results(snap_compare: Any, make_settings: SettingsFactory, snapshot_hub: FakeHub) -> None:
    app = make_app(make_settings(snapshot_hub.endpoint), hub_shown=SHOWN_HUB)
    assert snap_compare(app, terminal_size=SIZE, run_before=hub_ready)


def test_hub_detail_with_fit_badge(snap_compare: Any, make_settings: SettingsFactory, snapshot_hub: FakeHub) -> None:
    app = make_app(make_settings(snapshot_hub.endpoint), hub_shown=SHOWN_HUB)
    assert snap_compare(app, terminal_size=SIZE, run_before=search_tiny)


def test_download_confirm_modal(snap_compare: Any, make_settings: SettingsFactory, snapshot_hub: FakeHub) -> None:
    async def ask(pilot: Pilot[Any]) -> None:
        await search_tiny(pilot)
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen))
        await pilot.pause()

    settings = make_settings(snapshot_hub.endpoint)
    services = Services(settings, gpus=[FIXED_GPU], free_disk=lambda path: 512 * 10**9)  # the free disk shown
    app = make_app(settings, hub_shown=SHOWN_HUB, services=services)
    assert snap_compare(app, terminal_size=SIZE, run_before=ask)


def test_local_with_the_demo_model(
    snap_compare: Any, make_settings: SettingsFactory, snapshot_hub: FakeHub, demo_cache: Path
) -> None:
    async def local(pilot: Pilot[Any]) -> None:
        await hub_ready(pilot)
        await pilot.press("l")
        pane = pilot.app.screen.query_one(LocalPane)
        await wait_for(pilot, lambda: pane.listing is not None)
        await laid_out(pilot, pane.table)

    app = make_app(make_settings(snapshot_hub.endpoint), hub_shown=SHOWN_HUB)
    assert snap_compare(app, terminal_size=SIZE, run_before=local)


def test_deploy_without_targets(snap_compare: Any, make_settings: SettingsFactory, snapshot_hub: FakeHub) -> None:
    async def deploy(pilot: Pilot[Any]) -> None:
        await hub_ready(pilot)
        await pilot.press("6")
        await settle(pilot)

    app = make_app(make_settings(snapshot_hub.endpoint), hub_shown=SHOWN_HUB)
    assert snap_compare(app, terminal_size=SIZE, run_before=deploy)


def test_keys_screen(snap_compare: Any, make_settings: SettingsFactory, snapshot_hub: FakeHub) -> None:
    async def keys(pilot: Pilot[Any]) -> None:
        await hub_ready(pilot)
        await pilot.press("6")  # over Deploy without targets: nothing behind the list changes on its own
        await settle(pilot)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, KeysScreen))
        await settle(pilot)

    app = make_app(make_settings(snapshot_hub.endpoint), hub_shown=SHOWN_HUB)
    assert snap_compare(app, terminal_size=SIZE, run_before=keys)
