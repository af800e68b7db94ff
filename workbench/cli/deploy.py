"""`workbench deploy APP --target T`, `workbench deploy lock status|release`, `workbench rollback`, `workbench status`.

A deploy prints each pipeline step with its state and duration. For a prod target the app's name
must be typed to confirm (without a terminal: `--yes-i-typed APP`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from services.errors import DeployFailedError
from workbench.cli.context import Context, pass_context
from workbench.cli.output import ask, confirm, confirm_typed

if TYPE_CHECKING:
    from services.deploy.pipeline import StepEvent
    from services.deploy.target import Target

MARKS = {"done": "ok", "failed": "FAILED", "skipped": "skip"}


class DeployGroup(click.Group):
    """`deploy APP ...` runs a deploy; `deploy lock ...` is a subcommand."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] in self.commands:
            return super().resolve_command(ctx, args)
        return "run", self.commands["run"], args

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage("workbench deploy", "APP --target T [--target T2] [--version V] | lock status|release")


@click.group(cls=DeployGroup, context_settings={"ignore_unknown_options": True})
def deploy() -> None:
    """Deploy an app version to targets in order, health-gated, with no failed requests during the switch.

    \b
    workbench deploy APP --target staging --target prod [--version V]
    workbench deploy lock status --target T [APP]
    workbench deploy lock release APP --target T --force OWNER
    """


@deploy.command("run", hidden=True)
@click.argument("app")
@click.option(
    "--target", "targets", multiple=True, required=True, help="Target (dev, staging, prod); repeat for order."
)
@click.option("--version", help="Version to deploy (default: the app's git version, as `image build` tags it).")
@click.option("--no-gate", is_flag=True, help="Skip the app's prompt suite.")
@click.option("--yes", is_flag=True, help="Do not ask before a dev or staging deploy.")
@click.option("--yes-i-typed", "typed", metavar="APP", help="Confirm a prod deploy without a terminal.")
@pass_context
def deploy_run(
    obj: Context, app: str, targets: tuple[str, ...], version: str | None, no_gate: bool, yes: bool, typed: str | None
) -> None:
    """Deploy APP to each --target in turn; a later target starts only when the earlier came up healthy."""
    from workbench.present.deploy import hosts_text
    from workbench.usecases import deploy as usecase

    for name in targets:
        request = usecase.deploy_request(obj.services, app, name, version=version, gate=not no_gate)
        _confirm_deploy(request.target, app, request.version, yes=yes, typed=typed)
        click.echo(f"deploy {app} {request.version} -> {name} ({hosts_text(request.target)})")
        try:
            release = usecase.deploy(obj.services, request, on_step=_print_step, confirm=ask)
        except DeployFailedError as exc:
            if exc.logs:
                click.echo(f"--- last lines of the new container's log\n{exc.logs.rstrip()}\n---", err=True)
            raise
        bom = release.bom
        click.echo(
            f"{app} {release.version} is live on {name} (release {release.id}, {bom['digest'][:19]}, "
            f"serving after {bom.get('serving_after_s', 0):.1f} s)"
        )


def _confirm_deploy(target: Target, app: str, version: str, *, yes: bool, typed: str | None) -> None:
    if target.environment == "prod":
        question = f"Deploy {app} {version} to {target.name} (prod)? Type the app's name"
        confirm_typed(question, app, typed=typed, refusal=f"a prod deploy must be confirmed by typing {app!r}")
        return
    question = f"Deploy {app} {version} to {target.name}?"
    confirm(question, yes=yes, refusal=f"refusing to deploy to {target.name} without confirmation")


def _print_step(event: StepEvent) -> None:
    if event.state == "running":
        return
    mark = MARKS.get(event.state, event.state)
    click.echo(f"  [{mark:>6}] {event.step:<10} {event.seconds:6.2f} s  {event.detail}")


@deploy.group("lock")
def deploy_lock() -> None:
    """The deploy lock each app has on each target."""


@deploy_lock.command("status")
@click.option("--target", required=True, help="Target name.")
@click.argument("apps", nargs=-1)
@pass_context
def lock_status(obj: Context, target: str, apps: tuple[str, ...]) -> None:
    """Who holds the deploy lock of each app (default: every app of the target)."""
    from services.deploy import lock
    from services.deploy.engine import connect

    spec = obj.services.deploy_target(target)
    with connect(spec) as client:
        for app in apps or tuple(spec.apps):
            held = lock.current(client, app)
            stale = (
                (" (stale: " + ("lease expired)" if held.expired else "process gone)")) if held and held.stale else ""
            )
            click.echo(f"{app}: " + (f"locked by {held.describe()}{stale}" if held else "free"))


@deploy_lock.command("release")
@click.argument("app")
@click.option("--target", required=True, help="Target name.")
@click.option("--force", "holder", metavar="OWNER", help="Clear a lock you do not hold: name its owner (see status).")
@click.option("--yes", is_flag=True, help="Do not ask.")
@pass_context
def lock_release(obj: Context, app: str, target: str, holder: str | None, yes: bool) -> None:
    """Clear APP's deploy lock after a deploy that died; only with --force naming the lock's owner."""
    from services.deploy import lock
    from services.deploy.engine import connect
    from services.errors import NotFoundError

    with connect(obj.services.deploy_target(target)) as client:
        held = lock.current(client, app)
        if held is None:
            raise NotFoundError(f"{app} is not locked on {target}")
        lock.check_named(held, holder)
        _confirm_clear(held, target, yes=yes)
        lock.break_lock(client, held)
    click.echo(f"{app}: lock of {held.describe()} cleared")


def _confirm_clear(held: Any, target: str, *, yes: bool) -> None:
    live = "" if held.stale else " Its lease is still being renewed: that deploy looks alive."
    question = f"Clear the deploy lock of {held.app} on {target}, held by {held.describe()}?{live}"
    confirm(question, yes=yes, refusal="refusing to clear a lock without confirmation")


@click.command("rollback")
@click.argument("app")
@click.option("--target", required=True, help="Target name.")
@click.option("--to", "to", metavar="RELEASE", help="Release id (or prefix) to go back to (default: the previous).")
@pass_context
def rollback(obj: Context, app: str, target: str, to: str | None) -> None:
    """Serve the previous release again: its kept container in seconds, else a redeploy of its digest and
    artifact versions."""
    from workbench.usecases.deploy import rollback as run_rollback

    release = run_rollback(obj.services, app, target, to=to, on_step=_print_step)
    click.echo(
        f"{app} {release.version} is live on {target} again (release {release.id}, rollback of "
        f"{release.bom.get('rollback_of')}, serving after {release.bom.get('serving_after_s', 0):.1f} s)"
    )


@click.command("status")
@click.option("--target", "targets", multiple=True, help="Target (default: every configured one).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: per target and app, version, health, releases.")
@click.option("--logs", "log_lines", type=click.IntRange(0, 1000), default=5, show_default=True, help="Log lines.")
@pass_context
def status(obj: Context, targets: tuple[str, ...], as_json: bool, log_lines: int) -> None:
    """Each app's serving version, health, uptime, recent releases and a log tail, per target."""
    from workbench.present import deploy as render_deploy
    from workbench.usecases.deploy import status as read_status

    found = read_status(obj.services, targets, log_lines=log_lines)
    click.echo(
        json.dumps(render_deploy.status_dicts(found), indent=2)
        if as_json
        else render_deploy.status_text(found, obj.services.clock())
    )
