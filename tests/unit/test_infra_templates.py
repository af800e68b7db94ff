"""infra/: the shipped templates, offline validation of templates and parameter files, cloud-init embedding."""

import json
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from services.errors import ConfigError, InfraInvalidError, UsageError
from services.infra.cloud_init import cloud_init_drift, cloud_init_variable, sync_cloud_init
from services.infra.inputs import load_inputs, parse_overrides, read_public_key
from services.infra.policy import flatten
from services.infra.templates import require_valid, validate_environment

ROOT = Path(__file__).parents[2]
INFRA = ROOT / "infra"
TEMPLATE = json.loads((INFRA / "main.json").read_text())
ROLE_IDS = {
    "storageBlobDataContributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "storageBlobDataReader": "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    "acrPush": "8311e382-0749-4cb8-b61a-304f252e45ec",
    "acrPull": "7f951dda-4ed3-4680-a7ca-43fe172d538d",
}
PUBLIC_KEY = "ssh-ed25519 " + "A" * 68 + " dev@workbench"


def resources(kind: str) -> list[dict[str, Any]]:
    return [dict(r.body) for r in flatten(TEMPLATE["resources"]) if r.type == kind]


@pytest.fixture
def infra_copy(tmp_path: Path) -> Path:
    """A copy of infra/ to break."""
    return Path(shutil.copytree(INFRA, tmp_path / "infra"))


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "id_ed25519.pub"
    path.write_text(PUBLIC_KEY + "\n")
    return path


# ---------------------------------------------------------------- the shipped templates


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_shipped_environments_validate(env: str, key_file: Path) -> None:
    inputs, report = validate_environment(infra_dir=INFRA, env=env, ssh_public_key=key_file, deploy=True)
    assert report.errors == [] and report.violations == ()
    assert inputs.values["adminSshPublicKey"] == PUBLIC_KEY
    assert inputs.values["environmentName"] == env


def test_without_a_key_validate_warns_and_deploy_refuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    _inputs, report = validate_environment(infra_dir=INFRA, env="dev")
    assert report.ok and any("adminSshPublicKey" in f.where for f in report.warnings)
    _inputs, report = validate_environment(infra_dir=INFRA, env="dev", deploy=True)
    assert not report.ok
    with pytest.raises(InfraInvalidError, match="adminSshPublicKey"):
        require_valid(report)


def test_storage_is_locked_down() -> None:
    [account] = resources("Microsoft.Storage/storageAccounts")
    props = account["properties"]
    assert props["supportsHttpsTrafficOnly"] is True and props["minimumTlsVersion"] == "TLS1_2"
    assert props["allowBlobPublicAccess"] is False and props["allowSharedKeyAccess"] is False
    assert props["networkAcls"]["defaultAction"] == "Deny"
    assert props["networkAcls"]["virtualNetworkRules"] == [{"id": "[variables('subnetId')]", "action": "Allow"}]
    [vnet] = resources("Microsoft.Network/virtualNetworks")
    assert vnet["properties"]["subnets"][0]["properties"]["serviceEndpoints"] == [{"service": "Microsoft.Storage"}]
    containers = resources("Microsoft.Storage/storageAccounts/blobServices/containers")
    assert sorted(re.search(r"/default/(\w+)'", c["name"]).group(1) for c in containers) == ["datasets", "models"]  # type: ignore[union-attr]
    assert all(c["properties"]["publicAccess"] == "None" for c in containers)


def test_registry_allows_identities_only() -> None:
    [registry] = resources("Microsoft.ContainerRegistry/registries")
    assert registry["properties"]["adminUserEnabled"] is False
    assert registry["properties"]["anonymousPullEnabled"] is False


def test_ssh_and_app_sources_are_required_parameters() -> None:
    params = TEMPLATE["parameters"]
    assert "defaultValue" not in params["allowedSshSourceCidr"]
    assert "defaultValue" not in params["allowedAppSourceCidr"]
    [group] = resources("Microsoft.Network/networkSecurityGroups")
    rules = {r["name"]: r["properties"] for r in group["properties"]["securityRules"]}
    assert rules["AllowSshFromAdmins"]["sourceAddressPrefix"] == "[parameters('allowedSshSourceCidr')]"
    assert rules["AllowSshFromAdmins"]["destinationPortRange"] == "22"
    assert rules["AllowAppFromClients"]["sourceAddressPrefix"] == "[parameters('allowedAppSourceCidr')]"


def test_vms_use_keys_identities_and_optional_public_ips() -> None:
    params = TEMPLATE["parameters"]
    assert params["devVmSize"]["defaultValue"] == "Standard_NC6s_v3" and "deployVmSize" in params
    for vm in resources("Microsoft.Compute/virtualMachines"):
        assert vm["identity"] == {"type": "SystemAssigned"}
        os_profile = vm["properties"]["osProfile"]
        assert os_profile["linuxConfiguration"]["disablePasswordAuthentication"] is True
        assert "adminPassword" not in os_profile
        assert os_profile["customData"].startswith("[base64(variables(")
    ips = resources("Microsoft.Network/publicIPAddresses")
    assert sorted(ip["condition"] for ip in ips) == [
        "[parameters('deployVmPublicIp')]",
        "[parameters('devVmPublicIp')]",
    ]
    assert params["devVmPublicIp"]["type"] == params["deployVmPublicIp"]["type"] == "bool"


def test_role_assignments_give_each_vm_only_what_it_needs() -> None:
    granted = set()
    for assignment in resources("Microsoft.Authorization/roleAssignments"):
        role = assignment["properties"]["roleDefinitionId"].split("variables('roles').")[1].rstrip(")]")
        vm = "dev" if "variables('devVmName')" in assignment["properties"]["principalId"] else "deploy"
        scope = "storage" if "storageAccounts" in assignment["scope"] else "registry"
        granted.add((vm, scope, role))
    assert granted == {
        ("dev", "storage", "storageBlobDataContributor"),
        ("dev", "registry", "acrPush"),
        ("deploy", "storage", "storageBlobDataReader"),
        ("deploy", "registry", "acrPull"),
    }
    assert TEMPLATE["variables"]["roles"] == ROLE_IDS


def test_outputs_name_addresses_and_endpoints() -> None:
    outputs = TEMPLATE["outputs"]
    assert {"registryLoginServer", "storageBlobEndpoint", "devVmFqdn", "deployVmFqdn", "deployVmPublicIp"} <= set(
        outputs
    )


def test_gpu_sizes_get_the_nvidia_cloud_init() -> None:
    variables = TEMPLATE["variables"]
    assert "startsWith(parameters('devVmSize'), 'Standard_N')" in variables["devCloudInit"]
    assert "nvidia-container-toolkit" in variables["cloudInitDockerNvidia"]
    assert "ubuntu-drivers install" in variables["cloudInitDockerNvidia"]
    assert "docker.io" in variables["cloudInitDocker"] and "nvidia" not in variables["cloudInitDocker"]


# ---------------------------------------------------------------- cloud-init embedding


def test_cloud_init_files_match_the_template() -> None:
    assert cloud_init_drift(TEMPLATE, INFRA / "cloud-init") == []
    for path in (INFRA / "cloud-init").glob("*.yaml"):
        assert TEMPLATE["variables"][cloud_init_variable(path)] == path.read_text()


def test_drift_is_found_and_synced(infra_copy: Path) -> None:
    source = infra_copy / "cloud-init" / "docker.yaml"
    source.write_text(source.read_text() + "  - echo changed\n")
    template = json.loads((infra_copy / "main.json").read_text())
    [finding] = cloud_init_drift(template, infra_copy / "cloud-init")
    assert "cloudInitDocker" in finding.where and "differs" in finding.message
    assert sync_cloud_init(infra_copy / "main.json", infra_copy / "cloud-init") == ["cloudInitDocker"]
    synced = json.loads((infra_copy / "main.json").read_text())
    assert cloud_init_drift(synced, infra_copy / "cloud-init") == []


def test_sync_killed_mid_write_leaves_the_template_whole(infra_copy: Path) -> None:
    source = infra_copy / "cloud-init" / "docker.yaml"
    source.write_text(source.read_text() + "  - echo changed\n")
    before = (infra_copy / "main.json").read_bytes()
    script = (
        "import resource, signal, sys\n"
        "from pathlib import Path\n"
        "from services.infra.cloud_init import sync_cloud_init\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # killed by the kernel at the limit, mid-write\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        "sync_cloud_init(Path(sys.argv[1]) / 'main.json', Path(sys.argv[1]) / 'cloud-init')\n"
    )
    run = subprocess.run([sys.executable, "-c", script, str(infra_copy)], check=False, capture_output=True, timeout=60)
    assert run.returncode == -signal.SIGXFSZ
    assert (infra_copy / "main.json").read_bytes() == before


def test_sync_leaves_the_shipped_template_byte_identical(infra_copy: Path) -> None:
    assert sync_cloud_init(infra_copy / "main.json", infra_copy / "cloud-init") == []
    (infra_copy / "cloud-init" / "docker.yaml").write_text((INFRA / "cloud-init" / "docker.yaml").read_text())
    sync_cloud_init(infra_copy / "main.json", infra_copy / "cloud-init")
    assert (infra_copy / "main.json").read_bytes() == (INFRA / "main.json").read_bytes()


# ---------------------------------------------------------------- parameter files


def write_params(infra: Path, env: str, **changes: Any) -> None:
    path = infra / "params" / f"{env}.json"
    data = json.loads(path.read_text())
    for name, value in changes.items():
        if value is None:
            data["parameters"].pop(name, None)
        else:
            data["parameters"][name] = {"value": value}
    path.write_text(json.dumps(data))


def problems(infra: Path, key_file: Path, env: str = "dev") -> list[str]:
    _inputs, report = validate_environment(infra_dir=infra, env=env, ssh_public_key=key_file)
    return [f"{f.where}: {f.message}" for f in report.errors]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"allowedSshSourceCidr": None}, "allowedSshSourceCidr: required"),
        ({"devVmPublicIp": "yes"}, "devVmPublicIp: expected bool, got str"),
        ({"appPort": 70000}, "appPort: above maxValue 65535"),
        ({"registrySku": "Huge"}, "registrySku: 'Huge' is not one of"),
        ({"namePrefix": "ab"}, "namePrefix: shorter than minLength 3"),
        ({"vmCount": 2}, "vmCount: not a parameter of the template"),
    ],
)
def test_parameter_file_errors_name_file_and_key(
    infra_copy: Path, key_file: Path, change: dict[str, Any], expected: str
) -> None:
    write_params(infra_copy, "dev", **change)
    found = problems(infra_copy, key_file)
    assert any(expected in p and "params/dev.json" in p for p in found), found


def test_a_secure_value_in_a_parameter_file_is_an_error(infra_copy: Path, key_file: Path) -> None:
    template = json.loads((infra_copy / "main.json").read_text())
    template["parameters"]["registryPassword"] = {"type": "securestring", "defaultValue": ""}
    (infra_copy / "main.json").write_text(json.dumps(template))
    write_params(infra_copy, "dev", registryPassword="hunter2")
    assert any("secure parameter's value is in a file" in p for p in problems(infra_copy, key_file))


def test_template_structure_errors(infra_copy: Path, key_file: Path) -> None:
    template = json.loads((infra_copy / "main.json").read_text())
    template["$schema"] = "https://schema.management.azure.com/schemas/2018-05-01/subscriptionDeploymentTemplate.json#"
    template["resources"][0]["apiVersion"] = "latest"
    template["outputs"]["broken"] = {"value": "[variables('nope')]"}
    (infra_copy / "main.json").write_text(json.dumps(template))
    found = " | ".join(problems(infra_copy, key_file))
    assert "resource-group deploymentTemplate.json schema" in found
    assert "resources[0].apiVersion" in found
    assert "outputs.broken: needs a type and a value" in found
    assert "variables('nope') is used but not declared" in found


def test_invalid_json_names_line_and_column(infra_copy: Path, key_file: Path) -> None:
    (infra_copy / "params" / "dev.json").write_text('{"parameters": {,}}')
    with pytest.raises(ConfigError, match=r"dev\.json is not valid JSON: .* line 1, column 17"):
        load_inputs(infra_dir=infra_copy, env="dev", ssh_public_key=key_file)


def test_unknown_environment_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown environment 'staging'"):
        load_inputs(infra_dir=INFRA, env="staging")


# ---------------------------------------------------------------- overrides and keys


def test_overrides_are_typed_by_the_template(key_file: Path, tmp_path: Path) -> None:
    cidr = tmp_path / "cidr.txt"
    cidr.write_text("198.51.100.7/32\n")
    overrides = parse_overrides(["appPort=8443", "devVmPublicIp=false", f"allowedSshSourceCidr=@{cidr}", "tags={}"])
    inputs = load_inputs(infra_dir=INFRA, env="dev", overrides=overrides, ssh_public_key=key_file)
    assert inputs.values["appPort"] == 8443 and inputs.values["devVmPublicIp"] is False
    assert inputs.values["allowedSshSourceCidr"] == "198.51.100.7/32" and inputs.sources["appPort"] == "--param"
    assert inputs.vm_sizes() == ["Standard_NC6s_v3", "Standard_D2s_v5"]


@pytest.mark.parametrize("bad", [["appPort"], ["=x"], ["appPort=@/nonexistent/file"]])
def test_malformed_overrides_are_usage_errors(bad: list[str]) -> None:
    with pytest.raises(UsageError):
        parse_overrides(bad)


def test_a_private_key_is_refused_without_showing_it(tmp_path: Path) -> None:
    canary = "CANARY-b64-private-key-material"
    path = tmp_path / "id_ed25519"
    path.write_text(f"-----BEGIN OPENSSH PRIVATE KEY-----\n{canary}\n-----END OPENSSH PRIVATE KEY-----\n")
    with pytest.raises(ConfigError) as caught:
        read_public_key(path)
    assert "private key" in str(caught.value) and canary not in str(caught.value)


def test_default_public_key_comes_from_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "id_rsa.pub").write_text("ssh-rsa " + "B" * 100 + " me@host\n")
    inputs = load_inputs(infra_dir=INFRA, env="prod")
    assert inputs.values["adminSshPublicKey"].startswith("ssh-rsa ") and inputs.sources["adminSshPublicKey"].endswith(
        "id_rsa.pub"
    )


# ---------------------------------------------------------------- checkov


def checkov_report(folder: Path) -> dict[str, Any]:
    checkov = Path(sys.executable).parent / "checkov"
    command = [str(checkov), "-d", str(folder), "--framework", "arm", "--skip-download", "-o", "json"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode in (0, 1), result.stderr[-2000:]
    report = json.loads(result.stdout)
    return report[0] if isinstance(report, list) else report


def test_checkov_passes_and_every_skip_is_justified() -> None:
    report = checkov_report(INFRA)
    results = report["results"]
    assert results["failed_checks"] == []
    assert report["summary"]["passed"] >= 20
    for skipped in results["skipped_checks"]:
        comment = skipped["check_result"].get("suppress_comment", "")
        assert len(comment) > 40, f"{skipped['check_id']} is skipped without a justification"
    assert {"CKV_AZURE_10", "CKV_AZURE_9", "CKV_AZURE_137", "CKV_AZURE_138", "CKV_AZURE_149"} <= {
        c["check_id"] for c in results["passed_checks"]
    }
