"""The `registry` and `images` settings and what the Images services get from them."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from services.errors import ConfigError
from workbench import trust
from workbench.cli.main import cli
from workbench.settings import effective_rows, load_with_layers
from workbench.wiring import Services

CANARY = "canary-settings-Pw-0e3b"


def test_defaults(tmp_path: Path) -> None:
    settings, _ = load_with_layers(project_file=None, user_file=tmp_path / "none.toml", environ={})
    config = Services(settings).images_config()
    assert (config.apps_dir, config.app_dirs, config.base_image, config.docker_host) == (Path("apps"), (), None, None)
    access = config.registry
    assert (access.server, access.auth, access.password_env, access.plain_http) == (
        None,
        "docker-config",
        "WORKBENCH_REGISTRY_PASSWORD",
        False,
    )


def test_from_the_project_file_and_the_environment(tmp_path: Path) -> None:
    project = tmp_path / "workbench.toml"
    project.write_text(
        '[registry]\nlogin_server = "reg.example:5000"\nauth = "password"\nusername = "ci"\n'
        '[images]\napp_dirs = ["/srv/apps/summariser"]\nbase_image = "python:3.11-slim"\n'
        '[images.base_images]\nchatbot = "nvidia/cuda:12.4.1-runtime-ubuntu22.04"\n'
    )
    environ = {"WORKBENCH_REGISTRY__PLAIN_HTTP": "true", "WORKBENCH_REGISTRY_PASSWORD": CANARY}
    store = trust.store_beside(tmp_path / "none.toml")  # registry and app folders route secrets: trust the file
    trust.record(project, trust.digest_of(project.read_bytes()), store, trusted=True)
    settings, layers = load_with_layers(project_file=project, user_file=tmp_path / "none.toml", environ=environ)
    config = Services(settings).images_config()
    assert config.registry.server == "reg.example:5000" and config.registry.plain_http
    assert config.app_dirs == (Path("/srv/apps/summariser"),)
    assert config.base_image_for("chatbot") == "nvidia/cuda:12.4.1-runtime-ubuntu22.04"
    assert config.base_image_for("classifier") == "python:3.11-slim"
    rows = {key: (value, source) for key, value, source in effective_rows(settings, layers)}
    assert rows["images.app_dirs"] == (["/srv/apps/summariser"], str(project))
    assert rows["registry.plain_http"] == (True, "environment")
    assert CANARY not in json.dumps(rows)  # the password lives in its variable, never in settings


def test_an_unknown_auth_kind_names_the_key(tmp_path: Path) -> None:
    project = tmp_path / "workbench.toml"
    project.write_text('[registry]\nauth = "basic"\n')
    with pytest.raises(ConfigError) as err:
        load_with_layers(project_file=project, user_file=tmp_path / "none.toml", environ={})
    assert "registry.auth" in err.value.message


def test_config_show_prints_the_new_sections_without_the_password(tmp_path: Path) -> None:
    env = {
        "XDG_CONFIG_HOME": str(tmp_path),
        "WORKBENCH_IMAGES__APP_DIRS": '["/srv/apps/x"]',
        "WORKBENCH_REGISTRY_PASSWORD": CANARY,
    }
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "none.toml"), "config", "show", "--json"], env=env)
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["images.app_dirs"]["value"] == ["/srv/apps/x"]
    assert shown["registry.password_env"]["value"] == "WORKBENCH_REGISTRY_PASSWORD"
    assert CANARY not in result.output
