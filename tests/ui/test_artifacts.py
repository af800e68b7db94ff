"""The Artifacts mode driven as a person would: list with lineage, push, pull, label, refused delete.

The remote is a folder (`artifacts.remote_dir`), so these tests need no emulator; the same code
runs against Azurite in tests/integration/test_artifacts.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from services.artifacts.model import parse_ref
from services.artifacts.workspace import Artifacts
from tests.ui.conftest import SettingsFactory, make_app, settle, wait_for
from workbench.tui.screens.artifacts.screen import ArtifactsScreen
from workbench.tui.widgets.prompt import PromptScreen

FIXED_AT = "2024-03-01T12:00:00+00:00"
SIZE = (140, 42)


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Artifacts:
    """A workspace with one adapter version, made at a fixed time by a fixed user."""
    monkeypatch.setattr("services.artifacts.catalog.utcnow", lambda: FIXED_AT)
    folder = tmp_path / "adapter-src"
    folder.mkdir()
    (folder / "adapter_config.json").write_text('{"r": 8}')
    (folder / "adapter_model.safetensors").write_bytes(bytes(range(256)) * 64)
    arts = Artifacts(tmp_path / "workspace", actor="alice@devbox")
    lineage = {
        "base_model": {"id": "workbench-demo/tiny-llama", "revision": "d4209350abcdef"},
        "dataset": {"path": "/data/instructions.jsonl", "sha256": "5c7b190b" * 8},
        "job_id": "demo-run-20240301-120000-000000",
        "git_revision": "91c28e3" * 5,
        "metrics": {"eval_loss": 1.2345},
    }
    arts.local.register("adapter", "demo-run", "v1", folder, lineage=lineage, actor=arts.actor)
    return arts


def settings_for(make_settings: SettingsFactory, tmp_path: Path) -> Any:
    return make_settings(artifacts__remote_dir=str(tmp_path / "remote"))


async def open_artifacts(pilot: Pilot[Any]) -> ArtifactsScreen:
    await pilot.press("4")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ArtifactsScreen))
    screen = pilot.app.screen
    assert isinstance(screen, ArtifactsScreen)
    await wait_for(pilot, lambda: bool(screen.infos) or screen.query_one(DataTable).row_count > 0)
    await settle(pilot)
    return screen


def detail(screen: ArtifactsScreen) -> str:
    return str(screen.query_one("#artifacts-detail", Static).render())


async def test_lineage_push_pull_and_label(
    make_settings: SettingsFactory, tmp_path: Path, workspace: Artifacts
) -> None:
    app = make_app(settings_for(make_settings, tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_artifacts(pilot)
        assert [i.manifest.ref for i in screen.infos] == ["demo-run@v1"]
        text = detail(screen)
        assert "workbench-demo/tiny-llama @ d4209350abcd" in text
        assert "demo-run-20240301-120000-000000" in text and "eval_loss" in text

        await pilot.press("p")
        await wait_for(pilot, lambda: "pushed" in str(screen.query_one("#artifacts-status", Static).render()))
        assert (tmp_path / "remote" / "adapter" / "demo-run" / "v1" / "manifest.json").is_file()

        await pilot.press("r")
        await wait_for(pilot, lambda: screen.where == "remote" and bool(screen.infos))
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))
        await pilot.press("enter")  # the suggested label: staging
        await wait_for(pilot, lambda: "staging" in str(screen.query_one("#artifacts-status", Static).render()))
        await settle(pilot)
        assert screen.infos[0].labels == ("staging",)
        log = workspace.store.audit_log(subject="artifact:demo-run")
        assert [(e.action, e.details.get("label")) for e in log][:1] == [("label.set", "staging")]

        await pilot.press("x")
        await pilot.press("y")
        await wait_for(pilot, lambda: any("labelled staging" in n.message for n in app.notices))
        assert (tmp_path / "remote" / "adapter" / "demo-run" / "v1" / "manifest.json").is_file()

    fresh = Artifacts(tmp_path / "fresh", open_remote=lambda: _folder(tmp_path / "remote"))
    fresh.pull(parse_ref("demo-run:staging"))
    pulled = fresh.folder(fresh.local.resolve(parse_ref("demo-run@v1")))
    assert (pulled / "adapter_model.safetensors").read_bytes() == bytes(range(256)) * 64


def _folder(path: Path) -> Any:
    from services.artifacts.storage import LocalFolderStorage

    return LocalFolderStorage(path)


async def test_remote_unconfigured_says_how_to_set_it(make_settings: SettingsFactory, workspace: Artifacts) -> None:
    app = make_app(make_settings())
    async with app.run_test(size=SIZE) as pilot:
        await open_artifacts(pilot)
        await pilot.press("r")
        await wait_for(pilot, lambda: any("no remote artifact storage" in n.message for n in app.notices))
        assert any("artifacts.blob_endpoint" in n.message for n in app.notices)


def test_artifacts_snapshot(
    snap_compare: Any, make_settings: SettingsFactory, tmp_path: Path, workspace: Artifacts
) -> None:
    async def ready(pilot: Pilot[Any]) -> None:
        await open_artifacts(pilot)
        await settle(pilot)

    app = make_app(settings_for(make_settings, tmp_path))
    assert snap_compare(app, terminal_size=SIZE, run_before=ready)
