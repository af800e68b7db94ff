"""Apps of the Images mode: discovery, versions from git, tags, and the prod rule for dirty versions."""

from pathlib import Path

import pytest

from services.errors import NotFoundError, UsageError
from services.images.apps import (
    app_version,
    discover_apps,
    find_app,
    image_reference,
    is_deployable,
    require_deployable,
    split_reference,
)
from tests.images_support import git, git_app, short_head


def make_app(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "Dockerfile").write_text("FROM scratch\n")
    return folder


def test_discovers_app_folders_and_extra_folders(tmp_path: Path) -> None:
    make_app(tmp_path / "apps" / "chatbot")
    make_app(tmp_path / "apps" / "Classifier")
    (tmp_path / "apps" / "docs").mkdir()  # no Dockerfile: not an app
    extra = make_app(tmp_path / "elsewhere" / "summariser")
    duplicate = make_app(tmp_path / "other" / "chatbot")
    apps = discover_apps(tmp_path / "apps", [extra, duplicate, tmp_path / "missing"])
    assert [(a.name, a.path) for a in apps] == [
        ("chatbot", (tmp_path / "apps" / "chatbot").resolve()),
        ("classifier", (tmp_path / "apps" / "Classifier").resolve()),
        ("summariser", extra.resolve()),
    ]
    assert apps[0].dockerfile == apps[0].path / "Dockerfile"
    assert discover_apps(tmp_path / "nothing-here") == []


def test_unknown_app_lists_the_known_ones(tmp_path: Path) -> None:
    make_app(tmp_path / "apps" / "chatbot")
    with pytest.raises(NotFoundError) as err:
        find_app(discover_apps(tmp_path / "apps"), "chatbox")
    assert "no app named 'chatbox' (known: chatbot)" in str(err.value)


def test_version_is_describe_with_the_short_commit(tmp_path: Path) -> None:
    app = git_app(tmp_path)
    sha = short_head(tmp_path)
    version = app_version(app)
    assert (version.version, version.dirty) == (sha, False)
    assert len(version.revision) == 40 and version.revision.startswith(sha)


def test_tagged_versions_keep_the_commit(tmp_path: Path) -> None:
    app = git_app(tmp_path, tag="v1.2")
    assert app_version(app).version == f"v1.2-g{short_head(tmp_path)}"
    (app / "app" / "server.py").write_text("print('v2')\n")
    git(tmp_path, "commit", "-qam", "change")
    assert app_version(app).version == f"v1.2-1-g{short_head(tmp_path)}"


def test_changed_or_untracked_files_make_it_dirty(tmp_path: Path) -> None:
    app = git_app(tmp_path)
    sha = short_head(tmp_path)
    (tmp_path / "README.md").write_text("outside the app: not part of its image\n")
    assert app_version(app).version == sha
    (app / "app" / "new.py").write_text("x = 1\n")
    assert app_version(app).version == f"{sha}-dirty"
    (app / "app" / "new.py").unlink()
    (app / "app" / "server.py").write_text("changed\n")
    dirty = app_version(app)
    assert (dirty.version, dirty.dirty) == (f"{sha}-dirty", True)


def test_a_folder_outside_git_is_unversioned(tmp_path: Path) -> None:
    version = app_version(make_app(tmp_path / "loose"))
    assert (version.version, version.revision, version.dirty) == ("unversioned-dirty", "", True)


def test_dirty_versions_never_go_to_prod() -> None:
    assert is_deployable("v1.2-g1a2b3c4", "prod")
    assert is_deployable("v1.2-g1a2b3c4-dirty", "dev")
    assert not is_deployable("v1.2-g1a2b3c4-dirty", "prod")
    assert not is_deployable("unversioned-dirty", "prod")
    require_deployable("reg:5000/chatbot:1a2b3c4", "prod")
    with pytest.raises(UsageError) as err:
        require_deployable("reg:5000/chatbot:1a2b3c4-dirty", "prod")
    assert "uncommitted changes" in err.value.message and "commit" in (err.value.hint or "")


def test_references_and_their_parts() -> None:
    assert image_reference("10.0.0.1:5000", "hello", "abc1234") == "10.0.0.1:5000/hello:abc1234"
    assert image_reference(None, "hello", "abc1234") == "hello:abc1234"
    assert split_reference("10.0.0.1:5000/hello:abc1234") == ("10.0.0.1:5000/hello", "abc1234")
    assert split_reference("10.0.0.1:5000/hello") == ("10.0.0.1:5000/hello", None)
    assert split_reference("hello") == ("hello", None)


def kit_built_app(folder: Path, table: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "pyproject.toml").write_text(f'[project]\nname = "x"\ndescription = "From the project."\n\n{table}')
    return folder


def test_a_folder_whose_pyproject_asks_for_the_kit_dockerfile_is_an_app(tmp_path: Path) -> None:
    kit_built_app(tmp_path / "apps" / "chatbot", '[tool.appkit.image]\ndescription = "Chats."\n')
    kit_built_app(tmp_path / "apps" / "ranker", '[tool.appkit.image]\npackage = "rank"\n')
    kit_built_app(tmp_path / "apps" / "appkit", "[tool.setuptools]\npackages = []\n")  # no table: not an app
    own = kit_built_app(tmp_path / "apps" / "own", "[tool.appkit.image]\n")
    (own / "Dockerfile").write_text("FROM scratch\n")  # its own Dockerfile wins

    apps = {app.name: app for app in discover_apps(tmp_path / "apps")}

    assert sorted(apps) == ["chatbot", "own", "ranker"]
    assert apps["chatbot"].recipe is not None and apps["chatbot"].recipe.build_args() == {
        "APP": "chatbot",
        "DESCRIPTION": "Chats.",
    }
    assert apps["ranker"].recipe is not None and apps["ranker"].recipe.build_args() == {
        "APP": "rank",
        "DESCRIPTION": "From the project.",
    }
    assert apps["own"].recipe is None


@pytest.mark.parametrize("table", ['[tool.appkit]\nimage = "yes"\n', '[tool.appkit.image]\npackage = "a-b"\n'])
def test_a_table_that_says_something_else_is_refused(tmp_path: Path, table: str) -> None:
    kit_built_app(tmp_path / "apps" / "odd", table)
    with pytest.raises(UsageError) as err:
        discover_apps(tmp_path / "apps")
    assert "[tool.appkit.image]" in err.value.message
