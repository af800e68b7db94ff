"""The app shell: modes, keys, help, command palette, status bar, first start, worker errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from textual.command import CommandList, CommandPalette

from services.errors import NotFoundError
from tests.fakehub import FakeHub
from tests.ui.conftest import TINY, SettingsFactory, copy_cache, make_app, settle, wait_for
from workbench.tui.screens.models.screen import ModelsScreen
from workbench.tui.widgets import ModeBar, StatusBar
from workbench.tui.widgets.keys import KeysScreen


async def test_number_keys_switch_modes(make_settings: SettingsFactory) -> None:
    app = make_app(make_settings())
    async with app.run_test(size=(140, 42)) as pilot:
        assert app.current_mode == "models" and isinstance(app.screen, ModelsScreen)
        modes = [("2", "finetune"), ("7", "infra"), ("4", "artifacts"), ("6", "deploy"), ("3", "playground")]
        for key, mode in [*modes, ("5", "images"), ("1", "models")]:
            await pilot.press(key)
            await pilot.pause()
            assert app.current_mode == mode
            assert app.screen.query_one(ModeBar).active == mode


async def test_what_start_up_built_is_out_of_the_collectors_sight_and_collecting_resumes(
    make_settings: SettingsFactory,
) -> None:
    import gc

    app = make_app(make_settings())
    gc.disable()  # as `workbench` starts the app (cli.main)
    try:
        async with app.run_test(size=(140, 42)) as pilot:
            await pilot.pause()
            assert gc.get_freeze_count() > 10_000  # modules, styles and the first screen: no full-GC pause for them
            assert gc.isenabled()  # collecting again from the first frame
    finally:
        gc.enable()


async def test_keys_remapped_from_settings(make_settings: SettingsFactory) -> None:
    settings = make_settings(ui__keys=json.dumps({"mode.infra": "f7", "mode.models": "m,1"}))
    app = make_app(settings)
    async with app.run_test(size=(140, 42)) as pilot:
        await pilot.press("f7")
        assert app.current_mode == "infra"
        assert app.screen.query_one(ModeBar).keys["infra"] == "f7"
        await pilot.press("m")
        assert app.current_mode == "models"
        await pilot.press("7")  # the default key no longer switches
        assert app.current_mode == "models"


async def test_question_mark_lists_every_key(make_settings: SettingsFactory, fake_hub: FakeHub) -> None:
    app = make_app(make_settings(fake_hub.endpoint))
    async with app.run_test(size=(140, 42)) as pilot:
        await wait_for(pilot, lambda: app.focused is not None and app.focused.id == "hub-results")
        await pilot.press("question_mark")
        assert isinstance(app.screen, KeysScreen)
        ids = {row.binding_id for row in app.screen.rows}
        assert {"mode.models", "mode.infra", "app.keys", "models.download", "models.search", "models.hub"} <= ids
        download = next(row for row in app.screen.rows if row.binding_id == "models.download")
        assert (download.keys, download.description) == ("d", "Download")
        await pilot.press("escape")
        assert isinstance(app.screen, ModelsScreen)


async def test_command_palette_has_area_verb_commands(make_settings: SettingsFactory) -> None:
    app = make_app(make_settings())
    async with app.run_test(size=(140, 42)) as pilot:
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*"models: down")
        commands = app.screen.query_one(CommandList)
        await wait_for(pilot, lambda: commands.option_count > 0)
        titles = [str(commands.get_option_at_index(i).prompt) for i in range(commands.option_count)]
        assert "models: Download" in titles[0]

        await pilot.press("escape")
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*"app: switch to infra", "enter")
        await wait_for(pilot, lambda: app.current_mode == "infra")


async def test_status_bar_shows_workspace_hub_and_gpu(
    make_settings: SettingsFactory, fake_hub: FakeHub, tmp_path: Path
) -> None:
    app = make_app(make_settings(fake_hub.endpoint))
    async with app.run_test(size=(140, 42)) as pilot:
        await wait_for(pilot, lambda: app.status.hub_state == "online")
        info = app.screen.query_one(StatusBar).info
        assert info.workspace == "~/workspace"
        assert info.hub == fake_hub.endpoint
        assert info.gpu == "NVIDIA L4 · 22.0 GiB free"
        await pilot.press("4")
        assert app.screen.query_one(StatusBar).info == info


async def test_gpu_detected_in_a_worker(make_settings: SettingsFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("workbench.tui.app.detect_gpus", lambda: [])
    app = make_app(make_settings(), gpus=None)
    async with app.run_test(size=(140, 42)) as pilot:
        await wait_for(pilot, lambda: app.status.gpu == "CPU only")


async def test_first_start_creates_the_demo_workspace(
    make_settings: SettingsFactory, demo_template: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    made: list[Path] = []

    def fake_init_demo(*, cache_dir: Path, data_dir: Path) -> object:
        made.append(copy_cache(demo_template, cache_dir))
        return type("Made", (), {"created": [TINY]})()

    monkeypatch.setattr("services.demo.init_demo", fake_init_demo)
    app = make_app(make_settings(), init_demo_on_empty=True)
    async with app.run_test(size=(140, 42)) as pilot:
        local = app.screen.local

        def listed() -> set[str]:
            return {m.repo_id for m in local.listing.models} if local.listing is not None else set()

        # The pane may list the cache mid-copy (the embedding model only); the demo's end lists it again.
        await wait_for(pilot, lambda: bool(made) and TINY in listed())
        assert made == [tmp_path / "hub"]
        assert any(n.message == "Creating demo workspace…" for n in app.notices)


async def test_first_start_skipped_when_the_cache_has_models(
    make_settings: SettingsFactory, demo_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("services.demo.init_demo", lambda **_: pytest.fail("demo init ran"))
    app = make_app(make_settings(), init_demo_on_empty=True)
    async with app.run_test(size=(140, 42)) as pilot:
        await settle(pilot)
        assert not any("demo" in n.message for n in app.notices)


async def test_worker_error_becomes_a_notification(
    make_settings: SettingsFactory, demo_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(path: Path) -> object:
        raise NotFoundError(f"cache at {path} vanished", hint="check hub.cache_dir")

    monkeypatch.setattr("workbench.tui.screens.models.local.list_cached_models", broken)
    app = make_app(make_settings())
    async with app.run_test(size=(140, 42)) as pilot:
        await pilot.press("l")
        await wait_for(pilot, lambda: any(n.title == "Read the HF cache" for n in app.notices))
        notice = next(n for n in app.notices if n.title == "Read the HF cache")
        assert notice.severity == "error"
        assert "vanished" in notice.message and "check hub.cache_dir" in notice.message

        monkeypatch.setattr("workbench.tui.screens.models.local.list_cached_models", lambda path: 1 / 0)
        await pilot.press("r")
        await wait_for(pilot, lambda: any("ZeroDivisionError" in n.message for n in app.notices))
        assert app.is_running
        await pilot.press("2")
        assert app.current_mode == "finetune"


def test_app_module_imports_no_heavy_library() -> None:
    import subprocess
    import sys

    code = "import sys, json, workbench.tui.app; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    roots = {name.split(".")[0] for name in json.loads(out)}
    heavy = {"torch", "transformers", "peft", "bitsandbytes", "chromadb", "docker", "azure", "huggingface_hub"}
    assert roots & heavy == set()
