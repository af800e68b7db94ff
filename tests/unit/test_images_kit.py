"""The app kit in an image's build context: its wheel in `kit/` for apps whose Dockerfile copies it,
built once per kit content (byte for byte the same), and the version dirty when the kit has
uncommitted changes."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest

from services.errors import UsageError
from services.images.apps import AppSource, GitVersion, KitRecipe
from services.images.build import build_image, plan_build
from services.images.kit import AppKit, find_kit, uses_kit
from services.images.ops import ImagesConfig
from tests.fakedocker import FakeDockerAPI
from tests.images_support import git, git_app

KIT = Path(__file__).parents[2] / "apps" / "appkit"
VERSION = GitVersion("1a2b3c4", "1a2b3c4" + "0" * 33, False)
KIT_COPY = "COPY kit/ /kit/\n"


def kit_app(tmp_path: Path) -> Path:
    """The fixture app whose Dockerfile copies kit/, in a git repository beside a copy of the kit."""
    app = git_app(tmp_path)
    shutil.copytree(KIT, tmp_path / "apps" / "appkit", ignore=shutil.ignore_patterns("__pycache__", "build"))
    dockerfile = app / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("COPY requirements.txt", KIT_COPY + "COPY requirements.txt"))
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "kit")
    return app


def test_only_a_dockerfile_that_copies_kit_uses_it(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    for text, expected in [(KIT_COPY, True), ("COPY ./kit /kit/\n", True), ("COPY kitchen/ /k/\n", False)]:
        dockerfile.write_text(f"FROM x\n{text}")
        assert uses_kit(dockerfile) is expected


def test_an_app_that_copies_kit_needs_one(tmp_path: Path) -> None:
    app = kit_app(tmp_path)

    with pytest.raises(UsageError) as err:
        plan_build(AppSource("hello", app), registry=None, version=VERSION)

    assert "copies kit/" in err.value.message and "appkit" in (err.value.hint or "")


def test_an_app_built_from_the_kit_dockerfile_needs_a_kit_that_has_one(tmp_path: Path) -> None:
    app = AppSource("chatbot", tmp_path / "chatbot", KitRecipe("chatbot", "Chats."))
    (tmp_path / "appkit").mkdir()

    with pytest.raises(UsageError) as err:
        plan_build(app, registry=None, version=VERSION)
    assert err.value.message == "chatbot is built from the app kit's Dockerfile, and no app kit was found"

    with pytest.raises(UsageError) as err:
        plan_build(app, registry=None, version=VERSION, kit=AppKit(tmp_path / "appkit", tmp_path / "cache"))
    assert err.value.message.endswith("app.Dockerfile is missing")


def test_the_context_holds_the_app_as_dockerignore_admits_it_and_the_kit_wheel(tmp_path: Path) -> None:
    app = kit_app(tmp_path)
    (app / "notes.txt").write_text("left out by .dockerignore")
    kit = find_kit(tmp_path / "apps", tmp_path / "cache")
    assert kit is not None
    api = FakeDockerAPI()

    build_image(api, plan_build(AppSource("hello", app), registry=None, version=VERSION, kit=kit))

    context = api.contexts[0]
    wheels = [name for name in context if name.startswith("kit/")]
    assert wheels == [f"kit/{kit.wheel().name}"] and kit.wheel().name.startswith("llm_workbench_appkit-")
    assert "Dockerfile" in context and "notes.txt" not in context
    assert api.builds[0]["custom_context"] is True


def test_the_wheel_holds_the_kit_and_is_built_once_per_content(tmp_path: Path) -> None:
    source = tmp_path / "appkit"
    shutil.copytree(KIT, source, ignore=shutil.ignore_patterns("__pycache__", "build"))
    kit = AppKit(source, tmp_path / "cache")

    first = kit.wheel()
    names = zipfile.ZipFile(first).namelist()
    assert "appkit/prompt.py" in names and "appkit/py.typed" in names
    assert not any(name.startswith("tests/") for name in names)
    assert kit.wheel() == first and len(list((tmp_path / "cache").iterdir())) == 1
    assert AppKit(source, tmp_path / "other").wheel().read_bytes() == first.read_bytes()  # reproducible
    assert not (source / "build").exists()  # built from a private copy

    (source / "appkit" / "prompt.py").write_text((source / "appkit" / "prompt.py").read_text() + "\n# changed\n")
    assert kit.wheel() != first


def test_uncommitted_kit_changes_make_the_version_dirty(tmp_path: Path) -> None:
    app = kit_app(tmp_path)
    config = ImagesConfig(apps_dir=tmp_path / "apps", kit_cache=tmp_path / "cache")
    source = AppSource("hello", app)
    assert not config.version(source).dirty

    (tmp_path / "apps" / "appkit" / "appkit" / "prompt.py").write_text("# changed\n")

    assert config.version(source).dirty and config.version(source).version.endswith("-dirty")


def test_a_deploy_asks_for_the_version_the_build_tags(tmp_path: Path) -> None:
    from workbench.settings import load_settings
    from workbench.usecases.deploy import app_version
    from workbench.wiring import Services

    kit_app(tmp_path)
    environ = {"WORKBENCH_IMAGES__APPS_DIR": str(tmp_path / "apps")}
    settings = load_settings(project_file=None, user_file=tmp_path / "none.toml", environ=environ)
    (tmp_path / "apps" / "appkit" / "appkit" / "prompt.py").write_text("# changed\n")

    assert app_version(Services(settings), "hello").endswith("-dirty")  # as `image build` tags it: never a clean tag
