"""The Images mode with Pilot: listing, build with a streamed log, push with per-layer progress,
cancel with escape, failures as notifications, palette commands. Fake engine, fake registry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.command import CommandPalette

from tests.fakedocker import LAYERS, STEPS, FakeDockerAPI
from tests.fakeregistry import FakeRegistry
from tests.images_support import short_head
from tests.ui.conftest import SettingsFactory, make_app, wait_for
from tests.ui.images_support import PASSWORD, column, images_mode, images_settings, log_lines, text, use_engine


@pytest.fixture
def registry() -> Iterator[FakeRegistry]:
    with FakeRegistry(auth="basic", password=PASSWORD) as fake:
        yield fake


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> FakeDockerAPI:
    return use_engine(monkeypatch, FakeDockerAPI())


@pytest.fixture
def app(make_settings: SettingsFactory, tmp_path: Path, registry: FakeRegistry, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The app with the fixture app in `tmp_path/repo` and the fake registry; its engine is `engine`,
    or the one a test hands to `use_engine` before it runs the app."""
    return make_app(images_settings(make_settings, tmp_path, registry, monkeypatch))


async def test_lists_apps_and_registry_tags(
    app: Any, tmp_path: Path, registry: FakeRegistry, engine: FakeDockerAPI
) -> None:
    registry.add_image("hello", "older")
    async with app.run_test(size=(140, 42)) as pilot:
        screen = await images_mode(pilot)
        assert column(screen, "#images-apps", 0) == ["hello"]
        assert column(screen, "#images-apps", 1) == [short_head(tmp_path / "repo")]
        assert column(screen, "#images-apps", 2) == ["no"]
        assert column(screen, "#images-apps", 5) == ["~/repo/apps/hello"]
        assert column(screen, "#images-remote", 0) == ["older"]
        assert column(screen, "#images-remote", 1) == [registry.add_image("hello", "older")[:19]]
        assert f"Registry {registry.server} · login: password" in text(screen, "#images-registry")
        assert app.notices == []


async def test_build_then_push_shows_log_layers_and_digest(
    app: Any, tmp_path: Path, registry: FakeRegistry, engine: FakeDockerAPI
) -> None:
    async with app.run_test(size=(140, 42)) as pilot:
        screen = await images_mode(pilot)
        await pilot.press("b")
        await wait_for(pilot, lambda: text(screen, "#images-summary").startswith("built "))
        tag = f"{registry.server}/hello:{short_head(tmp_path / 'repo')}"
        assert f"built {tag}" in text(screen, "#images-summary")
        lines = log_lines(screen)
        assert lines[0] == f"Step 1/{len(STEPS)} : FROM ${{BASE_IMAGE}}"
        assert lines[-1] == "built " + engine.images_by_ref[tag]["Id"][7:19]
        await wait_for(pilot, lambda: column(screen, "#images-apps", 2) == ["yes"])
        assert column(screen, "#images-local", 0) == [short_head(tmp_path / "repo")]

        await pilot.press("p")
        await wait_for(pilot, lambda: text(screen, "#images-summary").startswith("pushed "))
        assert screen.last_push is not None
        assert f"digest {screen.last_push.digest}" in text(screen, "#images-summary")
        assert column(screen, "#images-layers", 0) == [layer for layer, _ in LAYERS]
        assert set(column(screen, "#images-layers", 1)) == {"Pushed"}
        assert engine.pushes[0]["auth_config"]["password"] == PASSWORD
        assert any(n.title == "Images: pushed" for n in app.notices)
        assert screen.busy is None
        assert all(PASSWORD not in n.message for n in app.notices)


async def test_escape_cancels_a_build(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = use_engine(monkeypatch, FakeDockerAPI(step_delay=0.3))
    async with app.run_test(size=(140, 42)) as pilot:
        screen = await images_mode(pilot)
        await pilot.press("b")
        await wait_for(pilot, lambda: log_lines(screen))
        await pilot.press("b")  # one at a time
        assert any("A build is running" in n.message for n in app.notices)
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen.busy is None)
        assert text(screen, "#images-summary").startswith("build cancelled: build of hello cancelled")
        # the warning comes through the app's message queue, after the mode has settled
        await wait_for(
            pilot, lambda: any(n.severity == "warning" and "of hello cancelled" in n.message for n in app.notices)
        )
        assert engine.images_by_ref == {} and len(engine.builds) == 1


async def test_a_failed_build_is_a_notification_and_the_mode_goes_on(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    use_engine(monkeypatch, FakeDockerAPI(fail_step=2))
    async with app.run_test(size=(140, 42)) as pilot:
        screen = await images_mode(pilot)
        await pilot.press("b")
        await wait_for(pilot, lambda: screen.busy is None and any(n.severity == "error" for n in app.notices))
        error = next(n for n in app.notices if n.severity == "error")
        assert error.title == "Build the image" and f"failed at step 2/{len(STEPS)}" in error.message
        assert "useradd: failure while writing changes" in log_lines(screen)
        assert text(screen, "#images-summary").startswith("build failed:")


async def test_push_needs_a_built_image_and_a_registry(
    make_settings: SettingsFactory, tmp_path: Path, engine: FakeDockerAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(images_settings(make_settings, tmp_path, None, monkeypatch))
    async with app.run_test(size=(140, 42)) as pilot:
        screen = await images_mode(pilot)
        assert "No registry configured" in text(screen, "#images-registry")
        assert column(screen, "#images-apps", 4) == ["-"]
        await pilot.press("p")
        assert app.notices[-1].message == "Set registry.login_server to push."
        assert engine.pushes == []


async def test_push_before_build_says_to_build(app: Any, engine: FakeDockerAPI) -> None:
    async with app.run_test(size=(140, 42)) as pilot:
        await images_mode(pilot)
        await pilot.press("p")
        assert "press b to build it" in app.notices[-1].message
        assert engine.pushes == []


async def test_palette_builds_and_pushes(app: Any, engine: FakeDockerAPI) -> None:
    async with app.run_test(size=(140, 42)) as pilot:
        for command, done in (("images: build", lambda: engine.images_by_ref), ("images: push", lambda: engine.pushes)):
            await pilot.press("ctrl+p")
            await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette))
            await pilot.press(*command, "enter")
            await wait_for(pilot, done)
            await wait_for(pilot, lambda: app.screen.busy is None)  # type: ignore[attr-defined]
        assert app.current_mode == "images"
