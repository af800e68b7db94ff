"""Replicas and hosts in a target's settings (checked when settings load, errors naming the field), their
round-robin placement, and the nginx upstream the proxy gets for them."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.deploy.proxy import site_config
from services.deploy.target import Target, placement
from services.deploy.upstream import (
    Replica,
    as_replicas,
    local_replica,
    parse_replicas,
    remote_replica,
)
from services.errors import ConfigError
from workbench.settings import Settings, load_settings
from workbench.wiring import deploy_target


def settings_from(tmp_path: Path, text: str) -> Settings:
    user = tmp_path / "config.toml"
    user.write_text(text)
    return load_settings(project_file=None, user_file=user, environ={})


def test_one_host_and_one_replica_are_the_defaults(tmp_path: Path) -> None:
    target = deploy_target(
        settings_from(tmp_path, '[targets.dev]\nhost = "vm.example"\n[targets.dev.apps.bot]\n'), "dev"
    )
    assert target.apps["bot"].replicas == 1
    assert target.hosts == () and target.engines == ("ssh://azureuser@vm.example:22",)


def test_hosts_become_engines_with_the_targets_ssh_settings(tmp_path: Path) -> None:
    text = '[targets.prod]\nhosts = ["a.example", "10.0.0.5"]\nuser = "ops"\nssh_port = 2222\n'
    text += "[targets.prod.apps.bot]\nreplicas = 3\n"
    target = deploy_target(settings_from(tmp_path, text), "prod")
    assert target.engines == ("ssh://ops@a.example:2222", "ssh://ops@10.0.0.5:2222")
    assert target.docker_host == target.engines[0]  # the proxy's host
    assert target.apps["bot"].replicas == 3
    assert placement(target, 3) == [target.engines[0], target.engines[1], target.engines[0]]
    assert target.address(target.engines[1]) == "10.0.0.5"


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('[targets.dev]\nhost = "h"\n[targets.dev.apps.bot]\nreplicas = 0\n', "replicas"),
        ('[targets.dev]\nhosts = ["a", "b", "A"]\n', "is listed twice"),
        ('[targets.dev]\nhosts = ["a", "-oProxyCommand=x"]\n', "not a valid SSH host"),
        ('[targets.dev]\nhost = "a"\nhosts = ["a", "b"]\n', "set `host` or `hosts`, not both"),
        ('[targets.dev]\nuser = "ops"\n', "targets.dev: no `host`"),
        ('[targets.dev]\nhosts = ["a", "b"]\ndocker_host = "ssh://x@a"\n', "`docker_host` names one engine"),
    ],
)
def test_bad_hosts_and_replicas_are_refused_naming_the_field(tmp_path: Path, text: str, said: str) -> None:
    with pytest.raises((ConfigError, ValueError)) as caught:
        settings_from(tmp_path, text)
    message = getattr(caught.value, "message", None) or str(caught.value)
    assert said.lower() in message.lower() and "targets.dev" in message, message


def test_an_existing_single_host_file_still_loads(tmp_path: Path) -> None:
    text = '[targets.dev]\nhost = "vm.example"\ndocker_host = "unix:///run/docker.sock"\n[targets.dev.apps.bot]\n'
    target = deploy_target(settings_from(tmp_path, text), "dev")
    assert target.engines == ("unix:///run/docker.sock",) and placement(target, 2) == [target.docker_host] * 2


def test_the_upstream_lists_every_replica_with_ejection_and_retries() -> None:
    local = local_replica("bot-2.0.0-ab12-1", "ssh://ops@a:22", 8000)
    remote = remote_replica("bot-2.0.0-ab12-2", "ssh://ops@b:22", "10.0.0.5", 32771)
    config = site_config("bot", 443, [local, remote], 8000)
    assert "server bot-2.0.0-ab12-1:8000 max_fails=1 fail_timeout=10s;" in config
    assert "server 10.0.0.5:32771 max_fails=1 fail_timeout=10s;" in config
    assert "zone wb_bot 64k;" in config  # failures seen by one nginx worker count for all of them
    assert "proxy_next_upstream error timeout http_502 http_503 non_idempotent;" in config
    assert "proxy_next_upstream_tries 3;" in config and "proxy_connect_timeout 1s;" in config
    assert "keepalive_timeout 4s;" in config  # below the apps' keep-alive: tests/integration/test_deploy_keepalive.py
    assert parse_replicas(config) == [local, remote]  # what serves is read back from the file


def test_an_ipv6_host_is_bracketed_and_a_file_of_one_container_still_reads() -> None:
    assert remote_replica("c", "ssh://ops@[fd00::5]:22", "fd00::5", 40000).server == "[fd00::5]:40000"
    old = "# written by LLM Workbench: app bot\nupstream wb_bot {\n    server bot-1.0.0-ab12:8000;\n}"
    assert parse_replicas(old) == [Replica("bot-1.0.0-ab12", "", "bot-1.0.0-ab12:8000")]


@pytest.mark.parametrize(
    "replica",
    [Replica("bot;evil", "", "bot:8000"), Replica("bot", "", "bot:8000;}"), Replica("bot", "ssh://a b", "bot:8000")],
)
def test_nothing_but_names_and_addresses_reach_the_config(replica: Replica) -> None:
    with pytest.raises(ValueError):
        as_replicas([replica], 8000)


def test_a_host_not_reached_over_ssh_has_no_address() -> None:
    target = Target("dev", "unix:///run/docker.sock", "dev", hosts=("unix:///run/docker.sock", "ssh://ops@b:22"))
    with pytest.raises(ConfigError, match="not reached over SSH"):
        target.address("unix:///run/docker.sock")
