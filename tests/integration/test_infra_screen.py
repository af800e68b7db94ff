"""The Infra mode in the terminal app, against the fake ARM: validate, what-if, up, down."""

import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from services.gpu import Gpu
from tests.fakearm import FakeArm, StaticCredential
from tests.integration.conftest import arm_environ
from workbench.settings import load_settings
from workbench.tui.app import WorkbenchApp
from workbench.tui.screens.infra.screen import InfraScreen
from workbench.tui.widgets import ConfirmScreen
from workbench.tui.widgets.typed_confirm import TypedConfirmScreen


async def wait_for(pilot: Pilot[Any], condition: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the Infra screen")
        await pilot.pause(0.02)


def summary(screen: InfraScreen) -> str:
    return str(screen.query_one("#infra-summary", Static).render())


def column(screen: InfraScreen, index: int) -> list[str]:
    table = screen.query_one("#infra-table", DataTable)
    return [str(table.get_row_at(row)[index]) for row in range(table.row_count)]


@pytest.fixture
def app(fake_arm: FakeArm, tmp_path: Path, ssh_key: Path, monkeypatch: pytest.MonkeyPatch) -> WorkbenchApp:
    monkeypatch.setattr("services.infra.arm.session.default_credential", StaticCredential)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("TEXTUAL_ANIMATIONS", "none")
    environ = {
        **arm_environ(fake_arm, tmp_path, ssh_key),
        "WORKBENCH_HUB__ENDPOINT": "http://127.0.0.1:9",
        "WORKBENCH_HUB__CACHE_DIR": str(tmp_path / "hub"),
        "WORKBENCH_WORKSPACE__DATA_DIR": str(tmp_path / "workspace"),
    }
    settings = load_settings(project_file=None, user_file=tmp_path / "none.toml", environ=environ)
    return WorkbenchApp(settings, init_demo_on_empty=False, gpus=[Gpu(0, "NVIDIA L4", 24 * 1024**3, 22 * 1024**3)])


async def test_validate_what_if_up_and_down(app: WorkbenchApp, fake_arm: FakeArm, tmp_path: Path) -> None:
    async with app.run_test(size=(140, 42)) as pilot:
        await pilot.press("7")
        screen = app.screen
        assert isinstance(screen, InfraScreen)
        assert "rg-llm-workbench-dev" in str(screen.query_one("#infra-target", Static).render())

        await pilot.press("v")
        await wait_for(pilot, lambda: summary(screen).startswith("dev: valid"))
        assert "documentation range" in " ".join(column(screen, 2))

        await pilot.press("w")
        await wait_for(pilot, lambda: "to create" in summary(screen))
        assert "does not exist yet" in summary(screen)
        assert set(column(screen, 1)) == {"create"}

        await pilot.press("u")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: summary(screen).startswith("deployed llm-workbench-dev"))
        assert "registryLoginServer" in column(screen, 0)
        saved = tomllib.loads((tmp_path / "config" / "llm-workbench" / "workbench.toml").read_text())
        assert saved["targets"]["dev"]["host"].endswith(".cloudapp.azure.com")

        await pilot.press("w")
        await wait_for(pilot, lambda: "unchanged" in summary(screen) and "does not exist" not in summary(screen))
        assert set(column(screen, 1)) == {"no change"}

        await pilot.press("D")
        await wait_for(pilot, lambda: isinstance(app.screen, TypedConfirmScreen))
        modal = app.screen
        await pilot.press("enter")  # nothing typed: nothing happens
        assert app.screen is modal and "rg-llm-workbench-dev" in fake_arm.groups
        modal.query_one(Input).value = "rg-llm-workbench-dev"
        await pilot.press("enter")
        await wait_for(pilot, lambda: summary(screen).startswith("deleted resource group"))
        assert fake_arm.groups == {}


async def test_what_if_refused_on_a_policy_violation(
    app: WorkbenchApp, fake_arm: FakeArm, monkeypatch: pytest.MonkeyPatch
) -> None:
    notices: list[str] = []
    async with app.run_test(size=(140, 42)) as pilot:
        original = app.notify
        monkeypatch.setattr(app, "notify", lambda message, **kw: (notices.append(message), original(message, **kw)))
        await pilot.press("7")
        screen = app.screen
        assert isinstance(screen, InfraScreen)
        screen.query_one("#infra-env").value = "prod"  # type: ignore[attr-defined]
        await pilot.pause()
        params = Path(app.settings.azure.infra_dir) / "params"
        assert (params / "prod.json").is_file()
        app.settings.azure.params_dir = _open_ssh_params(params, Path(str(app.settings.azure.ssh_public_key)).parent)
        await pilot.press("w")
        await wait_for(pilot, lambda: notices)
        assert "prod: 2 problems" in notices[0] and "nsg-admin-ports" in notices[0]
        assert "policy" in column(screen, 0)
        assert fake_arm.requests_to("/whatIf") == []


def _open_ssh_params(params: Path, folder: Path) -> Path:
    """A copy of the parameter files whose prod opens SSH to the internet."""
    target = folder / "bad-params"
    target.mkdir()
    for env in ("dev", "prod"):
        text = (params / f"{env}.json").read_text()
        (target / f"{env}.json").write_text(text.replace("198.51.100.0/24", "*") if env == "prod" else text)
    return target
