"""`workbench infra ...` end to end against the fake ARM (credential injected: a static test token)."""

import json
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tests.fakearm import FakeArm, StaticCredential
from tests.integration.conftest import arm_environ
from workbench.cli.main import cli

INFRA = Path(__file__).parents[2] / "infra"


@pytest.fixture
def run(fake_arm: FakeArm, tmp_path: Path, ssh_key: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Invoke the CLI in-process in tmp_path, pointed at the fake ARM, with a static credential."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("services.infra.arm.session.default_credential", StaticCredential)
    environ = arm_environ(fake_arm, tmp_path, ssh_key)

    def invoke(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> Result:
        return CliRunner().invoke(cli, list(args), env={**environ, **(env or {})}, input=stdin)

    return invoke


def user_settings(tmp_path: Path) -> dict[str, object]:
    return tomllib.loads((tmp_path / "config" / "llm-workbench" / "workbench.toml").read_text())


def test_validate_works_offline_without_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(Path(__file__).parents[2])
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("WORKBENCH_AZURE__ARM_ENDPOINT", "https://127.0.0.1:9")
    result = CliRunner().invoke(cli, ["infra", "validate"])
    assert result.exit_code == 0, result.output
    assert "dev: ok" in result.output and "prod: ok" in result.output
    assert "adminSshPublicKey: no value yet" in result.output


def test_validate_fails_on_a_policy_violation(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = run("infra", "validate", "--env", "dev", "--param", "allowedSshSourceCidr=0.0.0.0/0")
    assert result.exit_code == 1
    assert "policy: [nsg-admin-ports]" in result.output and "SSH (port 22) from '0.0.0.0/0'" in result.output


def test_what_if_renders_a_diff(run, fake_arm: FakeArm) -> None:  # type: ignore[no-untyped-def]
    first = run("infra", "what-if", "--env", "dev")
    assert first.exit_code == 0, first.output
    assert "does not exist yet" in first.output and "to create" in first.output
    assert run("infra", "up", "--env", "dev").exit_code == 0
    again = run("infra", "what-if", "--env", "dev", "--param", "deployVmSize=Standard_D4s_v5")
    assert again.exit_code == 0, again.output
    assert "0 to create, 1 to modify, 0 to delete" in again.output
    assert "~ properties.hardwareProfile.vmSize" in again.output
    assert "no change  Microsoft.Storage/storageAccounts" in again.output


def test_up_writes_targets_registry_and_storage_into_user_settings(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings_file = tmp_path / "config" / "llm-workbench" / "workbench.toml"
    settings_file.parent.mkdir(parents=True)
    settings_file.write_text('[hub]\ntimeout = 3.0\n\n[registry]\nlogin_server = "old.example"\n')
    result = run("infra", "up", "--env", "prod")
    assert result.exit_code == 0, result.output
    assert "Succeeded  Microsoft.Compute/virtualMachines vm-llmwb-prod-deploy" in result.output
    assert "==> checking vCPU quota in westeurope" in result.output
    saved = user_settings(tmp_path)
    prod = saved["targets"]["prod"]  # type: ignore[index]
    assert prod == {  # prod's deployment VM has no public IP: its private address; 443 is the TLS default
        "host": "10.20.1.5",
        "user": "azureuser",
        "registry": prod["registry"],  # type: ignore[index]
    }
    assert prod["registry"].startswith("llmwbprod") and prod["registry"].endswith(".azurecr.io")  # type: ignore[index]
    assert saved["hub"] == {"timeout": 3.0}
    assert saved["registry"] == {"login_server": "old.example"}  # prod does not replace the team's registry
    assert run("infra", "up", "--env", "dev").exit_code == 0
    saved = user_settings(tmp_path)
    assert saved["registry"]["login_server"].endswith(".azurecr.io")  # type: ignore[index]
    assert saved["artifacts"]["blob_endpoint"].startswith("https://")  # type: ignore[index]
    assert set(saved["targets"]) == {"dev", "prod"}  # type: ignore[arg-type]
    shown = run("config", "show", "--json")
    assert json.loads(shown.output)["targets.dev"]["value"]["host"].endswith(".cloudapp.azure.com")


def test_outputs_as_json(run) -> None:  # type: ignore[no-untyped-def]
    assert run("infra", "outputs", "--env", "dev").exit_code == 1  # nothing deployed yet
    assert run("infra", "up", "--env", "dev", "--skip-quota-check").exit_code == 0
    result = run("infra", "outputs", "--env", "dev", "--json")
    assert result.exit_code == 0, result.output
    outputs = json.loads(result.output)
    assert outputs["registryLoginServer"].endswith(".azurecr.io") and outputs["appPort"] == 443


def test_up_refuses_on_short_quota_with_exit_1(run, fake_arm: FakeArm) -> None:  # type: ignore[no-untyped-def]
    fake_arm.quota("cores", used=98, limit=100)
    result = run("infra", "up", "--env", "dev")
    assert result.exit_code == 1
    assert "Total Regional vCPUs: needs 8 vCPUs, 2 of 100 free" in result.output
    assert fake_arm.groups == {}


def test_failed_deployment_exits_1_listing_failed_operations(run, fake_arm: FakeArm) -> None:  # type: ignore[no-untyped-def]
    fake_arm.fail("Microsoft.ContainerRegistry/registries", "RegistryNameNotAvailable", "The name is already in use.")
    result = run("infra", "up", "--env", "dev")
    assert result.exit_code == 1
    assert "Failed     Microsoft.ContainerRegistry/registries" in result.output
    assert "error: deployment llm-workbench-dev in rg-llm-workbench-dev failed" in result.output
    assert "failed: Microsoft.ContainerRegistry/registries llmwbdev" in result.output
    assert "RegistryNameNotAvailable: The name is already in use. (target: /subscriptions/" in result.output


def test_down_needs_the_typed_name(run, fake_arm: FakeArm) -> None:  # type: ignore[no-untyped-def]
    assert run("infra", "up", "--env", "dev").exit_code == 0
    refused = run("infra", "down", "--env", "dev")
    assert refused.exit_code == 2 and "--yes-i-typed rg-llm-workbench-dev" in refused.output
    wrong = run("infra", "down", "--env", "dev", "--yes-i-typed", "rg-llm-workbench-prod")
    assert wrong.exit_code == 2 and "nothing was done" in wrong.output
    assert "rg-llm-workbench-dev" in fake_arm.groups
    done = run("infra", "down", "--env", "dev", "--yes-i-typed", "rg-llm-workbench-dev")
    assert done.exit_code == 0, done.output
    assert "deleted resource group rg-llm-workbench-dev" in done.output and fake_arm.groups == {}


@pytest.mark.parametrize("command", ["what-if", "up"])
def test_without_credentials_what_if_and_up_exit_1(  # type: ignore[no-untyped-def]
    run, command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.undo()  # the real DefaultAzureCredential, with nothing to find
    monkeypatch.chdir(tmp_path)
    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "IDENTITY_ENDPOINT", "MSI_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    result = run("infra", command, "--env", "dev")
    assert result.exit_code == 1
    assert "error: no usable Azure credentials found" in result.output
    assert "az login" in result.output and "AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_CLIENT_SECRET" in result.output
