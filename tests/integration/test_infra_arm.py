"""The Azure side of `workbench infra` through the real SDK clients against a local HTTPS fake of ARM."""

import subprocess
import sys
import traceback
from pathlib import Path

import pytest

from services.errors import (
    ArmError,
    CancelledError,
    CredentialsError,
    DeploymentFailedError,
    NextStep,
    NotFoundError,
    QuotaError,
)
from services.infra import arm
from services.infra.arm.deployment import DeployProgress
from services.infra.inputs import InfraInputs, load_inputs
from services.progress import CancelToken
from tests.fakearm import FakeArm, StaticCredential
from tests.integration.conftest import target_for

INFRA = Path(__file__).parents[2] / "infra"
CANARY = "CANARY-client-secret-7d9f2e1a"


def inputs_for(ssh_key: Path, env: str = "dev", **overrides: str) -> InfraInputs:
    return load_inputs(infra_dir=INFRA, env=env, ssh_public_key=ssh_key, overrides=overrides)


def test_requests_go_through_the_sdk_with_the_bearer_token(fake_arm: FakeArm, ssh_key: Path) -> None:
    credential = StaticCredential()
    session = arm.connect(target_for(fake_arm, credential=credential))
    assert arm.group_exists(session) is False
    assert credential.calls >= 1
    assert all(r.authorized for r in fake_arm.requests)


def test_what_if_before_the_group_exists_lists_every_resource_as_create(fake_arm: FakeArm, ssh_key: Path) -> None:
    session = arm.connect(target_for(fake_arm))
    result = arm.what_if(session, inputs_for(ssh_key))
    assert not result.group_exists
    assert {c.change for c in result.changes} == {"create"}
    assert "Microsoft.Compute/virtualMachines" in {c.resource_type for c in result.changes}
    assert fake_arm.requests_to("/whatIf") == []  # ARM cannot preview into a missing group


def test_quota_check_reads_families_and_regional_total(fake_arm: FakeArm, ssh_key: Path) -> None:
    session = arm.connect(target_for(fake_arm))
    report = arm.check_quota(session, inputs_for(ssh_key).vm_sizes())
    assert report.ok
    rows = {row.quota: row.needed for row in report.rows}
    assert rows == {"standardNCSv3Family": 6, "standardDSv5Family": 2, "cores": 8}
    assert len(fake_arm.requests_to("/skus")) == 2  # the SKU list is paged: nextLink followed


def test_short_gpu_quota_stops_up_before_anything_is_created(fake_arm: FakeArm, ssh_key: Path) -> None:
    fake_arm.quota("standardNCSv3Family", used=0, limit=0)
    with pytest.raises(QuotaError, match=r"Standard NCSv3 Family vCPUs: needs 6 vCPUs, 0 of 0 free in westeurope"):
        arm.provision(target_for(fake_arm), inputs_for(ssh_key))
    assert fake_arm.groups == {}


def test_a_size_restricted_for_the_subscription_is_reported(fake_arm: FakeArm, ssh_key: Path) -> None:
    fake_arm.restricted.add("Standard_NC6s_v3")
    session = arm.connect(target_for(fake_arm))
    report = arm.check_quota(session, ["Standard_NC6s_v3", "Standard_X99"])
    assert report.problems == (
        "VM size Standard_X99 is not offered in westeurope",
        "VM size Standard_NC6s_v3 is not available to this subscription in westeurope (restricted)",
    )


def test_up_reports_every_operation_and_returns_outputs(fake_arm: FakeArm, ssh_key: Path) -> None:
    events: list[DeployProgress] = []
    result = arm.provision(target_for(fake_arm), inputs_for(ssh_key), on_progress=events.append)
    phases = [e.phase for e in events]
    assert phases[:4] == ["quota", "resource group", "validate", "deploy"] and phases[-1] == "done"
    states: dict[str, list[str]] = {}
    for event in events:
        for op in event.changed:
            states.setdefault(op.label, []).append(op.state)
    assert len(states) == len(result.operations) >= 15
    assert all(seen in (["Running", "Succeeded"], ["Succeeded"]) for seen in states.values())
    assert any(seen[0] == "Running" for seen in states.values())  # progress arrives while it runs
    assert result.outputs["registryLoginServer"].endswith(".azurecr.io")
    assert result.outputs["storageBlobEndpoint"].startswith("https://") and result.outputs["deployVmFqdn"]
    assert not any("key" in name.lower() for name in result.outputs)
    group = fake_arm.groups["rg-llm-workbench-dev"]
    assert group.tags == {"app": "llm-workbench", "env": "dev"} and group.location == "westeurope"
    assert arm.deployment_outputs(target_for(fake_arm), "dev") == result.outputs


def test_what_if_after_up_shows_no_change_then_a_modify(fake_arm: FakeArm, ssh_key: Path) -> None:
    target = target_for(fake_arm)
    arm.provision(target, inputs_for(ssh_key))
    session = arm.connect(target)
    same = arm.what_if(session, inputs_for(ssh_key))
    assert same.group_exists and {c.change for c in same.changes} == {"no change"}
    bigger = arm.what_if(session, inputs_for(ssh_key, deployVmSize="Standard_D4s_v5"))
    [modified] = [c for c in bigger.changes if c.change == "modify"]
    assert modified.resource_type == "Microsoft.Compute/virtualMachines" and modified.name.endswith("-deploy")
    assert modified.properties == ("~ properties.hardwareProfile.vmSize",)


def test_failed_deployment_lists_failed_operations(fake_arm: FakeArm, ssh_key: Path) -> None:
    fake_arm.fail("Microsoft.Compute/virtualMachines", "SkuNotAvailable", "The requested VM size is not available.")
    with pytest.raises(DeploymentFailedError) as caught:
        arm.provision(target_for(fake_arm), inputs_for(ssh_key))
    error = caught.value
    assert error.code == "DeploymentFailed"
    assert len(error.details) == 2
    assert all("SkuNotAvailable: The requested VM size is not available." in d for d in error.details)
    assert any("target: /subscriptions/" in d and "virtualMachines/vm-llmwb-dev-devbox" in d for d in error.details)
    assert "failed: Microsoft.Compute/virtualMachines vm-llmwb-dev-devbox" in error.message
    assert error.hint and "VM size" in error.hint


def test_arm_validation_errors_show_code_message_and_target(fake_arm: FakeArm, ssh_key: Path) -> None:
    fake_arm.validation_details = [
        {"code": "StorageAccountAlreadyTaken", "message": "The storage account named x is taken.", "target": "x"}
    ]
    with pytest.raises(ArmError) as caught:
        arm.provision(target_for(fake_arm), inputs_for(ssh_key))
    assert caught.value.code == "InvalidTemplateDeployment"
    assert caught.value.details == ("StorageAccountAlreadyTaken: The storage account named x is taken. (target: x)",)
    assert fake_arm.requests_to("/deployments/llm-workbench-dev", "PUT") == []


def test_missing_parameter_is_refused_by_arm(fake_arm: FakeArm, ssh_key: Path) -> None:
    inputs = inputs_for(ssh_key)
    del inputs.values["allowedSshSourceCidr"]
    session = arm.connect(target_for(fake_arm))
    arm.ensure_group(session, "dev")
    with pytest.raises(ArmError, match=r"InvalidTemplate: .*'allowedSshSourceCidr' .* is not provided"):
        arm.validate_remote(session, inputs)


def test_throttled_request_is_retried_after_retry_after(fake_arm: FakeArm, ssh_key: Path) -> None:
    session = arm.connect(target_for(fake_arm))
    arm.ensure_group(session, "dev")
    fake_arm.throttle("/whatIf", times=1, retry_after=1)
    result = arm.what_if(session, inputs_for(ssh_key))
    assert result.group_exists and result.count("create") >= 15
    assert len(fake_arm.requests_to("/whatIf", "POST")) == 2


def test_deployment_polled_through_location(tmp_path: Path, ssh_key: Path) -> None:
    with FakeArm(tmp_path / "location", location_polling=True) as fake:
        result = arm.provision(target_for(fake), inputs_for(ssh_key))
        assert result.outputs["registryLoginServer"].endswith(".azurecr.io")
        assert fake.requests_to("/operationresults/")


def test_cancel_asks_arm_to_cancel(fake_arm: FakeArm, ssh_key: Path) -> None:
    token = CancelToken()
    token.cancel()
    with pytest.raises(CancelledError, match="cancelled"):
        arm.provision(target_for(fake_arm), inputs_for(ssh_key), cancel=token)
    assert fake_arm.requests_to("/cancel", "POST")
    assert fake_arm.deployments[("rg-llm-workbench-dev", "llm-workbench-dev")].state == "Canceled"


def test_outputs_without_a_deployment_say_what_to_run(fake_arm: FakeArm) -> None:
    session = arm.connect(target_for(fake_arm))
    arm.ensure_group(session, "dev")
    with pytest.raises(NotFoundError, match="DeploymentNotFound") as caught:
        arm.deployment_outputs(target_for(fake_arm), "dev")
    assert caught.value.step == NextStep("infra.up")


def test_delete_group_waits_for_the_long_running_delete(fake_arm: FakeArm, ssh_key: Path) -> None:
    target = target_for(fake_arm)
    arm.provision(target, inputs_for(ssh_key))
    session = arm.connect(target)
    lines: list[str] = []
    arm.delete_group(session, on_progress=lines.append)
    assert fake_arm.groups == {} and lines
    assert len(fake_arm.requests_to("/operationresults/", "GET")) == fake_arm.lro_polls + 1
    with pytest.raises(NotFoundError, match="does not exist"):
        arm.delete_group(session)


def test_a_refused_token_is_a_credentials_error(fake_arm: FakeArm) -> None:
    session = arm.connect(target_for(fake_arm, credential=StaticCredential("wrong-token")))
    with pytest.raises(CredentialsError, match="InvalidAuthenticationToken") as caught:
        arm.ensure_group(session, "dev")
    assert "az login" in (caught.value.hint or "")
    assert "wrong-token" not in str(caught.value)


# ---------------------------------------------------------------- real DefaultAzureCredential, no credentials


def clear_azure_env(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH",
                 "AZURE_USERNAME", "AZURE_FEDERATED_TOKEN_FILE", "IDENTITY_ENDPOINT", "MSI_ENDPOINT",
                 "AZURE_SUBSCRIPTION_ID"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no `az` on the path


def test_no_credentials_says_how_to_log_in(fake_arm: FakeArm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clear_azure_env(monkeypatch, tmp_path)
    with pytest.raises(CredentialsError) as caught:
        arm.connect(target_for(fake_arm, credential=None))
    hint = caught.value.hint or ""
    assert "az login" in hint and "managed identity" in hint and "AZURE_CLIENT_SECRET" in hint
    assert fake_arm.requests == []


def test_client_secret_never_reaches_the_error(
    fake_arm: FakeArm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clear_azure_env(monkeypatch, tmp_path)
    monkeypatch.setenv("AZURE_CLIENT_ID", "11111111-2222-3333-4444-555555555555")
    monkeypatch.setenv("AZURE_TENANT_ID", "66666666-7777-8888-9999-000000000000")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", CANARY)
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", "https://127.0.0.1:9")  # nothing listens: authentication fails
    with pytest.raises(CredentialsError) as caught:
        arm.connect(target_for(fake_arm, credential=None))
    shown = "".join(traceback.format_exception(caught.value)) + str(caught.value.hint)
    assert CANARY not in shown and "no usable Azure credentials" in shown


def test_cli_with_debug_never_prints_the_client_secret(tmp_path: Path, ssh_key: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "AZURE_CLIENT_ID": "11111111-2222-3333-4444-555555555555",
        "AZURE_TENANT_ID": "66666666-7777-8888-9999-000000000000",
        "AZURE_CLIENT_SECRET": CANARY,
        "AZURE_AUTHORITY_HOST": "https://127.0.0.1:9",
        "AZURE_SUBSCRIPTION_ID": "00000000-0000-4000-8000-000000000001",
        "WORKBENCH_AZURE__INFRA_DIR": str(INFRA),
        "WORKBENCH_AZURE__SSH_PUBLIC_KEY": str(ssh_key),
    }
    for args in (["infra", "up", "--env", "dev"], ["--debug", "infra", "what-if", "--env", "dev"]):
        result = subprocess.run(
            [sys.executable, "-m", "workbench", *args],
            cwd=Path(__file__).parents[2],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 1, result.stderr
        assert "no usable Azure credentials" in result.stderr
        assert CANARY not in result.stdout + result.stderr
    written = [p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file()]
    assert not any(CANARY in text for text in written)
