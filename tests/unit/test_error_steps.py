"""Service errors carry their next step as a fact; the CLI and the TUI each phrase it for their surface.

Every verb a service names has a CLI command and an in-app place, and the place names keys of the
action registry (after the user's `[ui] keys`); the CLI prints the command under `hint:`.
"""

from __future__ import annotations

import ast
import re
import string
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from services.errors import NextStep, NotFoundError, WorkbenchError
from workbench.actions import ACTION_BY_ID
from workbench.cli import steps as cli_steps
from workbench.cli.main import cli
from workbench.modes import MODES
from workbench.settings import load_settings
from workbench.tui import steps as tui_steps
from workbench.wiring import Services

SERVICES = Path(__file__).resolve().parents[2] / "services"
COMMANDS = "models|demo|finetune|infra|eval|chat|rag|image|artifacts|deploy|rollback|status|trust|config"
CLI_COMMAND = re.compile(rf"workbench ({COMMANDS})\b")


@dataclass(frozen=True)
class Site:
    """One `NextStep(...)` or `NextStep.of(...)` in the services' source."""

    where: str
    verb: str
    args: frozenset[str]


def _is_next_step(func: ast.expr) -> bool:
    if isinstance(func, ast.Name):
        return func.id == "NextStep"
    return isinstance(func, ast.Attribute) and func.attr == "of" and _is_next_step(func.value)


def _sites() -> Iterator[Site]:
    for path in sorted(SERVICES.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and _is_next_step(node.func):
                where = f"{path.relative_to(SERVICES.parent)}:{node.lineno}"
                verb = node.args[0] if node.args else None
                assert isinstance(verb, ast.Constant) and isinstance(verb.value, str), f"{where}: verb is not literal"
                yield Site(where, verb.value, frozenset(k.arg for k in node.keywords if k.arg))


def _hint_texts() -> Iterator[tuple[str, str]]:
    """The literal text of every `hint=` in the services (f-string parts included)."""
    for path in sorted(SERVICES.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.keyword) and node.arg == "hint":
                for part in ast.walk(node.value):
                    if isinstance(part, ast.Constant) and isinstance(part.value, str):
                        yield f"{path.relative_to(SERVICES.parent)}:{part.lineno}", part.value


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


SITES = list(_sites())


def test_the_services_name_next_steps() -> None:
    assert len(SITES) >= 30
    assert {"models.download", "finetune.ls", "models.ls", "infra.up"} <= {site.verb for site in SITES}


@pytest.mark.parametrize("site", SITES, ids=lambda site: f"{site.where}:{site.verb}")
def test_every_verb_has_a_cli_and_a_tui_phrasing(site: Site) -> None:
    assert site.verb in cli_steps.COMMANDS, f"{site.where}: no CLI phrasing for {site.verb}"
    assert site.verb in tui_steps.PLACES, f"{site.where}: no TUI phrasing for {site.verb}"
    missing = _fields(tui_steps.PLACES[site.verb].text) - site.args
    assert not missing, f"{site.where}: the app's phrasing of {site.verb} needs {missing}"


def test_no_service_hint_names_a_cli_command() -> None:
    named = [(where, text) for where, text in _hint_texts() if CLI_COMMAND.search(text)]
    assert named == []


@pytest.mark.parametrize("verb", sorted(tui_steps.PLACES))
def test_every_place_names_registry_keys_in_its_mode(verb: str) -> None:
    place = tui_steps.PLACES[verb]
    assert place.at, verb
    ids = place.binding_ids()
    assert all(i in ACTION_BY_ID for i in ids), f"{verb}: unknown binding ids {set(ids) - set(ACTION_BY_ID)}"
    mode = ACTION_BY_ID[place.at[0]]
    assert place.at[0] in {m.binding_id for m in MODES}, f"{verb}: {place.at[0]} does not switch to a mode"
    area = place.at[0].removeprefix("mode.")
    assert all(ACTION_BY_ID[i].area == area for i in ids[1:]), f"{verb}: an action outside {mode.title}"
    text = tui_steps.phrase(NextStep(verb))
    named = [f"{ACTION_BY_ID[i].title} ({tui_steps.key_of(i)})" for i in place.at]
    named += [f"{tui_steps.key_of(i)} ({ACTION_BY_ID[i].title})" for i in place.press]
    assert all(part in text for part in named), f"{verb}: {text!r} does not name the keys {named}"
    assert "workbench " not in text


def test_the_phrasings_name_the_command_and_the_keys() -> None:
    step = NextStep.of("models.download", repo="acme/tiny")
    assert cli_steps.phrase(step) == "download it first: `workbench models download acme/tiny`"
    assert tui_steps.phrase(step) == (
        "download acme/tiny: in Models (1) › Hub (h), press / (Search), then d (Download)"
    )
    remapped = {"mode.models": "f1,1", "models.download": "ctrl+d", "models.search": "s"}
    assert tui_steps.phrase(step, remapped) == (
        "download acme/tiny: in Models (f1) › Hub (h), press s (Search), then ctrl+d (Download)"
    )
    assert tui_steps.phrase(NextStep("finetune.ls")) == "see the jobs in Fine-tune (2)"


def test_a_missing_argument_reads_as_the_cli_placeholder() -> None:
    step = NextStep.of("deploy.lock_release", app="chatbot", owner="bob@host")
    assert "`workbench deploy lock release chatbot --target TARGET --force bob@host`" in cli_steps.phrase(step)


def test_the_step_is_a_fact_not_part_of_the_message() -> None:
    error = NotFoundError("gone", hint="set HF_TOKEN if it is private", step=NextStep("models.search"))
    assert str(error) == "gone (set HF_TOKEN if it is private)" and error.step == NextStep("models.search")
    assert cli_steps.hint_lines(error.hint, error.step) == [
        "hint: set HF_TOKEN if it is private",
        "hint: check the id with `workbench models search`",
    ]
    text = tui_steps.error_text(error)
    assert text.splitlines()[:2] == ["gone", "set HF_TOKEN if it is private"]
    assert "press / (Search)" in text and "workbench" not in text
    assert tui_steps.error_text(WorkbenchError("plain")) == "plain"
    assert NextStep.of("x.y", a=1, b=None) == NextStep("x.y", (("a", "1"),))


@pytest.fixture
def services(tmp_path: Path) -> Services:
    environ = {
        "WORKBENCH_HUB__ENDPOINT": "http://127.0.0.1:9",
        "WORKBENCH_HUB__CACHE_DIR": str(tmp_path / "hub"),
        "WORKBENCH_WORKSPACE__DATA_DIR": str(tmp_path / "workspace"),
    }
    return Services(load_settings(project_file=None, user_file=tmp_path / "none.toml", environ=environ))


def test_cli_names_the_command_for_a_job_that_does_not_exist(services: Services) -> None:
    result = CliRunner().invoke(cli, ["finetune", "show", "nosuchjob"], obj=services)
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error: no job matching 'nosuchjob'")
    assert lines[1:] == ["hint: see `workbench finetune ls`"]


def test_cli_names_the_command_for_a_model_not_in_the_cache(services: Services) -> None:
    result = CliRunner().invoke(cli, ["models", "rm", "acme/none", "--yes"], obj=services)
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines()[-1] == "hint: see `workbench models ls`"
