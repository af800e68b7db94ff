"""The CLI's phrasing of a service error's next step (`services.errors.NextStep`): the command to run.

Services say which verb helps and with what arguments; this table says it as a `workbench …` command.
An argument the step does not carry shows as its placeholder in capitals (`{target}` → `TARGET`).
"""

from __future__ import annotations

import string
from collections.abc import Mapping

from services.errors import NextStep

COMMANDS: Mapping[str, str] = {
    "models.download": "download it first: `workbench models download {repo}`",
    "models.ls": "see `workbench models ls`",
    "models.search": "check the id with `workbench models search`",
    "finetune.ls": "see `workbench finetune ls`",
    "rag.ls": "see `workbench rag ls`",
    "rag.rm": "remove it with `workbench rag rm {name}`",
    "rag.query_model": "name the model that made it: `workbench rag query {name} TEXT --model MODEL_ID`",
    "eval.show": "see run {run_id} in `workbench eval ls`",
    "eval.ls": "list them with `workbench eval ls`",
    "artifacts.show": "see `workbench artifacts show {name}`",
    "artifacts.ls": "list them with `workbench artifacts ls` (add --remote for remote storage)",
    "artifacts.label": "move it with `workbench artifacts label {name}@VERSION {label}`",
    "artifacts.rm_remote": "`workbench artifacts rm {ref} --remote` deletes the remote version",
    "image.build": "build it first: `workbench image build {app}`",
    "infra.up": "run `workbench infra up --env {env}`",
    "infra.validate": "`workbench infra validate --env {env}` lists every problem",
    "deploy.status": "see `workbench status`",
    "deploy.lock_status": "see who holds it with `workbench deploy lock status --target {target} {app}`",
    "deploy.lock_release": "to clear it, name its holder: "
    "`workbench deploy lock release {app} --target {target} --force {owner}`",
}
"""Verb → what to run, with `{argument}` fields from the step."""


class _Placeholders(dict[str, str]):
    """The step's arguments; a missing one reads as its name in capitals, the CLI's placeholder."""

    def __missing__(self, key: str) -> str:
        return key.upper()


def phrase(step: NextStep) -> str:
    """The step as the command a CLI user runs; an unknown verb is named as it is."""
    template = COMMANDS.get(step.verb)
    if template is None:
        return f"next: {step.verb}" + "".join(f" {name}={value}" for name, value in step.args)
    return string.Formatter().vformat(template, (), _Placeholders(step.args))


def hint_lines(hint: str | None, step: NextStep | None) -> list[str]:
    """The `hint:` lines for an error: its surface-neutral hint, then its step as a command."""
    return [f"hint: {text}" for text in (hint, phrase(step) if step else None) if text]
