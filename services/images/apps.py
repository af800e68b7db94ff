"""The apps: folders with a Dockerfile, or built from the app kit's (`[tool.appkit.image]` in their
`pyproject.toml`), their version from git, and the tag an image of them gets.

The version is `git describe --tags --always`, ending with the short commit (`v1.2-3-gabc1234`,
`v1.2-gabc1234` on a tagged commit, `abc1234` without tags); uncommitted or untracked files in the
app's folder add `-dirty`, and such a version can never be deployed to `prod`. A folder outside
any git work tree has no provenance at all: `unversioned-dirty`.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.errors import NotFoundError, UsageError

DIRTY = "-dirty"
UNVERSIONED = "unversioned"
PROTECTED_ENVIRONMENTS = frozenset({"prod"})
"""Environments that only take versions built from a clean, committed tree."""
_TAG_BAD = re.compile(r"[^A-Za-z0-9_.-]")
_NAME_BAD = re.compile(r"[^a-z0-9._-]")


@dataclass(frozen=True)
class KitRecipe:
    """An app built from the app kit's Dockerfile, as `[tool.appkit.image]` of its pyproject.toml says."""

    package: str
    """The app's package: the image holds `<package>/` and serves `<package>.app:create_app`."""
    description: str
    """The image's `org.opencontainers.image.description` label."""

    def build_args(self) -> dict[str, str]:
        """The build arguments the kit's Dockerfile takes from the app."""
        return {"APP": self.package, "DESCRIPTION": self.description}


RECIPE_ARGS = frozenset({"APP", "DESCRIPTION"})
"""Build arguments a `KitRecipe` sets."""


@dataclass(frozen=True)
class AppSource:
    """An app the workbench can build: its name and its folder (the build context); `recipe` when
    the folder has no Dockerfile of its own and is built from the app kit's."""

    name: str
    path: Path
    recipe: KitRecipe | None = None

    @property
    def dockerfile(self) -> Path:
        """The app's own Dockerfile (absent for an app built from the kit's)."""
        return self.path / "Dockerfile"


@dataclass(frozen=True)
class GitVersion:
    """What git says about an app's folder."""

    version: str
    """Tag-safe version: describe output ending with the short commit, plus `-dirty` when changed."""
    revision: str
    """Full commit id; empty outside a git work tree."""
    dirty: bool


def discover_apps(apps_dir: Path, extra: Sequence[Path] = ()) -> list[AppSource]:
    """Every app among the subfolders of `apps_dir`, then among the folders of `extra` (see
    `read_app`), sorted by name; a later folder with the same name as an earlier one is left out."""
    folders = sorted(p for p in apps_dir.iterdir() if p.is_dir()) if apps_dir.is_dir() else []
    apps: dict[str, AppSource] = {}
    for path in [*folders, *extra]:
        app = read_app(path)
        if app is not None:
            apps.setdefault(app.name, app)
    return sorted(apps.values(), key=lambda app: app.name)


def read_app(path: Path) -> AppSource | None:
    """The app in folder `path`: built from its own Dockerfile when it has one, else from the app
    kit's when its pyproject.toml has `[tool.appkit.image]`; None for any other folder."""
    name = app_name(path.name)
    if (path / "Dockerfile").is_file():
        return AppSource(name, path.resolve())
    recipe = read_recipe(path)
    return AppSource(name, path.resolve(), recipe) if recipe else None


def read_recipe(path: Path) -> KitRecipe | None:
    """`[tool.appkit.image]` of the folder's pyproject.toml: `package` (default: the folder's name)
    and `description` (default: the project's); None without one (or without a readable file),
    `UsageError` for a table that says something else."""
    try:
        project = tomllib.loads((path / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    table = _table(_table(project.get("tool")).get("appkit")).get("image")
    if table is None:
        return None
    where = f"[tool.appkit.image] of {path / 'pyproject.toml'}"
    if not isinstance(table, Mapping):
        raise UsageError(f"{where} is not a table", hint='e.g. description = "What the app does"')
    package = table.get("package", path.name)
    description = table.get("description", _table(project.get("project")).get("description", ""))
    unknown = sorted(set(table) - {"package", "description"})
    if unknown or not isinstance(package, str) or not package.isidentifier() or not isinstance(description, str):
        raise UsageError(
            f"{where} is not understood",
            hint="it takes `package` (the app's Python package; default: the folder's name) and `description`",
        )
    return KitRecipe(package, description)


def _table(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def app_name(folder: str) -> str:
    """A folder's name as an image repository name (lower case; other characters become `-`)."""
    return _NAME_BAD.sub("-", folder.lower()).strip("-._") or "app"


def find_app(apps: Iterable[AppSource], name: str) -> AppSource:
    """The app called `name`; `NotFoundError` listing the known ones otherwise."""
    apps = list(apps)
    for app in apps:
        if app.name == name:
            return app
    known = ", ".join(app.name for app in apps) or "none"
    raise NotFoundError(
        f"no app named {name!r} (known: {known})",
        hint="apps are folders under `images.apps_dir` or in `images.app_dirs` with a Dockerfile "
        "or `[tool.appkit.image]` in their pyproject.toml",
    )


def app_version(path: Path, *, also: Sequence[Path] = ()) -> GitVersion:
    """The version of the app in folder `path`, from git (see the module docstring); changes in the
    folders of `also` (the app kit its image holds) make it dirty too, as does such a folder that
    git does not track."""
    revision = _git(path, "rev-parse", "HEAD")
    if revision is None:
        return GitVersion(UNVERSIONED + DIRTY, "", True)
    describe = _git(path, "describe", "--tags", "--always", "--abbrev=7") or revision[:7]
    short = _git(path, "rev-parse", "--short=7", "HEAD") or revision[:7]
    version = describe if describe.endswith(short) else f"{describe}-g{short}"
    dirty = bool(_git(path, "status", "--porcelain", "--untracked-files=normal", "--", "."))
    dirty = dirty or any(_changed(folder) for folder in also)
    return GitVersion(_tag_safe(version) + (DIRTY if dirty else ""), revision, dirty)


def _changed(folder: Path) -> bool:
    """Whether `folder` has uncommitted changes; True when git cannot tell (no work tree)."""
    status = _git(folder, "status", "--porcelain", "--untracked-files=normal", "--", ".")
    return status is None or bool(status)


def _git(path: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _tag_safe(version: str) -> str:
    return _TAG_BAD.sub("-", version).lstrip(".-")[:128] or UNVERSIONED


def is_deployable(version: str, environment: str) -> bool:
    """False for a dirty (or unversioned) version and a protected environment such as `prod`."""
    return not (environment in PROTECTED_ENVIRONMENTS and version.endswith(DIRTY))


def require_deployable(reference: str, environment: str) -> None:
    """Refuse (`UsageError`) to deploy image `reference` to `environment` when its tag is dirty there."""
    _, tag = split_reference(reference)
    if not is_deployable(tag or "", environment):
        raise UsageError(
            f"{reference} was built from uncommitted changes and cannot be deployed to {environment}",
            hint="commit the app's changes, build again and deploy the new tag",
        )


def image_repository(registry: str | None, app: str) -> str:
    """`<registry>/<app>`, or just `<app>` without a registry (a local-only image)."""
    return f"{registry.rstrip('/')}/{app}" if registry else app


def image_reference(registry: str | None, app: str, version: str) -> str:
    """The tag an app's image gets: `<registry>/<app>:<version>`."""
    return f"{image_repository(registry, app)}:{version}"


def split_reference(reference: str) -> tuple[str, str | None]:
    """(`repository`, `tag` or None) of `repo[:tag]`; a registry's `host:port/` is not a tag."""
    name, sep, tag = reference.rpartition(":")
    if not sep or "/" in tag:
        return reference, None
    return name, tag
