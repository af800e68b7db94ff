"""`workbench image ...`: build the apps into Docker images, push them to the registry, list them.

The build log and the push's per-layer progress go to stderr, the summary to stdout. Ctrl-C
cancels a build or push cleanly (the engine stops it; exit code 130); a second Ctrl-C leaves at once.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import click

from services.errors import CancelledError
from workbench.cli.context import Context, pass_context

if TYPE_CHECKING:
    from services.images.build import BuildEvent
    from services.images.push import PushProgress
    from services.progress import CancelToken

T = TypeVar("T")
PUSH_LINE_EVERY_S = 2.0
BASE_HELP = "BASE_IMAGE for the build (default: images.base_images, images.base_image, else the Dockerfile's)."
ARG_HELP = "Extra build argument (repeatable; never a secret: build arguments stay in the image's history)."


@click.group()
def image() -> None:
    """The apps' Docker images: build with a live log, push with per-layer progress, list."""


@image.command("build")
@click.argument("app")
@click.option("--base-image", metavar="IMG", help=BASE_HELP)
@click.option("--build-arg", "build_args", multiple=True, metavar="K=V", help=ARG_HELP)
@click.option("--no-cache", is_flag=True, help="Run every step again instead of reusing cached layers.")
@click.option("--quiet", is_flag=True, help="No build log, only the summary.")
@pass_context
def image_build(
    obj: Context, app: str, base_image: str | None, build_args: tuple[str, ...], no_cache: bool, quiet: bool
) -> None:
    """Build APP into `<registry>/<app>:<version>` (version from git; `-dirty` with uncommitted changes)."""
    from workbench.present import image as render_image
    from workbench.usecases.images import build

    printer = None if quiet else _log_printer()
    result = run_cancellable(
        lambda cancel: build(
            obj.services,
            app,
            base_image=base_image,
            build_args=build_args,
            nocache=no_cache,
            on_event=printer,
            cancel=cancel,
        )
    )
    click.echo(render_image.build_summary(result))


def _log_printer() -> Callable[[BuildEvent], None]:
    def show(event: BuildEvent) -> None:
        click.echo(event.text, err=True)

    return show


@image.command("push")
@click.argument("target", metavar="APP[:TAG]")
@click.option("--quiet", is_flag=True, help="No progress, only the summary.")
@pass_context
def image_push(obj: Context, target: str, quiet: bool) -> None:
    """Push APP's image (no TAG: the app's current version) to the registry; prints digest and size."""
    from workbench.present import image as render_image
    from workbench.usecases.images import push

    printer = None if quiet else _push_printer()
    result = run_cancellable(lambda cancel: push(obj.services, target, on_progress=printer, cancel=cancel))
    click.echo(render_image.push_summary(result))


def _push_printer() -> Callable[[PushProgress], None]:
    from workbench.present import image as render_image

    last = [0.0]

    def show(progress: PushProgress) -> None:
        for layer in progress.changed:
            click.echo(render_image.layer_line(layer), err=True)
        if time.monotonic() - last[0] >= PUSH_LINE_EVERY_S:
            last[0] = time.monotonic()
            click.echo(render_image.push_line(progress), err=True)

    return show


@image.command("ls")
@click.option("--remote", is_flag=True, help="Also list the registry's tags and digests.")
@click.option(
    "--json", "as_json", is_flag=True, help="Print JSON: registry, apps with local images and tags, problems."
)
@pass_context
def image_ls(obj: Context, remote: bool, as_json: bool) -> None:
    """List the apps, their versions, local images and (with --remote) the registry's tags and digests.
    Exit 1 when the engine or the registry could not be read (what was read is still shown)."""
    from workbench.present import image as render_image
    from workbench.usecases.images import inventory

    if remote:
        obj.services.registry_access().require_server()
    found = inventory(obj.services, remote=remote)
    click.echo(render_image.inventory_json(found) if as_json else render_image.inventory_text(found))
    for problem in found.problems:
        click.echo(f"warning: {problem}", err=True)
    if found.problems:
        sys.exit(1)


def run_cancellable(work: Callable[[CancelToken], T]) -> T:
    """Run `work(cancel)` in a thread; Ctrl-C sets the token and waits for a clean stop (exit 130)."""
    from services.progress import CancelToken

    cancel = CancelToken()
    outcome: dict[str, object] = {}
    finished = threading.Event()  # not Thread.join: an interrupted join can make is_alive() lie (3.11)

    def target() -> None:
        try:
            outcome["result"] = work(cancel)
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            finished.set()

    threading.Thread(target=target, name="workbench-image", daemon=True).start()
    while not finished.is_set():
        try:
            finished.wait(0.2)
        except KeyboardInterrupt:
            if cancel.cancelled:
                raise
            cancel.cancel()
            click.echo("cancelling… (Ctrl-C again to leave at once)", err=True)
    error = outcome.get("error")
    if isinstance(error, CancelledError) and cancel.cancelled:
        click.echo(f"{error.message} ({error.hint})" if error.hint else error.message, err=True)
        sys.exit(130)
    if isinstance(error, BaseException):
        raise error
    return outcome["result"]  # type: ignore[return-value]
