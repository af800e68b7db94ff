"""The Local tab: the HF cache listed, a repo or a revision deleted after confirmation."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Static

from services.demo import EMBEDDING_MODEL, place_in_cache
from tests.ui.conftest import TINY, SettingsFactory, make_app, wait_for
from workbench.tui.screens.models.local import LocalPane
from workbench.tui.widgets import ConfirmScreen


async def local_pane(pilot: Pilot[Any]) -> LocalPane:
    await pilot.press("l")
    pane = pilot.app.screen.query_one(LocalPane)
    await wait_for(pilot, lambda: pane.listing is not None)
    return pane


async def put_cursor_on(pilot: Pilot[Any], pane: LocalPane, key: str) -> None:
    pane.table.move_cursor(row=pane.table.get_row_index(key))
    await pilot.pause()


async def test_local_lists_the_cache(make_settings: SettingsFactory, demo_cache: Path) -> None:
    app = make_app(make_settings())
    async with app.run_test(size=(140, 42)) as pilot:
        pane = await local_pane(pilot)
        assert [m.repo_id for m in pane.listing.models] == [EMBEDDING_MODEL, TINY]  # largest first
        tiny = pane.table.get_row(f"{TINY}@")
        assert tiny[0] == TINY and tiny[1] == "1 revision" and tiny[4] == tiny[5] == "2024-03-01"
        revision = pane.table.get_row_at(pane.table.get_row_index(f"{TINY}@") + 1)
        assert revision[1].startswith("└ ") and revision[1].endswith("(main)")
        summary = str(pane.query_one("#local-summary", Static).render())
        assert summary.startswith("2 models · ") and summary.endswith("in ~/hub")


async def test_delete_a_repo_after_confirmation(
    make_settings: SettingsFactory, demo_cache: Path, tmp_path: Path
) -> None:
    app = make_app(make_settings())
    async with app.run_test(size=(140, 42)) as pilot:
        pane = await local_pane(pilot)
        await put_cursor_on(pilot, pane, f"{TINY}@")
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert f"Delete {TINY} (all revisions)" in app.screen.body
        await pilot.press("y")
        await wait_for(pilot, lambda: pane.listing is not None and len(pane.listing.models) == 1)
        assert not (demo_cache / "models--workbench-demo--tiny-llama").exists()
        assert any(n.message.startswith(f"Deleted {TINY}") for n in app.notices)
        assert f"{TINY}@" not in pane.targets


async def test_delete_cancelled_keeps_the_model(make_settings: SettingsFactory, demo_cache: Path) -> None:
    app = make_app(make_settings())
    async with app.run_test(size=(140, 42)) as pilot:
        pane = await local_pane(pilot)
        await put_cursor_on(pilot, pane, f"{TINY}@")
        await pilot.press("delete")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("escape")
        await pilot.pause()
        assert (demo_cache / "models--workbench-demo--tiny-llama").exists()
        assert not any(n.message.startswith("Deleted") for n in app.notices)


async def test_delete_one_revision(make_settings: SettingsFactory, demo_cache: Path, tmp_path: Path) -> None:
    snapshot = next((demo_cache / "models--workbench-demo--tiny-llama" / "snapshots").iterdir())
    other = tmp_path / "other-revision"
    shutil.copytree(snapshot, other)
    (other / "README.md").unlink()
    (other / "README.md").write_text("# another revision\n")
    old = place_in_cache(demo_cache, TINY, other, ref="v2")
    app = make_app(make_settings())
    async with app.run_test(size=(140, 42)) as pilot:
        pane = await local_pane(pilot)
        assert pane.table.get_row(f"{TINY}@")[1] == "2 revisions"
        await put_cursor_on(pilot, pane, f"{TINY}@{old.name}")
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert f"{TINY} @ {old.name[:12]}" in app.screen.body
        await pilot.press("y")

        def one_revision_left() -> bool:  # a listing read while the delete ran may lack the repo for a moment
            return f"{TINY}@" in pane.table.rows and pane.table.get_row(f"{TINY}@")[1] == "1 revision"

        await wait_for(pilot, one_revision_left)
        assert f"{TINY}@{old.name}" not in pane.targets
        assert not old.exists() and snapshot.exists()


async def test_the_local_tab_is_built_when_first_shown(make_settings: SettingsFactory, demo_cache: Path) -> None:
    app = make_app(make_settings())
    async with app.run_test(size=(140, 42)) as pilot:
        await pilot.pause()
        assert not app.screen.query(LocalPane)  # not in the first frame
        await pilot.click("#models-tabs", offset=(7, 0))  # "Local", by mouse, as by key (`local_pane`)
        await wait_for(pilot, lambda: app.screen.query(LocalPane) and app.screen.local.listing is not None)
        assert app.screen.local.listing is not None and app.screen.local.listing.models
        await pilot.press("h", "l")  # back and forth: the same pane, its table focused
        assert len(app.screen.query(LocalPane)) == 1 and app.focused is app.screen.local.table
