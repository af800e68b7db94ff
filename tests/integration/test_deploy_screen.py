"""The Deploy mode as a newcomer uses it: press the deploy key on an app, watch the steps, see the new
version answering behind the proxy, press rollback and see the old one answering again.

The target is the test bed's deploy host over SSH; settings come from `WORKBENCH_*` variables.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, Input

from services.deploy import releases
from services.store import Store
from tests.integration.deploy_support import Images, get, pushed_images
from tests.ui.conftest import make_app, settle, wait_for
from workbench.settings import load_settings
from workbench.tui.screens.deploy.screen import DeployScreen
from workbench.tui.widgets import ConfirmScreen
from workbench.tui.widgets.prompt import PromptScreen

PORT = 18108


@pytest.fixture(scope="module")
def images(tb: dict[str, str]) -> Iterator[Images]:
    """The fixture's versions pushed as `fx-ui`, the app this module deploys (the shared `images` are
    `deploy-fixture`)."""
    with pushed_images(tb, "fx-ui") as pushed:
        yield pushed


def settings_for(tb: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    password = Path(tb["WORKBENCH_TESTBED_REGISTRY_PASSWORD_FILE"]).read_text().strip()
    monkeypatch.setenv("WB_TEST_REGISTRY_PASSWORD", password)
    monkeypatch.setenv("HOME", str(tmp_path))
    staging = {
        "host": tb["WORKBENCH_TESTBED_DEPLOY_SSH"].split("@")[1],
        "user": "root",
        "identity_file": tb["WORKBENCH_TESTBED_DEPLOY_SSH_KEY"],
        "known_hosts": tb["WORKBENCH_TESTBED_DEPLOY_KNOWN_HOSTS"],
        "proxy_image": tb["WORKBENCH_TESTBED_PROXY_IMAGE"],
        "apps": {"fx-ui": {"port": PORT, "ready_timeout_s": 30}},
    }
    environ = {
        "WORKBENCH_WORKSPACE__DATA_DIR": str(tmp_path / "workspace"),
        "WORKBENCH_HUB__ENDPOINT": "http://127.0.0.1:9",
        "WORKBENCH_HUB__CACHE_DIR": str(tmp_path / "hub"),
        "WORKBENCH_TARGETS__STAGING": json.dumps(staging),
        "WORKBENCH_REGISTRY__LOGIN_SERVER": tb["WORKBENCH_TESTBED_REGISTRY"],
        "WORKBENCH_REGISTRY__AUTH": "password",
        "WORKBENCH_REGISTRY__USERNAME": tb["WORKBENCH_TESTBED_REGISTRY_USER"],
        "WORKBENCH_REGISTRY__PASSWORD_ENV": "WB_TEST_REGISTRY_PASSWORD",
        "WORKBENCH_IMAGES__APPS_DIR": str(tmp_path / "no-apps"),
    }
    return load_settings(project_file=None, user_file=tmp_path / "none.toml", environ=environ)


async def deploy_version(pilot: Any, screen: DeployScreen, version: str) -> None:
    await pilot.press("d")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, PromptScreen))
    pilot.app.screen.query_one(Input).value = version
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen))
    await pilot.press("y")
    await wait_for(pilot, lambda: screen.busy)
    await wait_for(pilot, lambda: not screen.busy, timeout=120)


def step_states(screen: DeployScreen) -> dict[str, str]:
    table = screen.query_one("#deploy-steps", DataTable)
    return {str(table.get_cell_at((i, 1))): str(table.get_cell_at((i, 0))) for i in range(table.row_count)}  # type: ignore[arg-type]


async def test_deploy_then_rollback_with_one_key_each(
    tb: dict[str, str], images: Images, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(tb, tmp_path, monkeypatch)
    app = make_app(settings)
    async with app.run_test(size=(140, 42)) as pilot:
        await pilot.press("6")
        await wait_for(pilot, lambda: isinstance(app.screen, DeployScreen))
        screen = app.screen
        assert isinstance(screen, DeployScreen)
        await wait_for(pilot, lambda: bool(screen.found), timeout=60)
        assert screen.found[0].app == "fx-ui" and screen.found[0].state == "not deployed"

        await deploy_version(pilot, screen, "1.0.0")
        assert get(PORT)[1]["version"] == "1.0.0"
        await deploy_version(pilot, screen, "2.0.0")
        assert get(PORT)[1]["version"] == "2.0.0"
        states = step_states(screen)
        assert all(states[s] == "✓" for s in ("lock", "resolve", "pull", "start", "ready", "switch", "record"))
        assert "is live on staging" in str(screen.query_one("#deploy-status").render())

        await pilot.press("b")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: screen.busy)
        await wait_for(pilot, lambda: not screen.busy, timeout=120)
        assert get(PORT)[1]["version"] == "1.0.0"
        await wait_for(pilot, lambda: bool(screen.found) and screen.found[0].version == "1.0.0", timeout=30)
        await settle(pilot)
        shown = str(screen.query_one("#deploy-releases").render())
        assert shown.count("1.0.0") == 2 and "2.0.0" in shown and "rollback of" in shown

    history = releases.history(Store(settings.workspace.data_dir), "fx-ui", "staging")
    assert [(r.version, r.status) for r in history] == [("1.0.0", "live"), ("2.0.0", "retained"), ("1.0.0", "retained")]
