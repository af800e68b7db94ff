"""The images' entry point: `python -m appkit.serve` runs uvicorn on the named app's factory with the
image's options, the app named by an argument or by `APP` (which the kit's Dockerfile sets); the
version an image sets reaches the app's settings."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic_settings import SettingsConfigDict

from appkit import serve
from appkit.settings import ServiceSettings

DOCKERFILE = Path(__file__).parents[1] / "app.Dockerfile"


def fake_app(root: Path, package: str) -> Path:
    """A package `<package>` in `root` with `app.create_app`, the shape of the team's apps."""
    (root / package).mkdir(parents=True)
    (root / package / "__init__.py").write_text("")
    (root / package / "app.py").write_text(
        "from fastapi import FastAPI\n\n\ndef create_app() -> FastAPI:\n    return FastAPI(title=__name__)\n"
    )
    return root


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """What `uvicorn.run` is called with; the app itself is loaded as uvicorn would, nothing listens."""
    import uvicorn

    calls: list[tuple[str, dict[str, Any]]] = []

    def run(app: str, **options: Any) -> None:
        calls.append((app, options))
        monkeypatch.syspath_prepend(options["app_dir"])  # as uvicorn.run does
        config = uvicorn.Config(app, **{k: v for k, v in options.items() if k != "app_dir"})
        config.load()
        options["loaded"] = config.loaded_app

    monkeypatch.setattr(uvicorn, "run", run)
    return calls


def test_serves_the_app_named_by_the_environment_with_the_images_options(
    runs: list[tuple[str, dict[str, Any]]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APP", "kitdemo_env")
    monkeypatch.delitem(sys.modules, "kitdemo_env", raising=False)
    app_dir = fake_app(tmp_path, "kitdemo_env")

    serve.main(["--app-dir", str(app_dir)])

    [(factory, options)] = runs
    assert factory == "kitdemo_env.app:create_app"
    loaded = options.pop("loaded")
    assert options == {
        "factory": True,
        "app_dir": str(app_dir),
        "host": "0.0.0.0",
        "port": 8000,
        "access_log": False,
        "timeout_graceful_shutdown": 30,
    }
    assert sys.modules["kitdemo_env.app"].__file__ == str(app_dir / "kitdemo_env" / "app.py")
    assert loaded is not None  # the factory was found and called


def test_an_argument_names_the_app_before_the_environment(
    runs: list[tuple[str, dict[str, Any]]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APP", "not_this_one")
    monkeypatch.delitem(sys.modules, "kitdemo_arg", raising=False)

    serve.main(["--app-dir", str(fake_app(tmp_path, "kitdemo_arg")), "kitdemo_arg"])

    assert [factory for factory, _ in runs] == ["kitdemo_arg.app:create_app"]


@pytest.mark.parametrize("app", ["", "../etc", "chat bot"])
def test_without_a_package_name_it_stops_with_a_usage_error(
    app: str,
    runs: list[tuple[str, dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("APP", app)

    with pytest.raises(SystemExit) as stopped:
        serve.main([])

    assert stopped.value.code == 2 and "name the app's package" in capsys.readouterr().err
    assert runs == []


def test_the_kit_dockerfile_starts_this_module_for_the_app_it_was_built_for() -> None:
    text = DOCKERFILE.read_text()
    assert 'ENTRYPOINT ["python3", "-m", "appkit.serve", "--app-dir", "/app"]' in text
    final = text.rsplit("\nFROM ", 1)[1]
    assert "ARG APP\nENV APP=${APP}\nCOPY ${APP}/ /app/${APP}/\n" in final
    assert "ENV APP_VERSION=${VERSION}\n" in final


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DEMO_")


def test_the_images_version_is_the_apps_unless_the_app_is_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("APP_VERSION", raising=False)
    assert DemoSettings(api_keys="k").version == "dev"
    monkeypatch.setenv("APP_VERSION", "v1.2-g1a2b3c4")
    assert DemoSettings(api_keys="k").version == "v1.2-g1a2b3c4"
    monkeypatch.setenv("DEMO_VERSION", "told")
    assert DemoSettings(api_keys="k").version == "told"
