"""Snapshots of the Playground, 140×42: the empty chat tab, a retrieval in the Collections tab, a suite matrix.

Determinism: the demo workspace (tiny Llama, MiniLM, demo documents and suite) under the test's
home, shown as `~`; generation is greedy; the run id is fixed; no timings are on screen (the
suite detail shows a base-variant cell, whose prompt carries no paths).
Regenerate with `pytest tests/ui/test_playground_snapshots.py --snapshot-update` and look at the SVGs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from services.evals import runner
from tests.ui import playground_support as support
from tests.ui.conftest import SettingsFactory, make_app, wait_for

SIZE = (140, 42)
RUN_ID = "20240301-120000-abcd"


@pytest.fixture
def workspace(tmp_path: Path, demo_cache: Path, demo_template: Path) -> Path:
    data_dir = tmp_path / "workspace"
    support.copy_demo(demo_template, data_dir)
    return data_dir


def test_empty_chat_tab(snap_compare: Any, make_settings: SettingsFactory, workspace: Path) -> None:
    async def chat(pilot: Pilot[Any]) -> None:
        await support.playground(pilot)
        await pilot.pause()

    assert snap_compare(make_app(make_settings()), terminal_size=SIZE, run_before=chat)


def test_collections_tab_with_results(snap_compare: Any, make_settings: SettingsFactory, workspace: Path) -> None:
    async def results(pilot: Pilot[Any]) -> None:
        screen = await support.playground(pilot, "collections")
        pane = screen.collections
        await wait_for(pilot, lambda: pane.selected == support.COLLECTION)
        await support.query_collection(pilot, pane)
        pane.hits_table.focus()
        await pilot.pause()

    support.ingest_demo(workspace, workspace.parent / "hub")
    assert snap_compare(make_app(make_settings()), terminal_size=SIZE, run_before=results)


def test_suite_matrix(
    snap_compare: Any, make_settings: SettingsFactory, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def matrix(pilot: Pilot[Any]) -> None:
        screen = await support.playground(pilot, "suites")
        pane = screen.suites
        pane.action_run()
        await wait_for(pilot, lambda: pane.run is not None, timeout=240)
        pane.matrix.focus()
        await pilot.pause()

    monkeypatch.setattr(runner, "new_run_id", lambda: RUN_ID)
    support.ingest_demo(workspace, workspace.parent / "hub")
    assert snap_compare(make_app(make_settings()), terminal_size=SIZE, run_before=matrix)
