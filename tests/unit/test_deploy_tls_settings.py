"""The targets' TLS and route settings: cert and key together, sensible default ports, two apps on one port
(or one upstream) refused when settings load, and the nginx config a TLS target gets."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from services.deploy.proxy import HSTS, site_config, tls_files
from services.deploy.target import Target, Tls
from services.errors import ConfigError
from tests.fakearm.tls import make_certificates
from workbench.cli.main import cli
from workbench.config.targets import TargetsSettings
from workbench.settings import Settings, load_settings
from workbench.wiring import deploy_target


def settings_from(tmp_path: Path, text: str) -> Settings:
    user = tmp_path / "config.toml"
    user.write_text(text)
    return load_settings(project_file=None, user_file=user, environ={})


def test_plain_http_defaults_to_80_and_tls_to_443(tmp_path: Path) -> None:
    plain = settings_from(tmp_path, '[targets.dev]\nhost = "vm.example"\n[targets.dev.apps.chatbot]\n')
    assert deploy_target(plain, "dev").apps["chatbot"].port == 80
    assert deploy_target(plain, "dev").tls is None
    tls = settings_from(
        tmp_path,
        '[targets.dev]\nhost = "vm.example"\ntls_cert = "c.pem"\ntls_key = "k.pem"\nplain_http = "off"\n'
        "[targets.dev.apps.chatbot]\n[targets.dev.apps.classifier]\nport = 8443\n",
    )
    target = deploy_target(tls, "dev")
    assert target.apps["chatbot"].port == 443 and target.apps["classifier"].port == 8443
    assert target.tls == Tls(Path("c.pem"), Path("k.pem"), "off")


@pytest.mark.parametrize(
    ("apps", "named"),
    [
        ("[targets.prod.apps.chatbot]\nport = 8443\n[targets.prod.apps.classifier]\nport = 8443\n", "port 8443"),
        ("[targets.prod.apps.chatbot]\n[targets.prod.apps.classifier]\n", "port 80"),  # both on the default
        ("[targets.prod.apps.chatbot]\nport = 80\n[targets.prod.apps.classifier]\n", "port 80"),
    ],
)
def test_two_apps_on_one_port_are_refused_naming_both(tmp_path: Path, apps: str, named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from(tmp_path, f'[targets.prod]\nhost = "vm.example"\n{apps}')
    message = caught.value.message
    assert "'chatbot'" in message and "'classifier'" in message and named in message and "targets.prod" in message


def test_names_that_map_to_one_upstream_are_refused(tmp_path: Path) -> None:
    text = '[targets.dev]\nhost = "h"\n[targets.dev.apps.chat-bot]\nport = 81\n[targets.dev.apps.chat_bot]\nport = 82\n'
    with pytest.raises(ConfigError, match="'chat-bot' and 'chat_bot' map to one proxy upstream"):
        settings_from(tmp_path, text)


def test_an_app_name_that_could_reach_the_proxy_config_is_refused(tmp_path: Path) -> None:
    text = '[targets.dev]\nhost = "h"\n[targets.dev.apps."x;}server{listen 1"]\nport = 81\n'
    with pytest.raises(ConfigError, match="not a valid app name"):
        settings_from(tmp_path, text)
    with pytest.raises(ValueError, match="not a valid app name"):
        site_config("x;}", 81, "c", 8000)


def test_a_cert_without_its_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="set both tls_cert and tls_key"):
        settings_from(tmp_path, '[targets.dev]\nhost = "h"\ntls_cert = "c.pem"\n')


def test_the_cli_exits_2_on_two_apps_on_one_port(tmp_path: Path) -> None:
    project = tmp_path / "workbench.toml"
    project.write_text(
        '[targets.dev]\nhost = "h"\n[targets.dev.apps.a]\nport = 9000\n[targets.dev.apps.b]\nport = 9000\n'
    )
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_DATA_HOME": str(tmp_path / "data")}
    result = CliRunner().invoke(cli, ["--config", str(project), "config", "show"], env=env)
    assert result.exit_code == 2
    assert "apps 'a' and 'b' both use port 9000" in result.stderr and "Traceback" not in result.stderr


def test_tls_site_config_is_https_only_with_hsts_and_a_redirect() -> None:
    tls = Tls(Path("c"), Path("k"))
    text = site_config("chatbot", 8443, "chatbot-1.0.0-abcd", 8000, tls)
    assert "listen 8443 ssl default_server;" in text and "ssl_protocols TLSv1.2 TLSv1.3;" in text
    assert f'add_header Strict-Transport-Security "{HSTS}" always;' in text
    assert "error_page 497 =301 https://$host:8443$request_uri;" in text
    assert "error_page 497 =301 https://$host$request_uri;" in site_config("chatbot", 443, "c", 8000, tls)
    off = site_config("chatbot", 443, "c", 8000, Tls(Path("c"), Path("k"), "off"))
    assert "ssl_certificate" in off and "error_page 497" not in off
    plain = site_config("chatbot", 80, "c", 8000)
    assert "listen 80 default_server;" in plain and "ssl" not in plain and "Strict-Transport" not in plain


def test_a_key_that_is_not_the_certificates_is_refused_without_showing_it(tmp_path: Path) -> None:
    first, second = make_certificates(tmp_path / "a"), make_certificates(tmp_path / "b")
    good = Target("dev", "unix:///x", "dev", tls=Tls(first.cert_file, first.key_file))
    assert tls_files(good) == (first.cert_file.read_bytes(), first.key_file.read_bytes())
    bad = Target("dev", "unix:///x", "dev", tls=Tls(first.cert_file, second.key_file))
    with pytest.raises(ConfigError) as caught:
        tls_files(bad)
    assert str(second.key_file) in caught.value.message and "PRIVATE" not in str(caught.value)
    missing = Target("dev", "unix:///x", "dev", tls=Tls(tmp_path / "none.pem", first.key_file))
    with pytest.raises(ConfigError, match="not a usable certificate and key"):
        tls_files(missing)


def test_plain_http_on_the_tls_port_is_refused_when_settings_load(tmp_path: Path) -> None:
    """Port 443 without a certificate would serve plain HTTP where clients expect TLS: refused, naming the fix."""
    for target in (
        {"host": "h", "user": "u", "app_port": 443},
        {"host": "h", "user": "u", "apps": {"chat": {"port": 443}}},
    ):
        with pytest.raises(ConfigError, match="443 without a certificate") as err:
            TargetsSettings.model_validate({"dev": target})
        assert err.value.hint is not None and "tls_cert" in err.value.hint
