"""The apps: folders with a Dockerfile, their version from git, and the tag an image of them gets.

The version is `git describe --tags --always`, ending with the short commit (`v1.2-3-gabc1234`,
`v1.2-gabc1234` on a tagged commit, `abc1234` without tags); uncommitted or untracked files in the
app's folder add `-dirty`, and such a version can never be deployed to `prod`. A folder outside
any git work tree has no provenance at all: `unversioned-dirty`.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from services.errors import NotFoundError, UsageError

DIRTY = "-dirty"
UNVERSIONED = "unversioned"
PROTECTED_ENVIRONMENTS = frozenset({"prod"})
"""Environments that only take versions built from a clean, committed tree."""
_TAG_BAD = re.compile(r"[^A-Za-z0-9_.-]")
_NAME_BAD = re.compile(r"[^a-z0-9._-]")


@dataclass(frozen=True)
class AppSource:
    """An app the workbench can build: its name and its folder (the build context)."""

    name: str
    path: Path

    @property
    def dockerfile(self) -> Path:
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
    """Every subfolder of `apps_dir` with a Dockerfile, then each folder of `extra` that has one,
    sorted by name; a later folder with the same name as an earlier one is left out."""
    found = sorted(p for p in apps_dir.iterdir() if (p / "Dockerfile").is_file()) if apps_dir.is_dir() else []
    found += [p for p in extra if (p / "Dockerfile").is_file()]
    apps: dict[str, AppSource] = {}
    for path in found:
        apps.setdefault(app_name(path.name), AppSource(app_name(path.name), path.resolve()))
    return sorted(apps.values(), key=lambda app: app.name)


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
        hint="apps are folders with a Dockerfile under `images.apps_dir` or in `images.app_dirs`",
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
