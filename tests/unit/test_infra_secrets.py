"""Secure template parameters never show in `workbench infra` output, and hints steer them off argv."""

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from services.errors import UsageError
from services.infra.inputs import parse_overrides
from workbench.cli.main import cli

INFRA = Path(__file__).parents[2] / "infra"
CANARY = "canary-Secure-Param-31d9"


@pytest.fixture
def infra(tmp_path: Path) -> Path:
    """A copy of infra/ whose template has a secure parameter with allowed values."""
    folder = Path(shutil.copytree(INFRA, tmp_path / "infra"))
    template = json.loads((folder / "main.json").read_text())
    template["parameters"]["deployToken"] = {"type": "securestring", "allowedValues": ["token-a", "token-b"]}
    (folder / "main.json").write_text(json.dumps(template))
    return folder


def validate(infra: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *params: str) -> Result:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    env = {"WORKBENCH_AZURE__INFRA_DIR": str(infra)}
    args = ["infra", "validate", "--env", "dev", *(arg for p in params for arg in ("--param", p))]
    return CliRunner().invoke(cli, args, env=env)


def test_a_secure_value_outside_the_allowed_values_is_never_printed(
    infra: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "token.txt"
    secret.write_text(CANARY + "\n")

    result = validate(infra, tmp_path, monkeypatch, f"deployToken=@{secret}")

    assert result.exit_code == 1
    assert "deployToken" in result.output and "not one of the allowed values" in result.output
    assert CANARY not in result.output


def test_a_secure_value_in_the_parameter_file_is_hidden_and_the_hint_says_at_file(
    infra: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = infra / "params" / "dev.json"
    data = json.loads(params.read_text())
    data["parameters"]["deployToken"] = {"value": CANARY}
    params.write_text(json.dumps(data))

    result = validate(infra, tmp_path, monkeypatch)

    assert result.exit_code == 1
    assert CANARY not in result.output
    assert "--param deployToken=@FILE" in result.output and "NAME=VALUE" not in result.output


def test_a_param_without_equals_is_not_echoed() -> None:
    with pytest.raises(UsageError) as err:
        parse_overrides([CANARY])
    assert CANARY not in str(err.value) and "NAME=@FILE" in (err.value.hint or "")


def test_at_file_keeps_the_value_but_drops_the_trailing_newline(tmp_path: Path) -> None:
    secret = tmp_path / "token.txt"
    secret.write_text(f"  {CANARY} \n")
    assert parse_overrides([f"deployToken=@{secret}"]) == {"deployToken": f"  {CANARY} "}


def test_the_help_offers_at_file_for_secure_values() -> None:
    result = CliRunner().invoke(cli, ["infra", "validate", "--help"])
    assert "NAME=@FILE" in result.output and "secure" in result.output
