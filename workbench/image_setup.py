"""From settings to `services.images` objects, shared by `workbench image` and the Images mode."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from services.images.ops import ImagesConfig
    from services.images.registry import RegistryAccess
    from workbench.settings import Settings


def registry_access(settings: Settings, *, credential: Any = None) -> RegistryAccess:
    """The registry the `registry` section describes (the password stays in its environment variable)."""
    from services.images.registry import RegistryAccess

    registry = settings.registry
    return RegistryAccess(
        server=registry.login_server,
        auth=registry.auth,
        username=registry.username,
        password_env=registry.password_env,
        plain_http=registry.plain_http,
        credential=credential,
    )


def images_config(settings: Settings, *, credential: Any = None) -> ImagesConfig:
    """Apps, base images, engine and registry from the `images` and `registry` sections."""
    from services.images.ops import ImagesConfig

    images = settings.images
    return ImagesConfig(
        apps_dir=images.apps_dir,
        app_dirs=tuple(images.app_dirs),
        base_image=images.base_image,
        base_images=dict(images.base_images),
        docker_host=images.docker_host,
        registry=registry_access(settings, credential=credential),
    )
