"""The app asks once, at start, whether a project file whose secret-routing keys it ignored may route them."""

from __future__ import annotations

from pathlib import Path

from tests.ui.conftest import SettingsFactory, make_app, wait_for
from workbench import trust
from workbench.settings import load_with_layers, untrusted_project
from workbench.tui.widgets import ConfirmScreen


def project(tmp_path: Path) -> Path:
    path = tmp_path / "workbench.toml"
    path.write_text('[hub]\nendpoint = "http://127.0.0.1:9"\n[registry]\nlogin_server = "acr.example"\n')
    return path


def found(tmp_path: Path) -> trust.ProjectTrust:
    layers = load_with_layers(project_file=project(tmp_path), user_file=tmp_path / "none.toml", environ={})[1]
    untrusted = untrusted_project(layers)
    assert untrusted is not None
    return untrusted


async def test_trusting_the_project_records_its_hash(make_settings: SettingsFactory, tmp_path: Path) -> None:
    untrusted = found(tmp_path)
    app = make_app(make_settings(), untrusted=untrusted)
    async with app.run_test(size=(140, 42)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "hub.endpoint" in app.screen.body and "registry.login_server" in app.screen.body
        await pilot.press("y")
        await wait_for(pilot, lambda: app.return_value is not None)
    assert app.return_value is True  # run_app starts again with the project's keys
    assert trust.state_of(untrusted.path, untrusted.digest, untrusted.store) == "trusted"
    assert untrusted_project(load_with_layers(project_file=untrusted.path, user_file=tmp_path / "none.toml")[1]) is None


async def test_declining_is_remembered_and_not_asked_again(make_settings: SettingsFactory, tmp_path: Path) -> None:
    untrusted = found(tmp_path)
    app = make_app(make_settings(), untrusted=untrusted)
    async with app.run_test(size=(140, 42)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
    again = found(tmp_path)
    assert again.declined
    app = make_app(make_settings(), untrusted=again)
    async with app.run_test(size=(140, 42)) as pilot:
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
