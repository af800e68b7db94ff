"""`workbench gpu` (who holds each GPU, who waits) and `workbench server init` (share the GPUs)."""

from __future__ import annotations

from pathlib import Path

import click

from workbench.cli.context import Context, pass_context


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON: devices with their holders, the waiting order.")
@click.pass_context
def gpu(ctx: click.Context, as_json: bool) -> None:
    """Each GPU's memory and utilisation, whose job or chat model holds it (with its ETA), and the
    queue of every user's waiting jobs in the order they will start.

    When several users wait, the next free GPU goes to the user with the least GPU time in the
    machine's fairness window (`server.toml`), then to the oldest job; a job never overtakes the
    one before it.
    """
    if ctx.invoked_subcommand is not None:
        return
    from workbench.present.gpu import view_json, view_text

    obj: Context = ctx.find_object(Context)  # type: ignore[assignment]
    queue = obj.services.gpu_queue()
    view = queue.view()
    click.echo(view_json(view) if as_json else view_text(view))
    if not queue.folder.shared and not as_json:
        from services.gpuqueue.folder import unshared_reason

        click.echo(f"\nnote: {unshared_reason(obj.settings.server.state_dir)}")


@gpu.command("cancel")
@click.argument("entry_id")
@pass_context
def gpu_cancel(obj: Context, entry_id: str) -> None:
    """Stop the queued or running job ENTRY_ID (from `workbench gpu`). Your own jobs only, unless
    you are root or in the machine's admin group; the job saves a checkpoint before it stops."""
    click.echo(obj.services.gpu_queue().cancel(entry_id))


@click.group()
def server() -> None:
    """Set up this machine as the team's shared GPU server."""


@server.command("init")
@click.option("--state-dir", type=click.Path(path_type=Path, file_okay=False), help="Default: server.state_dir.")
@click.option("--group", default="llm-workbench", show_default=True, help="The team's Unix group.")
@click.option("--member", "members", multiple=True, help="Add this user to the group (repeatable).")
@click.option("--admin-group", help="Members of this group may cancel anyone's job.")
@click.option("--fair-window-hours", type=click.FloatRange(min=0, min_open=True), default=24.0, show_default=True)
@pass_context
def server_init(
    obj: Context,
    state_dir: Path | None,
    group: str,
    members: tuple[str, ...],
    admin_group: str | None,
    fair_window_hours: float,
) -> None:
    """Create the shared GPU queue (run as root). Safe to run again: it repairs ownership and modes.

    The folder belongs to root and GROUP, setgid and sticky: members see each other's jobs and
    change only their own. Members must log in again to pick up a new group.
    """
    from services.gpuqueue.folder import init_server

    folder = state_dir or obj.settings.server.state_dir
    for line in init_server(
        folder, group=group, members=list(members), admin_group=admin_group, fair_window_hours=fair_window_hours
    ):
        click.echo(line)
