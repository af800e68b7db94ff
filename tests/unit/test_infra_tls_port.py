"""The network opens one app port on the deployment VM, the TLS port (443): no plain-HTTP port, nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.infra.inputs import load_inputs
from services.infra.policy import flatten

INFRA = Path(__file__).parents[2] / "infra"
TEMPLATE = json.loads((INFRA / "main.json").read_text())
DEPLOY_ASG = "[resourceId('Microsoft.Network/applicationSecurityGroups', variables('deployAsgName'))]"


def inbound_rules_to_the_deploy_vm() -> dict[str, dict[str, object]]:
    rules = {}
    for resource in flatten(TEMPLATE["resources"]):
        if resource.type != "Microsoft.Network/networkSecurityGroups":
            continue
        for rule in resource.body["properties"]["securityRules"]:
            props = rule["properties"]
            targets = [group["id"] for group in props.get("destinationApplicationSecurityGroups", [])]
            if props["direction"] == "Inbound" and props["access"] == "Allow" and DEPLOY_ASG in targets:
                rules[rule["name"]] = props
    return rules


def test_the_deploy_vm_is_open_on_ssh_and_the_tls_port_only() -> None:
    rules = inbound_rules_to_the_deploy_vm()
    ports = {name: props["destinationPortRange"] for name, props in rules.items()}
    assert ports == {"AllowSshFromAdmins": "22", "AllowAppFromClients": "[string(parameters('appPort'))]"}
    assert all("destinationPortRanges" not in props for props in rules.values())
    assert rules["AllowAppFromClients"]["protocol"] == "Tcp"
    assert "HTTPS" in str(rules["AllowAppFromClients"]["description"])
    assert TEMPLATE["parameters"]["appPort"]["defaultValue"] == 443
    assert "TLS" in TEMPLATE["parameters"]["appPort"]["metadata"]["description"]


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_both_environments_open_443(env: str, tmp_path: Path) -> None:
    key = tmp_path / "id.pub"
    key.write_text("ssh-ed25519 " + "A" * 68 + " dev@workbench\n")
    inputs = load_inputs(infra_dir=INFRA, env=env, ssh_public_key=key)
    assert inputs.values["appPort"] == 443
    assert json.loads((INFRA / "params" / f"{env}.json").read_text())["parameters"]["appPort"] == {"value": 443}
