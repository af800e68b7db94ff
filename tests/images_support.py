"""Apps for the Images tests: the fixture app in a git repository made with a fixed author and date.

The commit id therefore depends only on the fixture's files, so versions (and the tags made from
them) are the same on every run and machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

FIXTURE_APPS = Path(__file__).parent / "fixtures" / "apps"
FIXTURE_APP = FIXTURE_APPS / "hello"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Workbench Tests",
    "GIT_AUTHOR_EMAIL": "tests@workbench.invalid",
    "GIT_COMMITTER_NAME": "Workbench Tests",
    "GIT_COMMITTER_EMAIL": "tests@workbench.invalid",
    "GIT_AUTHOR_DATE": "2024-03-01T12:00:00+00:00",
    "GIT_COMMITTER_DATE": "2024-03-01T12:00:00+00:00",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), *args], env={**os.environ, **GIT_ENV}, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def git_app(root: Path, name: str = "hello", *, tag: str | None = None, source: Path = FIXTURE_APP) -> Path:
    """A git repository at `root` holding `source` (the fixture app) as `apps/<name>`, committed (and tagged)."""
    app = root / "apps" / name
    shutil.copytree(source, app, ignore=shutil.ignore_patterns("__pycache__"))
    for path in [app, *app.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", f"{name} app")
    if tag:
        git(root, "tag", tag)
    return app


def short_head(root: Path) -> str:
    return git(root, "rev-parse", "--short=7", "HEAD")
