"""`workbench image build|push|ls` in-process, with the fake engine and a local fake registry.

The real engine and registry are exercised in tests/integration/test_images.py.
"""

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tests.fakedocker import STEPS, FakeDockerAPI
from tests.fakeregistry import FakeRegistry
from tests.images_support import git_app, short_head
from workbench.cli.main import cli

CANARY = "canary-cli-Pw-51f0"
Run = Callable[..., Result]


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> FakeDockerAPI:
    api = FakeDockerAPI()
    monkeypatch.setattr("services.images.ops.connect", lambda docker_host=None: api)
    return api


@pytest.fixture
def registry() -> Iterator[FakeRegistry]:
    with FakeRegistry(auth="basic", password=CANARY) as fake:
        yield fake


@pytest.fixture
def run(tmp_path: Path, registry: FakeRegistry, engine: FakeDockerAPI, monkeypatch: pytest.MonkeyPatch) -> Run:
    git_app(tmp_path / "repo")
    monkeypatch.chdir(tmp_path)
    environ = {
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "WORKBENCH_IMAGES__APPS_DIR": str(tmp_path / "repo" / "apps"),
        "WORKBENCH_IMAGES__BASE_IMAGE": "workbench-base:bookworm",
        "WORKBENCH_REGISTRY__LOGIN_SERVER": registry.server,
        "WORKBENCH_REGISTRY__AUTH": "password",
        "WORKBENCH_REGISTRY__USERNAME": "workbench",
        "WORKBENCH_REGISTRY__PLAIN_HTTP": "true",
        "WORKBENCH_REGISTRY_PASSWORD": CANARY,
    }

    def invoke(*args: str, **env: str) -> Result:
        return CliRunner().invoke(cli, list(args), env={**environ, **env})

    return invoke


def test_build_streams_the_log_and_prints_the_tag(run: Run, engine: FakeDockerAPI, tmp_path: Path) -> None:
    result = run("image", "build", "hello", "--build-arg", "PIP_NO_CACHE_DIR=1")
    assert result.exit_code == 0, result.output
    tag = f"{result_registry(engine)}/hello:{short_head(tmp_path / 'repo')}"
    assert f"Step 1/{len(STEPS)} : FROM ${{BASE_IMAGE}}" in result.stderr
    assert result.stdout.startswith(f"built {tag} (")
    assert engine.builds[0]["buildargs"]["BASE_IMAGE"] == "workbench-base:bookworm"
    assert engine.builds[0]["buildargs"]["PIP_NO_CACHE_DIR"] == "1"


def result_registry(engine: FakeDockerAPI) -> str:
    return engine.builds[0]["tag"].split("/")[0]


def test_build_of_a_dirty_tree_says_it_cannot_go_to_prod(run: Run, tmp_path: Path) -> None:
    (tmp_path / "repo" / "apps" / "hello" / "app" / "server.py").write_text("changed\n")
    result = run("image", "build", "hello", "--quiet", "--base-image", "other:1")
    assert result.exit_code == 0, result.output
    assert "-dirty (" in result.stdout and "can never be deployed to prod" in result.stdout
    assert "Step 1/" not in result.stderr


def test_usage_errors_exit_2_and_unknown_apps_exit_1(run: Run) -> None:
    secret_arg = run("image", "build", "hello", "--build-arg", "HF_TOKEN=hf_x")
    assert secret_arg.exit_code == 2 and "looks like a secret" in secret_arg.stderr
    unknown = run("image", "build", "nope")
    assert unknown.exit_code == 1 and "no app named 'nope' (known: hello)" in unknown.stderr


def test_push_prints_layers_digest_and_size(run: Run, registry: FakeRegistry, engine: FakeDockerAPI) -> None:
    assert run("image", "build", "hello", "--quiet").exit_code == 0
    tag = engine.builds[0]["tag"].rsplit(":", 1)[1]
    registry.add_image("hello", tag, layers=(30_000_000, 4_000_000))
    result = run("image", "push", "hello")
    assert result.exit_code == 0, result.output
    assert "Pushed" in result.stderr and "1f0a9c2b3d4e" in result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"pushed {registry.server}/hello:{tag} in ")
    assert lines[1].startswith("digest  sha256:")
    assert lines[2].startswith("size    34.0 MB compressed (3 layers: 3 pushed, 0 already there)")
    assert engine.pushes[0]["auth_config"]["password"] == CANARY
    assert CANARY not in result.output


def test_push_of_an_unbuilt_tag(run: Run) -> None:
    result = run("image", "push", "hello:v9")
    assert result.exit_code == 1 and "no local image" in result.stderr and "image build" in result.stderr
    bad = run("image", "push", "hello:")
    assert bad.exit_code == 2


def test_push_without_the_password_variable_is_a_config_error(run: Run, engine: FakeDockerAPI) -> None:
    assert run("image", "build", "hello", "--quiet").exit_code == 0
    result = run("image", "push", "hello", WORKBENCH_REGISTRY_PASSWORD="")
    assert result.exit_code == 2 and "WORKBENCH_REGISTRY_PASSWORD is not set" in result.stderr
    assert engine.pushes == []


def test_ls_lists_apps_local_images_and_registry_tags(run: Run, registry: FakeRegistry, tmp_path: Path) -> None:
    assert run("image", "build", "hello", "--quiet").exit_code == 0
    digest = registry.add_image("hello", "old-tag")
    text = run("image", "ls", "--remote")
    assert text.exit_code == 0, text.output
    assert ["hello:old-tag", digest] in [line.split() for line in text.stdout.splitlines()]
    listing = json.loads(run("image", "ls", "--remote", "--json").stdout)
    app = listing["apps"][0]
    assert (app["name"], app["version"], app["dirty"], app["built"]) == (
        "hello",
        short_head(tmp_path / "repo"),
        False,
        True,
    )
    assert app["deployable_to_prod"] is True
    assert app["remote"] == [{"tag": "old-tag", "digest": digest}]
    assert app["local"][0]["reference"] == app["reference"]
    assert listing["problems"] == []


def test_ls_reports_what_it_could_not_read(run: Run, registry: FakeRegistry) -> None:
    result = run("image", "ls", "--remote", WORKBENCH_REGISTRY_PASSWORD="wrong")
    assert result.exit_code == 1
    assert f"warning: registry {registry.server} refused the credentials" in result.stderr
    no_registry = run("image", "ls", "--remote", WORKBENCH_REGISTRY__LOGIN_SERVER="")
    assert no_registry.exit_code == 2 and "no registry configured" in no_registry.stderr
