"""The Images mode's tests: the fixture app in a fixed git repository, a fake engine, a fake registry.

No Docker is needed here: `services.images.ops.connect` hands out a `FakeDockerAPI`; the registry
is `tests.fakeregistry.FakeRegistry` with basic auth. The real engine runs in tests/integration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Log, Static

from tests.fakedocker import FakeDockerAPI
from tests.fakeregistry import FakeRegistry
from tests.images_support import git_app
from tests.ui.conftest import SettingsFactory, wait_for
from workbench.settings import Settings
from workbench.tui.screens.images.screen import ImagesScreen

PASSWORD = "canary-ui-Pw-7d2e"


def use_engine(monkeypatch: pytest.MonkeyPatch, api: FakeDockerAPI) -> FakeDockerAPI:
    monkeypatch.setattr("services.images.ops.connect", lambda docker_host=None: api)
    return api


def images_settings(
    make_settings: SettingsFactory,
    tmp_path: Path,
    registry: FakeRegistry | None,
    monkeypatch: pytest.MonkeyPatch,
    *,
    login_server: str | None = None,
) -> Settings:
    """Settings with the fixture app in `tmp_path/repo/apps` and, when given, the fake registry
    (under `login_server` when given: a name the test routes to the fake)."""
    if not (tmp_path / "repo").exists():
        git_app(tmp_path / "repo")
    env = {"images__apps_dir": str(tmp_path / "repo" / "apps"), "images__base_image": "workbench-base:bookworm"}
    if registry is not None:
        monkeypatch.setenv("WORKBENCH_REGISTRY_PASSWORD", PASSWORD)
        env |= {
            "registry__login_server": login_server or registry.server,
            "registry__auth": "password",
            "registry__username": registry.username,
            "registry__plain_http": "true",
        }
    return make_settings(**env)


async def images_mode(pilot: Pilot[Any]) -> ImagesScreen:
    """Switch to the Images mode and wait for its first listing."""
    await pilot.press("5")
    screen = pilot.app.screen
    assert isinstance(screen, ImagesScreen)
    await wait_for(pilot, lambda: screen.inventory is not None)
    await pilot.pause()
    return screen


def text(screen: ImagesScreen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


def column(screen: ImagesScreen, selector: str, index: int) -> list[str]:
    table = screen.query_one(selector, DataTable)
    return [str(table.get_row_at(row)[index]) for row in range(table.row_count)]


def log_lines(screen: ImagesScreen) -> list[str]:
    return [str(line) for line in screen.query_one("#images-log", Log).lines]
