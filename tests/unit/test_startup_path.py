"""What a command loads: one CLI command imports only its own group, and offline mode is known without the hub
client."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from workbench.cli.main import LAZY_COMMANDS, cli


def loaded_after(code: str, env: dict[str, str] | None = None) -> set[str]:
    script = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, env={**os.environ, **(env or {})}
    )
    return set(json.loads(run.stdout.splitlines()[-1]))


def test_a_command_loads_only_its_own_group() -> None:
    loaded = loaded_after("from workbench.cli.main import cli\ncli.commands['models']")
    groups = {target.split(":")[0] for target in LAZY_COMMANDS.values()}
    assert groups & loaded == set()
    assert "workbench.cli.deploy" in loaded_after("from workbench.cli.main import cli\ncli.commands['rollback']")


def test_every_lazy_command_is_the_command_of_that_name() -> None:
    for name in LAZY_COMMANDS:
        assert cli.commands[name].name == name


def test_help_lists_every_command_and_an_unknown_one_is_a_usage_error() -> None:
    runner = CliRunner()
    listed = runner.invoke(cli, ["--help"]).output
    for name in [*LAZY_COMMANDS, "config", "models", "demo"]:
        assert f"\n  {name} " in listed
    wrong = runner.invoke(cli, ["rolback"])
    assert wrong.exit_code == 2
    assert "No such command 'rolback'" in wrong.output and "rollback" in wrong.output


def test_search_results_render_without_the_fit_cache_and_details_modules() -> None:
    """`models search` prints summaries only: the modules of the other shapes load when those are printed."""
    loaded = loaded_after("from workbench.present import models\nmodels.summaries_json([])")
    assert {"services.fit", "services.cache", "services.hub.details"} & loaded == set()


def test_offline_mode_is_known_without_importing_the_hub_client() -> None:
    code = "from services.hub.connection import offline_mode\nassert offline_mode()"
    assert "huggingface_hub" not in loaded_after(code, {"HF_HUB_OFFLINE": "1"})
    online = "from services.hub.connection import offline_mode\nassert not offline_mode()"
    loaded_after(online, {"HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": ""})


def test_the_app_starts_with_the_collector_off(monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    from workbench.tui import app

    seen: list[bool] = []
    monkeypatch.setattr(app, "run_app", lambda load: seen.append(gc.isenabled()))
    try:
        assert CliRunner().invoke(cli, []).exit_code == 0
    finally:
        gc.enable()
    assert seen == [False]  # the app turns it on again at its first frame (tests/ui/test_app.py)
