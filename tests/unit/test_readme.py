"""The README documents every CLI command and every setting."""

from pathlib import Path

import click

from workbench.cli.main import cli
from workbench.settings import Settings

README = (Path(__file__).parents[2] / "README.md").read_text()


def commands(group: click.Group, prefix: str = "workbench") -> list[str]:
    found = []
    for name, command in group.commands.items():
        if command.hidden:  # `deploy run` is what `workbench deploy APP` calls
            continue
        path = f"{prefix} {name}"
        found += commands(command, path) if isinstance(command, click.Group) else [path]
    return found


def test_every_command_is_documented() -> None:
    missing = [c for c in commands(cli) if f"`{c}" not in README]
    assert missing == []


def test_every_setting_is_documented() -> None:
    keys = [
        f"{section}.{key}" for section, field in Settings.model_fields.items() for key in field.annotation.model_fields
    ]  # type: ignore[union-attr]
    assert [k for k in keys if f"`{k}`" not in README] == []
