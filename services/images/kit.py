"""The build context of an app's image, with the app kit's wheel in `kit/` for apps that use it.

The apps share `apps/appkit` (security, limits, observability, readiness, the RAG prompt
contract) and its Dockerfile, `apps/appkit/app.Dockerfile`: an app without a Dockerfile of its
own whose pyproject.toml has `[tool.appkit.image]` is built from it (the kit's Dockerfile goes
into the context as `Dockerfile`, beside the app's files). An app whose Dockerfile copies `kit/`
(the kit's does) gets the kit's wheel there, built on this machine (`pip wheel --no-deps` of a
private copy of the kit, with fixed timestamps) and cached by the digest of the kit's files, so an
unchanged kit keeps the image's cached layers. The wheel sits in a folder of its own beside
`wheels/`, so a wheelhouse-only (`--no-index`) install still finds it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from services.errors import ImageBuildError, UsageError
from services.images.apps import AppSource

KIT_FOLDER = "kit"
"""Where the kit's wheel lies in the build context."""
KIT_SOURCE = "appkit"
"""The kit's folder beside the apps."""
KIT_DOCKERFILE = "app.Dockerfile"
"""The Dockerfile of the apps built from the kit's, in the kit's folder."""
DOCKERFILE = "Dockerfile"
"""Where the Dockerfile lies in the build context."""
SOURCE_DATE_EPOCH = "315532800"
"""1980-01-01, the earliest time a wheel (zip) can record: the same kit makes the same wheel."""
_COPIES_KIT = re.compile(r"^\s*(?:COPY|ADD)\s+(?:--\S+\s+)*\.?/?kit(?:/|\s)", re.IGNORECASE | re.MULTILINE)
_SKIPPED = {"__pycache__", "build", "dist", "tests", ".git", ".mypy_cache", ".ruff_cache", ".pytest_cache"}


@dataclass(frozen=True)
class AppKit:
    """The kit's source folder (with its `pyproject.toml`) and where its wheels are cached."""

    source: Path
    cache: Path

    @property
    def dockerfile(self) -> Path:
        """The Dockerfile of the apps built from the kit's."""
        return self.source / KIT_DOCKERFILE

    def wheel(self) -> Path:
        """The kit's wheel for its files as they are now: from the cache, else built into it."""
        target = self.cache / source_digest(self.source)
        cached = sorted(target.glob("*.whl"))
        if cached:
            return cached[0]
        self.cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.cache, prefix=".build-") as scratch:
            built = _build_wheel(self.source, Path(scratch))
            target.mkdir(exist_ok=True)
            return built.replace(target / built.name)  # the same file system: a whole wheel or none


def find_kit(apps_dir: Path, cache: Path) -> AppKit | None:
    """The kit in `apps_dir/appkit` when it is there."""
    source = apps_dir / KIT_SOURCE
    return AppKit(source.resolve(), cache) if (source / "pyproject.toml").is_file() else None


def uses_kit(dockerfile: Path) -> bool:
    """Whether the Dockerfile copies `kit/` from the build context."""
    try:
        return bool(_COPIES_KIT.search(dockerfile.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError):
        return False


def needs_kit(app: AppSource) -> bool:
    """Whether the app's image holds the kit: built from the kit's Dockerfile, or its own copies `kit/`."""
    return app.recipe is not None or uses_kit(app.dockerfile)


def require_kit(app: AppSource, kit: AppKit | None) -> AppKit | None:
    """The kit when the app's image needs it (`UsageError` when there is none, or when the app is
    built from the kit's Dockerfile and the kit has none); None otherwise."""
    if not needs_kit(app):
        return None
    hint = f"keep the kit in {KIT_SOURCE}/ of `images.apps_dir` (a folder with its pyproject.toml)"
    if kit is None:
        what = (
            f"{app.name} is built from the app kit's Dockerfile"
            if app.recipe
            else f"the Dockerfile of {app.name} copies kit/"
        )
        raise UsageError(f"{what}, and no app kit was found", hint=hint)
    if app.recipe is not None and not kit.dockerfile.is_file():
        raise UsageError(
            f"{app.name} is built from the app kit's Dockerfile, and {kit.dockerfile} is missing", hint=hint
        )
    return kit


def source_digest(source: Path) -> str:
    """A digest of the kit's files (names and contents) that go into its wheel."""
    digest = hashlib.sha256()
    for path in _kit_files(source):
        digest.update(path.relative_to(source).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:32]


def _kit_files(source: Path) -> Iterator[Path]:
    for folder, dirs, files in os.walk(source):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED and not d.endswith(".egg-info"))
        for name in sorted(files):
            if not name.endswith((".pyc", ".pyo")):
                yield Path(folder) / name


def _build_wheel(source: Path, scratch: Path) -> Path:
    """`pip wheel` of a private copy of `source` (the kit's folder stays untouched), no index, no deps."""
    copy = scratch / "src"
    for path in _kit_files(source):
        (copy / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, copy / path.relative_to(source))
    out = scratch / "out"
    command = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index"]
    environ = os.environ | {"SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    try:
        done = subprocess.run(
            [*command, "-w", str(out), str(copy)], capture_output=True, text=True, timeout=300, env=environ, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise _kit_failure(source, str(exc)) from None
    wheels = sorted(out.glob("*.whl"))
    if done.returncode != 0 or len(wheels) != 1:
        raise _kit_failure(source, (done.stderr or done.stdout).strip()[-500:])
    return wheels[0]


def _kit_failure(source: Path, detail: str) -> ImageBuildError:
    return ImageBuildError(
        f"the app kit in {source} could not be packaged: {detail or 'pip made no wheel'}",
        hint=f"check that `pip wheel --no-deps --no-build-isolation {source}` works in the workbench's environment",
    )


def write_context(target: IO[bytes], app_path: Path, *, kit_wheel: Path | None, dockerfile: Path | None = None) -> None:
    """Write the app's folder as its `.dockerignore` admits it into `target` as a tar, with `kit_wheel`
    in `kit/` (replacing any `kit/` of the folder) and `dockerfile` (the kit's) as `Dockerfile`, and
    rewind it for docker-py's `custom_context`."""
    from docker.utils.build import exclude_paths

    root = str(app_path)
    names = sorted(exclude_paths(root, _ignore_patterns(app_path), dockerfile=DOCKERFILE))
    if kit_wheel is not None:
        names = [n for n in names if n != KIT_FOLDER and not n.startswith(f"{KIT_FOLDER}/")]
    if dockerfile is not None:
        names = [n for n in names if n != DOCKERFILE]
    with tarfile.open(fileobj=target, mode="w") as tar:
        for name in names:
            tar.add(os.path.join(root, name), arcname=name, recursive=False)
        if kit_wheel is not None:
            _add_kit(tar, kit_wheel)
        if dockerfile is not None:
            _add_file(tar, dockerfile, DOCKERFILE)
    target.seek(0)


def _ignore_patterns(app_path: Path) -> list[str]:
    """The `.dockerignore` patterns, as docker-py reads them."""
    try:
        lines = (app_path / ".dockerignore").read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def _add_kit(tar: tarfile.TarFile, wheel: Path) -> None:
    folder = tarfile.TarInfo(KIT_FOLDER)
    folder.type, folder.mode = tarfile.DIRTYPE, 0o755
    tar.addfile(folder)
    _add_file(tar, wheel, f"{KIT_FOLDER}/{wheel.name}")


def _add_file(tar: tarfile.TarFile, path: Path, name: str) -> None:
    entry = tarfile.TarInfo(name)
    entry.size, entry.mode = path.stat().st_size, 0o644
    with path.open("rb") as data:
        tar.addfile(entry, data)
