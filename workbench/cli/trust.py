"""`workbench trust`: let the project's `workbench.toml` route secrets, after showing what it routes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from workbench.cli.context import Context, pass_context


@click.command("trust")
@click.option("--show", is_flag=True, help="Only show the file, its secret-routing keys and whether it is trusted.")
@click.option("--revoke", is_flag=True, help="Forget the decision about this file (its keys are ignored again).")
@click.option("--yes", is_flag=True, help="Trust without asking (needed when stdin is not a terminal).")
@pass_context
def trust(obj: Context, show: bool, revoke: bool, yes: bool) -> None:
    """Trust the project file (./workbench.toml or --config) so its secret-routing keys take effect.

    Trust is recorded with the file's sha256; any change to the file makes it untrusted again.
    """
    from services.errors import UsageError
    from workbench import trust as records

    path, digest, keys = _project(obj)
    store = records.store_beside(_user_file())
    if show:
        _describe(path, digest, keys, records.state_of(path, digest, store))
    elif revoke:
        forgot = records.revoke(path, store)
        click.echo(f"{path}: {'trust revoked' if forgot else 'was not trusted'}")
    else:
        _describe(path, digest, keys, records.state_of(path, digest, store))
        if not yes and not sys.stdin.isatty():
            raise UsageError(f"{path}: not trusted: stdin is not a terminal", hint="pass --yes to trust it")
        if yes or click.confirm(f"Trust {path} with these keys?", default=False):
            records.record(path, digest, store, trusted=True)
            click.echo(f"{path}: trusted (sha256 {digest[:12]})")
        else:
            click.echo(f"{path}: not trusted; its secret-routing keys stay ignored")


def _user_file() -> Path:
    from workbench import locations

    return locations.user_config_file()


def _project(obj: Context) -> tuple[Path, str, dict[str, Any]]:
    """The project file, the sha256 of its contents and its secret-routing keys (dotted key: value)."""
    from services.errors import UsageError
    from workbench.settings import PROJECT_FILE, drop_secret_routing, parse_toml
    from workbench.trust import digest_of

    path = (obj.config_file or PROJECT_FILE).absolute()
    if not path.is_file():
        raise UsageError(f"{path}: no project file here", hint="run in the project's folder or pass --config FILE")
    content = path.read_bytes()
    return path, digest_of(content), drop_secret_routing(parse_toml(path, content))


def _describe(path: Path, digest: str, keys: dict[str, Any], state: str) -> None:
    click.echo(f"project file: {path}")
    click.echo(f"sha256:       {digest}")
    click.echo(f"state:        {state}")
    if not keys:
        click.echo("secret-routing keys: none")
        return
    click.echo("secret-routing keys (ignored unless trusted):")
    for key, value in keys.items():
        secret = "token" in key or key.endswith("connection_string")
        click.echo(f"  {key} = {'(set)' if secret else json.dumps(value, default=str)}")
