"""The drain and warm-rollback settings of a target's apps: defaults, the drain timeout derived from the
app's request timeout, validation, and what reaches the AppSpec."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.deploy.target import DEFAULT_DRAIN_S, AppSpec, request_timeout
from services.errors import ConfigError
from workbench.settings import Settings, load_settings
from workbench.wiring import deploy_target


def settings_from(tmp_path: Path, text: str) -> Settings:
    user = tmp_path / "config.toml"
    user.write_text(text)
    return load_settings(project_file=None, user_file=user, environ={})


def test_defaults_are_todays_behaviour(tmp_path: Path) -> None:
    spec = deploy_target(settings_from(tmp_path, '[targets.dev]\nhost = "vm"\n[targets.dev.apps.chatbot]\n'), "dev")
    app = spec.apps["chatbot"]
    assert app.keep_previous_warm is False and app.drain_timeout_s is None
    assert app.drain_timeout == DEFAULT_DRAIN_S == 60


def test_settings_reach_the_app_spec(tmp_path: Path) -> None:
    text = '[targets.dev]\nhost = "vm"\n[targets.dev.apps.chatbot]\ndrain_timeout_s = 120\nkeep_previous_warm = true\n'
    app = deploy_target(settings_from(tmp_path, text), "dev").apps["chatbot"]
    assert app.drain_timeout_s == 120 and app.drain_timeout == 120 and app.keep_previous_warm


def test_zero_drain_is_allowed_and_negative_refused(tmp_path: Path) -> None:
    zero = '[targets.dev]\nhost = "vm"\n[targets.dev.apps.chatbot]\ndrain_timeout_s = 0\n'
    assert deploy_target(settings_from(tmp_path, zero), "dev").apps["chatbot"].drain_timeout == 0
    with pytest.raises((ConfigError, ValueError)):
        settings_from(tmp_path, zero.replace("= 0", "= -1"))


def test_default_drain_is_the_apps_request_timeout() -> None:
    assert AppSpec("chatbot", 80, env={"CHATBOT_GENERATION_TIMEOUT_S": "90"}).drain_timeout == 90
    assert AppSpec("x", 80, env={"REQUEST_TIMEOUT_S": "15", "OTHER": "x"}).drain_timeout == 15
    assert AppSpec("x", 80, env={"X_GENERATION_TIMEOUT_S": "soon"}).drain_timeout == DEFAULT_DRAIN_S
    assert AppSpec("x", 80, env={"X_GENERATION_TIMEOUT_S": "90"}, drain_timeout_s=5).drain_timeout == 5
    assert request_timeout({"A_REQUEST_TIMEOUT_S": "10", "B_GENERATION_TIMEOUT_S": "30"}) == 30
    assert request_timeout({"MY_TIMEOUT_S": "10"}) is None
