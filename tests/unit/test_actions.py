"""The action registry: every binding, palette command and `?` row comes from one table."""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from textual.dom import DOMNode

import workbench.tui.screens
import workbench.tui.widgets
from services.errors import ConfigError
from workbench.actions import ACTION_BY_ID, ACTIONS, Action, nearest_ids, validate_keymap
from workbench.cli.main import cli
from workbench.modes import MODES
from workbench.tui.keymap import bindings_for
from workbench.tui.palette import COMMANDS
from workbench.tui.screens.base import ModeScreen

AREAS = {mode.id for mode in MODES} | {"app"}


def _subclasses(cls: type) -> list[type]:
    return [cls, *(sub for direct in cls.__subclasses__() for sub in _subclasses(direct))]


def _first_party_nodes() -> dict[str, type[DOMNode]]:
    """Every screen, pane, widget and the app class of the workbench, by class name."""
    for package in (workbench.tui.screens, workbench.tui.widgets):
        for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            importlib.import_module(module.name)
    importlib.import_module("workbench.tui.app")
    ours = [cls for cls in _subclasses(DOMNode) if cls.__module__.startswith("workbench.")]
    return {cls.__name__: cls for cls in ours}


def _method_name(action: str) -> str:
    return action.split("(", 1)[0]


def test_ids_are_unique_and_named_by_area() -> None:
    ids = Counter(action.id for action in ACTIONS)
    assert [binding_id for binding_id, count in ids.items() if count > 1] == []
    assert all(action.area in AREAS for action in ACTIONS)
    assert all(action.title and action.description and action.keys for action in ACTIONS)


def test_no_key_is_bound_twice_on_one_screen() -> None:
    for screen in {action.screen for action in ACTIONS}:
        keys = Counter(key.strip() for action in ACTIONS if action.screen == screen for key in action.keys.split(","))
        assert [key for key, count in keys.items() if count > 1] == [], screen


def test_every_action_runs_a_method_of_its_screen() -> None:
    nodes = _first_party_nodes()
    for action in ACTIONS:
        assert action.screen in nodes, f"{action.id}: no class {action.screen}"
        assert hasattr(nodes[action.screen], f"action_{_method_name(action.action)}"), action.id


def test_every_binding_of_the_app_comes_from_the_table() -> None:
    for name, cls in _first_party_nodes().items():
        if "BINDINGS" in vars(cls):
            assert vars(cls)["BINDINGS"] == bindings_for(name), name
    declared = {name for name, cls in _first_party_nodes().items() if "BINDINGS" in vars(cls)}
    assert {action.screen for action in ACTIONS} <= declared


def test_bindings_carry_id_title_and_flags() -> None:
    [download, cancel] = bindings_for("HubPane")
    assert (download.key, download.action, download.description, download.id) == (
        "d",
        "download",
        "Download",
        "models.download",
    )
    assert (cancel.key, cancel.show) == ("c,escape", False)
    assert bindings_for("FinetuneScreen")[1].priority


def test_palette_commands_are_area_verb_titled_and_run_existing_actions() -> None:
    nodes = _first_party_nodes()
    mode_screens = {cls.MODE: cls for cls in _subclasses(ModeScreen) if cls.MODE}
    assert set(mode_screens) == AREAS - {"app"}
    assert len({command.title for command in COMMANDS}) == len(COMMANDS)
    for command in COMMANDS:
        action = ACTION_BY_ID[command.binding_id]
        assert command.title == f"{action.area}: {action.palette}" and command.help == action.description
        runs_on = nodes["WorkbenchApp"] if action.area == "app" else mode_screens[action.area]
        assert hasattr(runs_on, f"action_{_method_name(action.palette_action or action.action)}"), command.title
    assert {"models: Download", "app: Show keys", "app: Switch to Infra"} <= {command.title for command in COMMANDS}


def test_palette_runs_mode_actions_on_their_mode() -> None:
    by_title = {command.title: command.action for command in COMMANDS}
    assert by_title["models: Show hub"] == "in_mode('models', \"show_tab('hub')\")"
    assert by_title["playground: Run suite"] == "in_mode('playground', 'run_suite')"
    assert by_title["app: Switch to Deploy"] == "switch_mode('deploy')"


def test_a_known_keymap_is_accepted() -> None:
    validate_keymap({"mode.models": "f1,1", "models.download": "ctrl+d", "confirm.yes": "enter"})
    validate_keymap({})


def test_an_unknown_id_names_it_and_the_nearest_known_ids() -> None:
    with pytest.raises(ConfigError) as err:
        validate_keymap({"mode.infro": "f7", "mode.models": "1", "zzz": "x"}, origin="workbench.toml")
    assert err.value.exit_code == 2
    assert err.value.message == "workbench.toml: ui.keys: unknown binding ids 'mode.infro', 'zzz'"
    assert err.value.hint is not None and "mode.infro → mode.infra" in err.value.hint
    assert nearest_ids("models.dowload")[0] == "models.download"


def test_the_table_needs_no_textual() -> None:
    code = "import sys, json, workbench.actions; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert [m for m in json.loads(out) if m.split(".")[0] in {"textual", "click", "pydantic"}] == []


def test_action_is_a_frozen_record() -> None:
    action = ACTION_BY_ID["app.keys"]
    assert isinstance(action, Action) and action.command == "keys"
    with pytest.raises(AttributeError):
        action.keys = "f1"  # type: ignore[misc]


def test_the_cli_exits_2_on_an_unknown_binding_id(tmp_path: Path) -> None:
    project = tmp_path / "workbench.toml"
    project.write_text('[ui.keys]\n"mode.infro" = "f7"\n')
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_DATA_HOME": str(tmp_path / "data")}
    result = CliRunner().invoke(cli, ["--config", str(project), "config", "show"], env=env)
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "'mode.infro'" in errors[0] and "Traceback" not in result.stderr
    assert "mode.infra" in result.stderr
