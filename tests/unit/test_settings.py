"""Settings: precedence, provenance, and one-line errors for bad files, keys and types."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.errors import ConfigError
from workbench import trust
from workbench.settings import SECRET_ROUTING, effective_rows, load_settings, load_with_layers, untrusted_project

CANARY = "hf_CANARY_settings_7f3a"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def trust_file(project: Path, user_file: Path) -> None:
    trust.record(project, trust.digest_of(project.read_bytes()), trust.store_beside(user_file), trusted=True)


def test_defaults_without_files(tmp_path: Path) -> None:
    s = load_settings(project_file=None, user_file=tmp_path / "none.toml", environ={})
    assert s.hub.endpoint is None
    assert s.hub.timeout == 5.0
    assert s.models.fit_seq_len == 2048


def test_precedence_project_then_user_then_env(tmp_path: Path) -> None:
    project = write(tmp_path / "workbench.toml", '[hub]\nendpoint = "http://project"\ntimeout = 3\n')
    trust_file(project, tmp_path / "user.toml")
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


def test_variable_names_are_read_in_any_case(tmp_path: Path) -> None:
    s = load_settings(project_file=None, user_file=tmp_path / "n.toml", environ={"workbench_hub__timeout": "7"})
    assert s.hub.timeout == 7.0


@pytest.mark.parametrize(
    ("variables", "imported"),
    [({}, False), ({"WORKBENCH_TESTBED_X": "1"}, False), ({"WORKBENCH_HUB__TIMEOUT": "7"}, True)],
)
def test_pydantic_settings_is_imported_only_to_read_workbench_variables(
    tmp_path: Path, variables: dict[str, str], imported: bool
) -> None:
    env = {name: value for name, value in os.environ.items() if not name.upper().startswith("WORKBENCH_")}
    env |= {"XDG_CONFIG_HOME": str(tmp_path), **variables}
    code = (
        "import sys, workbench.settings as s; print(s.load_settings().hub.timeout, 'pydantic_settings' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["7.0" if imported else "5.0", str(imported)]


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
    untrusted = json.loads(run_cli("config", "show", "--json", cwd=tmp_path).stdout)
    assert untrusted["hub.endpoint"] == {"value": None, "source": "default"}
    ignored = untrusted["hub.endpoint (ignored)"]
    assert ignored["value"] == "http://127.0.0.1:9" and ignored["source"].startswith("ignored: workbench.toml is not")
    assert run_cli("trust", "--yes", cwd=tmp_path).returncode == 0
    result = run_cli("config", "show", "--json", cwd=tmp_path, env={"WORKBENCH_HUB__TOKEN": CANARY})
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["hub.endpoint"] == {"value": "http://127.0.0.1:9", "source": "workbench.toml"}
    assert shown["hub.token"] == {"value": "set", "source": "environment"}
    assert CANARY not in result.stdout + result.stderr
    text = run_cli("config", "show", cwd=tmp_path, env={"WORKBENCH_HUB__TOKEN": CANARY})
    assert CANARY not in text.stdout + text.stderr


ROUTING_PROJECT = """\
[hub]
endpoint = "http://attacker.example"
timeout = 3
[azure]
arm_endpoint = "https://arm.attacker.example"
ca_bundle = "attacker-ca.pem"
location = "northeurope"
[targets.prod]
host = "deploy.attacker.example"
known_hosts = "known_hosts"
[targets.prod.apps.chatbot]
api_keys_env = "AZURE_CLIENT_SECRET"
[registry]
login_server = "registry.attacker.example"
[images]
docker_host = "tcp://attacker.example:2375"
[chat.endpoints.team]
url = "http://attacker.example/v1"
api_key_env = "AZURE_CLIENT_SECRET"
[models]
fit_seq_len = 512
"""

IGNORED = [
    "hub.endpoint",
    "azure.arm_endpoint",
    "azure.ca_bundle",
    "targets.prod.host",
    "targets.prod.known_hosts",
    "targets.prod.apps.chatbot.api_keys_env",
    "registry.login_server",
    "images.docker_host",
    "chat.endpoints.team.url",
    "chat.endpoints.team.api_key_env",
]


def test_an_untrusted_project_file_routes_no_secret(tmp_path: Path) -> None:
    project = write(tmp_path / "workbench.toml", ROUTING_PROJECT)
    s, layers = load_with_layers(project_file=project, user_file=tmp_path / "none.toml", environ={})
    assert s.hub.endpoint is None and s.azure.arm_endpoint is None and s.azure.ca_bundle is None
    assert s.targets.prod is None and s.registry.login_server is None and s.images.docker_host is None
    assert s.chat.endpoints == {}
    assert (s.hub.timeout, s.azure.location, s.models.fit_seq_len) == (3.0, "northeurope", 512)  # harmless keys apply
    found = untrusted_project(layers)
    assert found is not None and sorted(found.ignored) == sorted(IGNORED) and not found.declined
    ignored = {key: source for key, _, source in effective_rows(s, layers) if key.endswith("(ignored)")}
    assert sorted(ignored) == sorted(f"{key} (ignored)" for key in IGNORED)


def test_trust_is_for_the_exact_contents(tmp_path: Path) -> None:
    project = write(tmp_path / "workbench.toml", ROUTING_PROJECT)
    user = tmp_path / "none.toml"
    trust_file(project, user)
    s, layers = load_with_layers(project_file=project, user_file=user, environ={})
    assert s.hub.endpoint == "http://attacker.example" and s.targets.prod is not None
    assert s.chat.endpoints["team"].api_key_env == "AZURE_CLIENT_SECRET" and untrusted_project(layers) is None
    project.write_text(ROUTING_PROJECT + "# edited\n")
    s, layers = load_with_layers(project_file=project, user_file=user, environ={})
    assert s.hub.endpoint is None and s.targets.prod is None and untrusted_project(layers) is not None


def test_a_declined_file_stays_ignored_and_is_not_asked_again(tmp_path: Path) -> None:
    project = write(tmp_path / "workbench.toml", ROUTING_PROJECT)
    store = trust.store_beside(tmp_path / "none.toml")
    trust.record(project, trust.digest_of(project.read_bytes()), store, trusted=False)
    s, layers = load_with_layers(project_file=project, user_file=tmp_path / "none.toml", environ={})
    found = untrusted_project(layers)
    assert s.hub.endpoint is None and found is not None and found.declined


def test_user_file_and_environment_route_secrets_without_trust(tmp_path: Path) -> None:
    user = write(tmp_path / "user.toml", '[chat.endpoints.team]\nurl = "http://team/v1"\napi_key_env = "TEAM_KEY"\n')
    env = {"WORKBENCH_HUB__ENDPOINT": "http://mirror", "WORKBENCH_REGISTRY__LOGIN_SERVER": "acr.example"}
    s, layers = load_with_layers(project_file=None, user_file=user, environ=env)
    assert s.chat.endpoints["team"].url == "http://team/v1" and s.hub.endpoint == "http://mirror"
    assert s.registry.login_server == "acr.example" and untrusted_project(layers) is None


def test_every_secret_routing_key_exists_in_the_schema() -> None:
    from workbench.settings import Settings

    for dotted in SECRET_ROUTING:
        model: object = Settings
        for part in dotted.split("."):
            fields = model.model_fields  # type: ignore[attr-defined]
            assert part in fields, dotted
            model = fields[part].annotation


class Recorder:
    """A local HTTP server that answers every GET with `[]` and records what it was sent."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        seen = self.requests = []  # type: list[dict[str, str | None]]

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append({"path": self.path, "auth": self.headers.get("Authorization")})
                body = b"[]"
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_cloned_project_cannot_point_the_hub_at_its_server(tmp_path: Path) -> None:
    recorder = Recorder()
    try:
        project = write(tmp_path / "workbench.toml", f'[hub]\nendpoint = "{recorder.url}"\n')
        env = {"HF_TOKEN": CANARY, "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_DISABLE_TELEMETRY": "1"}
        attacked = run_cli("models", "search", "llama", "--json", cwd=tmp_path, env=env)
        assert recorder.requests == []
        [warning] = [line for line in attacked.stderr.splitlines() if line.startswith("warning:")]
        assert "hub.endpoint" in warning and "run `workbench trust` to allow them" in warning
        assert CANARY not in attacked.stdout + attacked.stderr

        assert run_cli("trust", cwd=tmp_path).returncode == 2  # not a terminal: needs --yes
        trusted = run_cli("trust", "--yes", cwd=tmp_path)
        assert trusted.returncode == 0 and "hub.endpoint" in trusted.stdout
        honoured = run_cli("models", "search", "llama", "--json", cwd=tmp_path, env=env)
        assert honoured.returncode == 0, honoured.stderr
        assert recorder.requests and recorder.requests[0]["auth"] == f"Bearer {CANARY}"
        assert "warning:" not in honoured.stderr

        project.write_text(project.read_text() + "timeout = 3\n")
        before = len(recorder.requests)
        edited = run_cli("models", "search", "llama", "--json", cwd=tmp_path, env=env)
        assert len(recorder.requests) == before and "hub.endpoint" in edited.stderr
        shown = run_cli("trust", "--show", cwd=tmp_path)
        assert "state:        unknown" in shown.stdout and f'hub.endpoint = "{recorder.url}"' in shown.stdout
    finally:
        recorder.close()
