"""`workbench infra ...`: the team's Azure environment from the ARM templates in `infra/`.

`validate` works offline without credentials; every other command needs Azure credentials
(Azure CLI login, managed identity, or a service principal in the environment) and refuses with
exit code 1 and a how-to-log-in message without them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from services.infra.inputs import ENVIRONMENTS
from workbench.cli.context import Context, pass_context
from workbench.cli.output import confirm_typed

if TYPE_CHECKING:
    from services.infra.arm.deployment import DeployProgress
    from services.infra.arm.session import AzureTarget
    from services.infra.findings import ValidationReport
    from services.infra.inputs import InfraInputs

ENV = click.Choice(ENVIRONMENTS)
PARAM_HELP = (
    "Override a template parameter: NAME=VALUE, or NAME=@FILE to read the value from a file (repeatable). "
    "Give secure parameters as NAME=@FILE only: argv shows in process lists and shell history."
)
PARAM_METAVAR = "NAME=VALUE|NAME=@FILE"


@click.group()
def infra() -> None:
    """Azure environment from infra/: validate, preview (what-if), deploy, outputs, tear down."""


def _target(obj: Context, env: str) -> AzureTarget:
    return obj.services.azure_target(env)


def _inputs(obj: Context, env: str, params: tuple[str, ...]) -> InfraInputs:
    """Load and validate one environment offline; print its findings; refuse on errors or policy violations."""
    from services.infra.inputs import parse_overrides
    from workbench.present import infra as render_infra
    from workbench.usecases.infra import checked_inputs

    def show(report: ValidationReport) -> None:
        if report.findings or report.violations:
            click.echo(render_infra.report_text(report), err=True)

    return checked_inputs(obj.services, env, overrides=parse_overrides(params), on_report=show)


@infra.command("validate")
@click.option("--env", type=ENV, help="Only this environment (default: every one).")
@click.option("--param", "params", multiple=True, metavar=PARAM_METAVAR, help=PARAM_HELP)
@pass_context
def infra_validate(obj: Context, env: str | None, params: tuple[str, ...]) -> None:
    """Check templates, parameter files, cloud-init and our policies offline (no credentials needed)."""
    from services.infra.inputs import parse_overrides
    from workbench.present import infra as render_infra
    from workbench.usecases.infra import validate

    failed = []
    for name in [env] if env else list(ENVIRONMENTS):
        _inputs, report = validate(obj.services, name, overrides=parse_overrides(params))
        click.echo(render_infra.report_text(report))
        if not report.ok:
            failed.append(name)
    if failed:
        sys.exit(1)


@infra.command("what-if")
@click.option("--env", type=ENV, required=True, help="Environment to preview.")
@click.option("--param", "params", multiple=True, metavar=PARAM_METAVAR, help=PARAM_HELP)
@pass_context
def infra_what_if(obj: Context, env: str, params: tuple[str, ...]) -> None:
    """Preview what `up` would create, modify or delete (ARM what-if; changes nothing)."""
    from services.infra import arm
    from workbench.present import infra as render_infra

    inputs = _inputs(obj, env, params)
    session = arm.connect(_target(obj, env))
    click.echo(render_infra.what_if_text(arm.what_if(session, inputs)))


@infra.command("up")
@click.option("--env", type=ENV, required=True, help="Environment to deploy.")
@click.option("--param", "params", multiple=True, metavar=PARAM_METAVAR, help=PARAM_HELP)
@click.option("--skip-quota-check", is_flag=True, help="Deploy without checking the vCPU quota first.")
@pass_context
def infra_up(obj: Context, env: str, params: tuple[str, ...], skip_quota_check: bool) -> None:
    """Deploy an environment: quota check, resource group, validation, deployment with progress;
    then write its targets, registry and storage into the user settings."""
    from workbench.present import infra as render_infra
    from workbench.usecases.infra import provision

    inputs = _inputs(obj, env, params)
    done = provision(obj.services, env, inputs, on_progress=_progress_printer(), check_gpu_quota=not skip_quota_check)
    result = done.result
    click.echo(f"deployed {result.deployment} to {result.resource_group} in {result.seconds:.0f} s")
    click.echo(render_infra.outputs_text(result.outputs))
    click.echo(f"settings: wrote {', '.join(done.written) or 'nothing'} to {done.settings_file}")


def _progress_printer() -> Callable[[DeployProgress], None]:
    from workbench.present import infra as render_infra

    def show(progress: DeployProgress) -> None:
        if progress.phase != "deploy" or not progress.changed:
            click.echo(f"==> {progress.message}", err=True)
        for op in progress.changed:
            click.echo(render_infra.operation_line(op), err=True)

    return show


@infra.command("outputs")
@click.option("--env", type=ENV, required=True, help="Environment to read.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object of output name to value.")
@pass_context
def infra_outputs(obj: Context, env: str, as_json: bool) -> None:
    """Show the outputs of an environment's last deployment (addresses, registry, blob endpoint; never keys)."""
    from services.infra import arm
    from workbench.present import infra as render_infra

    outputs = arm.deployment_outputs(_target(obj, env), env)
    click.echo(render_infra.outputs_json(outputs) if as_json else render_infra.outputs_text(outputs))


@infra.command("down")
@click.option("--env", type=ENV, required=True, help="Environment to delete.")
@click.option("--yes-i-typed", "typed", metavar="NAME", help="The resource group's name, for scripts (must match).")
@pass_context
def infra_down(obj: Context, env: str, typed: str | None) -> None:
    """Delete an environment's resource group and everything in it, after its name is typed."""
    from services.infra import arm

    target = _target(obj, env)
    group = target.resource_group
    question = f"This deletes resource group {group} and everything in it. Type its name to confirm"
    confirm_typed(question, group, typed=typed, refusal=f"refusing to delete resource group {group} without its name")
    session = arm.connect(target)
    arm.delete_group(session, on_progress=lambda line: click.echo(line, err=True))
    click.echo(f"deleted resource group {group}")
