"""Settings: precedence, provenance, and one-line errors for bad files, keys and types."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.errors import ConfigError
from workbench.settings import effective_rows, load_settings, load_with_layers

CANARY = "hf_CANARY_settings_7f3a"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_defaults_without_files(tmp_path: Path) -> None:
    s = load_settings(project_file=None, user_file=tmp_path / "none.toml", environ={})
    assert s.hub.endpoint is None
    assert s.hub.timeout == 5.0
    assert s.models.fit_seq_len == 2048


def test_precedence_project_then_user_then_env(tmp_path: Path) -> None:
    project = write(tmp_path / "workbench.toml", '[hub]\nendpoint = "http://project"\ntimeout = 3\n')
    user = write(tmp_path / "user.toml", '[hub]\nendpoint = "http://user"\n[models]\nfit_seq_len = 512\n')
    env = {"WORKBENCH_HUB__TIMEOUT": "9", "WORKBENCH_WORKSPACE__DATA_DIR": str(tmp_path / "ws")}
    s, layers = load_with_layers(project_file=project, user_file=user, environ=env)
    assert (s.hub.endpoint, s.hub.timeout, s.models.fit_seq_len) == ("http://user", 9.0, 512)
    sources = {key: source for key, _, source in effective_rows(s, layers)}
    assert sources["hub.endpoint"] == str(user)
    assert sources["hub.timeout"] == "environment"
    assert sources["workspace.data_dir"] == "environment"
    assert sources["models.search_page_size"] == "default"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('[hub]\ntimeout = "soon"\n', "hub.timeout: input should be a valid number"),
        ("[hub]\ntimeuot = 3\n", "hub.timeuot: unknown key"),
        ("[hubb]\n", "unknown section 'hubb'"),
        ("[hub\n", "not valid TOML"),
        ("[models]\nfit_seq_len = 0\n", "models.fit_seq_len: input should be greater than 0"),
    ],
)
def test_bad_file_names_file_and_key(tmp_path: Path, content: str, expected: str) -> None:
    bad = write(tmp_path / "workbench.toml", content)
    with pytest.raises(ConfigError) as err:
        load_settings(project_file=bad, user_file=tmp_path / "none.toml", environ={})
    assert str(bad) in err.value.message
    assert expected in err.value.message


def test_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(project_file=None, user_file=tmp_path / "n.toml", environ={"WORKBENCH_HUB__TIMEOUT": "x"})
    assert "WORKBENCH_HUB__TIMEOUT" in err.value.message


def test_unrelated_workbench_variables_are_ignored(tmp_path: Path) -> None:
    s = load_settings(project_file=None, user_file=tmp_path / "n.toml", environ={"WORKBENCH_TESTBED_X": "1"})
    assert s.hub.timeout == 5.0


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "XDG_CONFIG_HOME": str(cwd / "xdg"), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "workbench", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_config_error_is_one_line_with_exit_2(tmp_path: Path) -> None:
    write(tmp_path / "workbench.toml", '[hub]\ntimeout = "soon"\n')
    result = run_cli("config", "show", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: workbench.toml: hub.timeout")
    debug = run_cli("--debug", "config", "show", cwd=tmp_path)
    assert "Traceback" in debug.stderr


def test_config_show_reports_sources_and_hides_secrets(tmp_path: Path) -> None:
    write(tmp_path / "workbench.toml", '[hub]\nendpoint = "http://127.0.0.1:9"\n')
    result = run_cli("config", "show", "--json", cwd=tmp_path, env={"WORKBENCH_HUB__TOKEN": CANARY})
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["hub.endpoint"] == {"value": "http://127.0.0.1:9", "source": "workbench.toml"}
    assert shown["hub.token"] == {"value": "set", "source": "environment"}
    assert CANARY not in result.stdout + result.stderr
    text = run_cli("config", "show", cwd=tmp_path, env={"WORKBENCH_HUB__TOKEN": CANARY})
    assert CANARY not in text.stdout + text.stderr
