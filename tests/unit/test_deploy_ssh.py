"""SSH destinations of deploy targets: a host or user that ssh would read as an option never reaches ssh,
from the settings or from a target built by hand; and artifact volume names on the target are unambiguous.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.artifacts.model import FileEntry, Manifest
from services.deploy.ssh import check_reachable, ssh_argv
from services.deploy.target import Target, validate_ssh_host, validate_ssh_user
from services.deploy.volumes import artifact_volume
from services.errors import ConfigError
from workbench.settings import load_settings
from workbench.wiring import deploy_target

# ssh lowercases nothing in a ProxyCommand, urlsplit lowercases the host: a lowercase variable names the marker.
INJECTED = "-oproxycommand=touch $wb_marker"


@pytest.fixture
def marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "pwned"
    monkeypatch.setenv("wb_marker", str(path))
    return path


def settings_with(tmp_path: Path, **staging: str) -> dict[str, str]:
    return {
        "WORKBENCH_WORKSPACE__DATA_DIR": str(tmp_path / "ws"),
        "WORKBENCH_TARGETS__STAGING": json.dumps({"host": "deploy.example", "user": "azureuser", **staging}),
    }


@pytest.mark.parametrize("field", ["host", "user"])
def test_settings_refuse_an_ssh_option_as_host_or_user(tmp_path: Path, marker: Path, field: str) -> None:
    environ = settings_with(tmp_path, **{field: INJECTED})
    with pytest.raises(ConfigError, match=field):
        settings = load_settings(project_file=None, user_file=tmp_path / "none.toml", environ=environ)
        check_reachable(deploy_target(settings, "staging"))
    assert not marker.exists() and not marker.with_name("pwned@deploy.example").exists()


def test_a_target_built_by_hand_never_passes_an_option_as_destination(marker: Path) -> None:
    target = Target("staging", f"ssh://{INJECTED}", "staging")
    with pytest.raises(ConfigError, match="not a valid SSH host"):
        check_reachable(target)
    assert not marker.exists()


def test_the_destination_follows_a_double_dash() -> None:
    argv = ssh_argv(Target("t", "ssh://deploy@10.0.0.5:2222", "dev"), "docker", "version")
    assert argv[argv.index("--") + 1 :] == ["deploy@10.0.0.5", "docker", "version"]
    assert argv.index("-p") < argv.index("--")


@pytest.mark.parametrize(
    "host", ["deploy.example.com", "10.0.0.5", "vm-1", "[2001:db8::1]", "2001:db8::1", "localhost"]
)
def test_ordinary_hosts_are_valid(host: str) -> None:
    assert validate_ssh_host(host) == host


@pytest.mark.parametrize("host", ["-oProxyCommand=x", "", "a b", "host;rm", "a/b", "x" * 300, "-"])
def test_option_like_or_odd_hosts_are_refused(host: str) -> None:
    with pytest.raises(ValueError):
        validate_ssh_host(host)


@pytest.mark.parametrize("user", ["-oProxyCommand=x", "", "a b", "root@x", "a:b", "-"])
def test_option_like_or_odd_users_are_refused(user: str) -> None:
    with pytest.raises(ValueError):
        validate_ssh_user(user)


def manifest(name: str, version: str) -> Manifest:
    return Manifest("dataset", name, version, (FileEntry("a.txt", "0" * 64, 1),))


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (("chat-bot", "1"), ("chat", "bot-1")),
        (("n" * 128, "v" * 64 + "1"), ("n" * 128, "v" * 64 + "2")),  # differ only past 200 characters
    ],
)
def test_artifact_volume_names_are_unambiguous(one: tuple[str, str], other: tuple[str, str]) -> None:
    first, second = artifact_volume(manifest(*one)), artifact_volume(manifest(*other))
    assert first != second
    assert all(len(name) <= 128 and name.startswith("wb-art-") for name in (first, second))
