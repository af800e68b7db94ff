"""What `workbench image` and the Images mode call: list the apps and their images, build, push.

Each function takes an `ImagesConfig` (built from settings by the caller) and, for tests, an
optional docker-py `api`; without one it connects to `config.docker_host`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from platformdirs import user_cache_path

from services.errors import UsageError, WorkbenchError
from services.images.apps import AppSource, GitVersion, app_version, discover_apps, find_app, image_reference
from services.images.build import BuildResult, OnBuildEvent, build_image, plan_build
from services.images.credentials import RegistryAccess
from services.images.engine import LocalImage, connect, list_local_images
from services.images.kit import AppKit, find_kit, needs_kit
from services.images.push import OnPush, PushResult, push_image
from services.images.registry import RegistryClient, RegistryLogin, login_hint
from services.progress import CancelToken

PUSH_VALIDITY_S = 45 * 60
"""Credentials that expire sooner than this (ACR refresh tokens) are renewed before a push starts."""
MAX_REMOTE_TAGS = 50
"""Registry tags per app whose digest a listing asks for (the newest by name first)."""


@dataclass(frozen=True)
class ImagesConfig:
    """Where the apps are, how they are built and where their images go; built from settings."""

    apps_dir: Path = Path("apps")
    app_dirs: tuple[Path, ...] = ()
    base_image: str | None = None
    base_images: Mapping[str, str] = field(default_factory=dict)
    docker_host: str | None = None
    registry: RegistryAccess = field(default_factory=lambda: RegistryAccess(None))
    kit_dir: Path | None = None
    """The app kit's folder; by default `appkit` in `apps_dir` when it is there."""
    kit_cache: Path | None = None
    """Where the kit's wheels are cached; by default the user's cache folder."""

    def base_image_for(self, app: str) -> str | None:
        return self.base_images.get(app) or self.base_image

    def kit(self) -> AppKit | None:
        """The app kit apps' images hold, if there is one."""
        cache = self.kit_cache or user_cache_path("llm-workbench", appauthor=False) / "appkit-wheels"
        if self.kit_dir is not None:
            return AppKit(self.kit_dir.resolve(), cache)
        return find_kit(self.apps_dir, cache)

    def version(self, app: AppSource) -> GitVersion:
        """The app's version, dirty also when the kit its image holds has uncommitted changes."""
        kit = self.kit() if needs_kit(app) else None
        return app_version(app.path, also=[kit.source] if kit else [])


@dataclass(frozen=True)
class RemoteTag:
    """A tag of an app in the registry, with its manifest digest (None when it could not be read)."""

    app: str
    tag: str
    digest: str | None


@dataclass(frozen=True)
class AppImages:
    """One app: its version now, the tag a build would get, its local images and registry tags."""

    app: AppSource
    version: GitVersion
    reference: str
    local: tuple[LocalImage, ...] = ()
    remote: tuple[RemoteTag, ...] = ()

    @property
    def built(self) -> bool:
        """An image of the current version exists locally."""
        return any(image.reference == self.reference for image in self.local)


@dataclass(frozen=True)
class Inventory:
    """Everything the Images mode and `image ls` show; `problems` says what could not be read."""

    registry: str | None
    apps: tuple[AppImages, ...]
    problems: tuple[str, ...] = ()
    remote_listed: bool = False


def list_apps(config: ImagesConfig) -> list[AppSource]:
    """The apps under `config.apps_dir` and in `config.app_dirs`."""
    return discover_apps(config.apps_dir, config.app_dirs)


def inventory(config: ImagesConfig, *, remote: bool = True, api: Any = None) -> Inventory:
    """Apps with their versions, local images and (with `remote`) registry tags and digests.
    An unreachable engine or registry becomes a line in `problems`, never an exception."""
    apps = list_apps(config)
    server = config.registry.server
    problems: list[str] = []
    local = _local(config, apps, api, problems)
    tags = _remote(config, apps, problems) if remote and server else {}
    rows = []
    for app in apps:
        version = config.version(app)
        mine = tuple(image for image in local if image.app == app.name)
        reference = image_reference(server, app.name, version.version)
        rows.append(AppImages(app, version, reference, mine, tuple(tags.get(app.name, ()))))
    return Inventory(server, tuple(rows), tuple(problems), remote_listed=bool(remote and server))


def _local(config: ImagesConfig, apps: list[AppSource], api: Any, problems: list[str]) -> list[LocalImage]:
    try:
        return list_local_images(api or connect(config.docker_host), apps, registry=config.registry.server)
    except WorkbenchError as exc:
        problems.append(str(exc))
        return []


def _remote(config: ImagesConfig, apps: list[AppSource], problems: list[str]) -> dict[str, list[RemoteTag]]:
    found: dict[str, list[RemoteTag]] = {}
    try:
        with RegistryClient(config.registry) as client:
            for app in apps:
                names = sorted(client.tags(app.name), reverse=True)[:MAX_REMOTE_TAGS]
                found[app.name] = [RemoteTag(app.name, tag, client.manifest_digest(app.name, tag)) for tag in names]
    except WorkbenchError as exc:
        problems.append(str(exc))
    return found


def build_app(
    config: ImagesConfig,
    name: str,
    *,
    base_image: str | None = None,
    build_args: Mapping[str, str] | None = None,
    nocache: bool = False,
    on_event: OnBuildEvent | None = None,
    cancel: CancelToken | None = None,
    api: Any = None,
) -> BuildResult:
    """Build app `name` as `<registry>/<name>:<version>`; BASE_IMAGE from `base_image`, else settings."""
    app = find_app(list_apps(config), name)
    request = plan_build(
        app,
        registry=config.registry.server,
        base_image=base_image or config.base_image_for(app.name),
        build_args=build_args,
        nocache=nocache,
        version=config.version(app),
        kit=config.kit(),
    )
    return build_image(api or connect(config.docker_host), request, on_event=on_event, cancel=cancel)


def parse_target(target: str) -> tuple[str, str | None]:
    """`APP[:TAG]` as (app, tag or None)."""
    name, sep, tag = target.partition(":")
    if not name or (sep and not tag) or "/" in target:
        raise UsageError(f"{target!r} is not APP or APP:TAG", hint="e.g. chatbot or chatbot:v1.2-g1a2b3c4")
    return name, tag or None


def push_app(
    config: ImagesConfig,
    target: str,
    *,
    on_progress: OnPush | None = None,
    cancel: CancelToken | None = None,
    api: Any = None,
    login: RegistryLogin | None = None,
) -> PushResult:
    """Push `APP[:TAG]` (no tag: the app's current version) to the registry; the result carries the
    digest and the compressed size the registry reports."""
    name, tag = parse_target(target)
    app = find_app(list_apps(config), name)
    server = config.registry.require_server()
    reference = image_reference(server, app.name, tag or config.version(app).version)
    login = login or RegistryLogin(config.registry)
    credentials = login.credentials(valid_for_s=PUSH_VALIDITY_S)
    result = push_image(
        api or connect(config.docker_host),
        reference,
        credentials=credentials,
        on_progress=on_progress,
        cancel=cancel,
        auth_hint=login_hint(config.registry),
    )
    return replace(result, size_bytes=_registry_size(config, login, app.name, reference.rsplit(":", 1)[1]))


def _registry_size(config: ImagesConfig, login: RegistryLogin, app: str, tag: str) -> int | None:
    try:
        with RegistryClient(config.registry, login) as client:
            manifest = client.manifest(app, tag)
    except WorkbenchError:
        return None
    return manifest.size_bytes if manifest else None
