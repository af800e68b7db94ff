"""Image verbs: list the apps with their images, build one, push one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.images.build import BuildResult, OnBuildEvent
    from services.images.ops import Inventory
    from services.images.push import OnPush, PushResult
    from services.progress import CancelToken
    from workbench.wiring import Services


def inventory(services: Services, *, remote: bool) -> Inventory:
    """The apps, their versions and local images, and with `remote` the registry's tags (when one is set).
    An unreachable engine or registry is a line in `problems`, never an exception."""
    from services.images.ops import inventory as listed

    return listed(services.images_config(), remote=remote)


def build(
    services: Services,
    app: str,
    *,
    base_image: str | None = None,
    build_args: Sequence[str] = (),
    nocache: bool = False,
    on_event: OnBuildEvent | None = None,
    cancel: CancelToken | None = None,
) -> BuildResult:
    """Build `app` as `<registry>/<app>:<version>` (version from git); `build_args` are `KEY=VALUE` texts."""
    from services.images.build import parse_build_args
    from services.images.ops import build_app

    return build_app(
        services.images_config(),
        app,
        base_image=base_image,
        build_args=parse_build_args(tuple(build_args)),
        nocache=nocache,
        on_event=on_event,
        cancel=cancel,
    )


def push(
    services: Services, target: str, *, on_progress: OnPush | None = None, cancel: CancelToken | None = None
) -> PushResult:
    """Push `APP[:TAG]` (no tag: the app's current version); the result carries digest and size."""
    from services.images.ops import push_app

    return push_app(services.images_config(), target, on_progress=on_progress, cancel=cancel)
