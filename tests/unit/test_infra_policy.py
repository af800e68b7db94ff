"""Our own policies over ARM templates: each one can fail, and the shipped templates pass them all."""

import json
from pathlib import Path
from typing import Any

import pytest

from services.infra.policy import POLICIES, check_template

ROOT = Path(__file__).parents[2]
FIXTURES = Path(__file__).parent / "infra_fixtures"
TEMPLATE = json.loads((ROOT / "infra" / "main.json").read_text())


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def env_values(env: str) -> dict[str, Any]:
    entries = json.loads((ROOT / "infra" / "params" / f"{env}.json").read_text())["parameters"]
    return {name: entry["value"] for name, entry in entries.items()}


def policies_failed(template: dict[str, Any], values: dict[str, Any] | None = None) -> set[str]:
    return {v.policy for v in check_template(template, values)}


FAILING = {
    "nsg-admin-ports": ["nsg_ssh_from_internet.json", "nsg_rdp_range_from_param.json"],
    "storage-public-access": ["storage_public_blob.json"],
    "storage-hardening": ["storage_weak.json"],
    "vm-managed-identity": ["vm_password_no_identity.json"],
    "vm-ssh-key-only": ["vm_password_no_identity.json"],
    "no-exposed-keys": ["keys_exposed.json", "cloud_init_secret.json"],
    "secret-parameters": ["secret_parameters.json"],
}


def test_every_policy_has_a_failing_fixture() -> None:
    assert set(FAILING) == set(POLICIES)


@pytest.mark.parametrize(("policy", "name"), [(p, n) for p, names in FAILING.items() for n in names])
def test_policy_fails_on_its_fixture(policy: str, name: str) -> None:
    assert policy in policies_failed(fixture(name))


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_shipped_template_passes_every_policy(env: str) -> None:
    assert check_template(TEMPLATE, env_values(env)) == []


# ---------------------------------------------------------------- NSG matrix


def nsg(source: Any, port: Any, protocol: str = "Tcp", *, plural: bool = False) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "priority": 100,
        "direction": "Inbound",
        "access": "Allow",
        "protocol": protocol,
        "sourcePortRange": "*",
        "destinationAddressPrefix": "*",
    }
    rule.update({"sourceAddressPrefixes": [source], "destinationPortRanges": [port]} if plural else {})
    rule.update({} if plural else {"sourceAddressPrefix": source, "destinationPortRange": port})
    resource = {
        "type": "Microsoft.Network/networkSecurityGroups",
        "apiVersion": "2024-05-01",
        "name": "nsg",
        "properties": {"securityRules": [{"name": "rule", "properties": rule}]},
    }
    return {"resources": [resource]}


OPEN = ["*", "Internet", "internet", "Any", "0.0.0.0/0", "0.0.0.0", "::/0"]
ADMIN_PORTS = ["22", "3389", 22, "20-25", "3000-4000", "*", "1-65535"]
PROTOCOLS = ["Tcp", "Udp", "*"]


@pytest.mark.parametrize("source", OPEN)
@pytest.mark.parametrize("port", ADMIN_PORTS)
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_admin_port_open_to_the_internet_is_rejected(source: str, port: Any, protocol: str) -> None:
    assert "nsg-admin-ports" in policies_failed(nsg(source, port, protocol))


@pytest.mark.parametrize("plural", [False, True])
def test_prefix_lists_and_port_lists_are_checked(plural: bool) -> None:
    assert "nsg-admin-ports" in policies_failed(nsg("Internet", "20-25", plural=plural))


@pytest.mark.parametrize(
    ("source", "port", "protocol"),
    [
        ("203.0.113.0/24", "22", "Tcp"),  # a known range
        ("VirtualNetwork", "*", "*"),
        ("*", "443", "Tcp"),  # not an admin port
        ("*", "23-3388", "Tcp"),  # a range that misses both
        ("*", "22", "Icmp"),  # ICMP carries no port
    ],
)
def test_rules_that_do_not_open_admin_ports_pass(source: str, port: str, protocol: str) -> None:
    assert "nsg-admin-ports" not in policies_failed(nsg(source, port, protocol))


def test_deny_and_outbound_rules_are_not_openings() -> None:
    template = nsg("*", "22")
    rule = template["resources"][0]["properties"]["securityRules"][0]["properties"]
    assert "nsg-admin-ports" in policies_failed(template)
    rule["access"] = "Deny"
    assert "nsg-admin-ports" not in policies_failed(template)
    rule["access"], rule["direction"] = "Allow", "Outbound"
    assert "nsg-admin-ports" not in policies_failed(template)


@pytest.mark.parametrize("value", ["*", "Internet", "0.0.0.0/0", "::/0", "Any"])
def test_parameter_file_value_that_opens_ssh_is_rejected(value: str) -> None:
    values = {**env_values("dev"), "allowedSshSourceCidr": value}
    violations = [v for v in check_template(TEMPLATE, values) if v.policy == "nsg-admin-ports"]
    assert violations and "AllowSshFromAdmins" in violations[0].where


def test_app_port_set_to_ssh_and_open_app_source_is_rejected() -> None:
    values = {**env_values("prod"), "appPort": 22, "allowedAppSourceCidr": "0.0.0.0/0"}
    assert "nsg-admin-ports" in policies_failed(TEMPLATE, values)


def test_a_source_only_azure_can_compute_is_reported_not_assumed_safe() -> None:
    template = nsg("[concat('0.0.0.', '0/0')]", "22")
    [violation] = check_template(template)
    assert "cannot be checked offline" in violation.message


def test_ssh_source_without_a_value_yet_is_checked_once_it_has_one() -> None:
    assert check_template(TEMPLATE) == []  # template alone: allowedSshSourceCidr has no default
    assert "nsg-admin-ports" in policies_failed(TEMPLATE, {"allowedSshSourceCidr": "*"})


# ---------------------------------------------------------------- secrets


def test_keys_inside_base64_custom_data_are_found() -> None:
    violations = check_template(fixture("keys_exposed.json"))
    custom = [v for v in violations if "customData" in v.where]
    assert custom and "list*()" in custom[0].message


def test_a_literal_base64_custom_data_is_decoded_and_scanned() -> None:
    import base64

    template = fixture("cloud_init_secret.json")
    os_profile = template["resources"][0]["properties"]["osProfile"]
    os_profile["customData"] = base64.b64encode(b"#cloud-config\nexport AZURE_CLIENT_SECRET=abc\n").decode()
    assert "no-exposed-keys" in policies_failed(template)


def test_outputs_of_the_shipped_template_hold_no_key() -> None:
    names = " ".join(TEMPLATE["outputs"]).lower()
    assert not any(word in names for word in ("key", "secret", "password", "connection", "sas", "token"))
    assert "list" not in json.dumps(TEMPLATE["outputs"]).lower()


def test_public_key_parameter_is_not_taken_for_a_secret() -> None:
    assert [v.where for v in check_template(fixture("secret_parameters.json"))] == [
        "parameters.registryPassword",
        "parameters.clientSecret",
    ]
