"""Our own policy checks of an ARM template: what checkov misses or does not check at all.

Each policy reads the template with the parameter values it will be deployed with (parameter
files, overrides, else defaults), so `"allowedSshSourceCidr": "*"` in a parameter file fails
just like `"*"` written into the rule. A value that only Azure can compute is reported, not
assumed safe; a parameter that has no value yet is checked once it has one.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from services.infra.expr import PARAM_REF, UNKNOWN, UNSET, Resolver, is_expression, references, strings

ADMIN_PORTS = {22: "SSH", 3389: "RDP"}
OPEN_SOURCES = frozenset({"*", "internet", "any", "0.0.0.0/0", "0.0.0.0", "::/0", "::"})
OPEN_PROTOCOLS = frozenset({"tcp", "udp", "*", "any"})
SECURE_TYPES = frozenset({"securestring", "secureobject"})
SECRET_NAME = re.compile(
    r"password|passwd|secret|token|apikey|api_key|accesskey|accountkey|connectionstring|sas\b|privatekey|key$",
    re.IGNORECASE,
)
PUBLIC_NAME = re.compile(r"publickey|keydata$", re.IGNORECASE)
SECRET_OUTPUT_NAME = re.compile(r"key|secret|password|connectionstring|sas|token|credential", re.IGNORECASE)
LIST_FUNCTION = re.compile(r"\blist[a-z]*\s*\(", re.IGNORECASE)
KEY_PROPERTY = re.compile(r"\.(keys|primarykey|secondarykey|primarymasterkey|accesskey|adminpassword)\b", re.IGNORECASE)
SECRET_TEXT = re.compile(
    r"AccountKey=|AZURE_STORAGE_KEY|AZURE_CLIENT_SECRET|SharedAccessSignature|[?&]sig=|"
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----|password\s*[:=]\s*\S",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Violation:
    """One broken policy: which policy, which part of the template, and what is wrong."""

    policy: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"[{self.policy}] {self.where}: {self.message}"


@dataclass(frozen=True)
class Resource:
    """A resource of the template (nested child resources flattened, their types joined)."""

    type: str
    name: str
    body: Mapping[str, Any]

    @property
    def label(self) -> str:
        return f"{self.type} {self.name}"

    def prop(self, *path: str) -> Any:
        node: Any = self.body.get("properties") or {}
        for part in path:
            node = node.get(part) if isinstance(node, Mapping) else None
        return node


@dataclass
class Context:
    """What every policy reads: the template, its resources and a resolver for values."""

    template: Mapping[str, Any]
    resources: list[Resource]
    resolver: Resolver

    def of_type(self, *types: str) -> Iterator[Resource]:
        wanted = {t.lower() for t in types}
        return (r for r in self.resources if r.type.lower() in wanted)

    def value(self, raw: Any) -> Any:
        return self.resolver.resolve(raw)


Policy = Callable[[Context], Iterator[Violation]]


def flatten(resources: Any, parent_type: str = "", parent_name: str = "") -> list[Resource]:
    """The template's resources, child resources included (`type` and `name` joined to the parent's)."""
    found: list[Resource] = []
    for body in resources if isinstance(resources, list) else []:
        if not isinstance(body, Mapping):
            continue
        kind = str(body.get("type", ""))
        name = str(body.get("name", ""))
        full_type = f"{parent_type}/{kind}" if parent_type and "/" not in kind else kind
        full_name = f"{parent_name}/{name}" if parent_name and "/" not in kind else name
        found.append(Resource(full_type, full_name, body))
        found += flatten(body.get("resources"), full_type, full_name)
    return found


# ---------------------------------------------------------------- network


def nsg_admin_ports(ctx: Context) -> Iterator[Violation]:
    """No inbound Allow rule opens SSH (22) or RDP (3389) to the internet (`*`, Internet, Any, 0.0.0.0/0, ::/0)."""
    for resource, rule_name, rule in _security_rules(ctx):
        if str(ctx.value(rule.get("direction", ""))).lower() != "inbound":
            continue
        if str(ctx.value(rule.get("access", ""))).lower() != "allow":
            continue
        protocol = ctx.value(rule.get("protocol", "*"))
        if protocol is not UNSET and (protocol is UNKNOWN or str(protocol).lower() in OPEN_PROTOCOLS):
            yield from _open_admin_ports(ctx, f"{resource.label} rule {rule_name}", rule)


def _security_rules(ctx: Context) -> Iterator[tuple[Resource, str, Mapping[str, Any]]]:
    for nsg in ctx.of_type("Microsoft.Network/networkSecurityGroups"):
        for rule in nsg.prop("securityRules") or []:
            if isinstance(rule, Mapping):
                yield nsg, str(rule.get("name", "?")), rule.get("properties") or {}
    for standalone in ctx.of_type("Microsoft.Network/networkSecurityGroups/securityRules"):
        yield standalone, "", standalone.body.get("properties") or {}


def _open_admin_ports(ctx: Context, where: str, rule: Mapping[str, Any]) -> Iterator[Violation]:
    sources = _values(ctx, rule, "sourceAddressPrefix", "sourceAddressPrefixes")
    ports = _values(ctx, rule, "destinationPortRange", "destinationPortRanges")
    open_sources = [s for s in sources if s is UNKNOWN or _is_open_source(s)]
    if not open_sources:
        return
    for port, service in ADMIN_PORTS.items():
        if any(p is UNKNOWN or _covers(p, port) for p in ports):
            shown = ", ".join(
                "an expression that cannot be checked offline" if s is UNKNOWN else repr(s) for s in open_sources
            )
            yield Violation(
                "nsg-admin-ports",
                where,
                f"allows {service} (port {port}) from {shown}; allow it only from a known range (allowedSshSourceCidr)",
            )


def _values(ctx: Context, rule: Mapping[str, Any], single: str, plural: str) -> list[Any]:
    raw: list[Any] = [rule[single]] if rule.get(single) not in (None, "") else []
    many = ctx.value(rule.get(plural))
    if isinstance(many, list):
        raw += many
    elif many is UNKNOWN:
        raw.append(rule.get(plural))
    values = [ctx.value(v) for v in raw]
    return [v for v in values if v is not UNSET]


def _is_open_source(source: Any) -> bool:
    text = str(source).strip().lower()
    if text in OPEN_SOURCES:
        return True
    try:
        return ipaddress.ip_network(text, strict=False).prefixlen == 0
    except ValueError:
        return False


def _covers(spec: Any, port: int) -> bool:
    text = str(spec).strip()
    if text in {"*", "any", "Any"}:
        return True
    low, dash, high = text.partition("-")
    try:
        return int(low) <= port <= int(high) if dash else int(text) == port
    except ValueError:
        return True  # not a port we can read: treat as open rather than pass silently


# ---------------------------------------------------------------- storage


def storage_public_access(ctx: Context) -> Iterator[Violation]:
    """Storage accounts set `allowBlobPublicAccess` to false, and containers are private."""
    for account in ctx.of_type("Microsoft.Storage/storageAccounts"):
        if ctx.value(account.prop("allowBlobPublicAccess")) is not False:
            yield Violation("storage-public-access", account.label, "allowBlobPublicAccess must be false")
    for container in ctx.of_type("Microsoft.Storage/storageAccounts/blobServices/containers"):
        access = ctx.value(container.prop("publicAccess"))
        if access not in (None, "None"):
            yield Violation("storage-public-access", container.label, f"publicAccess is {access!r}; use 'None'")


STORAGE_REQUIRED: tuple[tuple[tuple[str, ...], Any, str], ...] = (
    (("supportsHttpsTrafficOnly",), True, "HTTPS only"),
    (("minimumTlsVersion",), "TLS1_2", "minimum TLS 1.2"),
    (("allowSharedKeyAccess",), False, "no shared-key access (Entra identities only)"),
    (("networkAcls", "defaultAction"), "Deny", "firewall default action Deny"),
)


def storage_hardening(ctx: Context) -> Iterator[Violation]:
    """Storage accounts are HTTPS only with TLS 1.2, refuse shared keys and deny by default."""
    for account in ctx.of_type("Microsoft.Storage/storageAccounts"):
        for path, wanted, meaning in STORAGE_REQUIRED:
            got = ctx.value(account.prop(*path))
            if got != wanted:
                yield Violation("storage-hardening", account.label, f"{'.'.join(path)} must be {wanted!r} ({meaning})")


# ---------------------------------------------------------------- compute

VM_TYPES = ("Microsoft.Compute/virtualMachines", "Microsoft.Compute/virtualMachineScaleSets")


def vm_managed_identity(ctx: Context) -> Iterator[Violation]:
    """Every VM has a managed identity, so it reaches storage and the registry without secrets."""
    for vm in ctx.of_type(*VM_TYPES):
        identity = vm.body.get("identity")
        kind = str(ctx.value(identity.get("type")) if isinstance(identity, Mapping) else "None")
        if "assigned" not in kind.lower():
            yield Violation("vm-managed-identity", vm.label, "needs a managed identity (identity.type SystemAssigned)")


def vm_ssh_key_only(ctx: Context) -> Iterator[Violation]:
    """Linux VMs log in with SSH keys only: password authentication off, no admin password."""
    for vm in ctx.of_type(*VM_TYPES):
        profile = _os_profile(vm)
        linux = profile.get("linuxConfiguration") or {}
        if ctx.value(linux.get("disablePasswordAuthentication")) is not True:
            yield Violation(
                "vm-ssh-key-only", vm.label, "linuxConfiguration.disablePasswordAuthentication must be true"
            )
        if profile.get("adminPassword") not in (None, ""):
            yield Violation("vm-ssh-key-only", vm.label, "sets adminPassword; use an SSH public key only")


def _os_profile(vm: Resource) -> Mapping[str, Any]:
    profile = vm.prop("osProfile") or vm.prop("virtualMachineProfile", "osProfile")
    return profile if isinstance(profile, Mapping) else {}


# ---------------------------------------------------------------- secrets


def no_exposed_keys(ctx: Context) -> Iterator[Violation]:
    """No key or secret in outputs or in a VM's customData (also inside `base64(...)`)."""
    secure = _secure_parameters(ctx.template)
    for name, output in (ctx.template.get("outputs") or {}).items():
        where = f"outputs.{name}"
        if SECRET_OUTPUT_NAME.search(name):
            yield Violation("no-exposed-keys", where, "an output named like a key or secret; outputs are readable")
        yield from _expression_leaks(output, where, secure)
    for vm in ctx.of_type(*VM_TYPES):
        custom = _os_profile(vm).get("customData")
        if custom in (None, ""):
            continue
        where = f"{vm.label} customData"
        yield from _expression_leaks(custom, where, secure)
        texts = [*ctx.resolver.variable_texts(custom), *_decoded_literals(custom)]
        if any(SECRET_TEXT.search(text) for text in texts):
            yield Violation("no-exposed-keys", where, "cloud-init text holds a key or secret; use the VM's identity")


def _expression_leaks(node: Any, where: str, secure: set[str]) -> Iterator[Violation]:
    expressions = [text for text in strings(node) if is_expression(text)]
    if any(LIST_FUNCTION.search(text) for text in expressions):
        yield Violation(
            "no-exposed-keys", where, "calls a list*() function (listKeys, listSecrets, ...): that is a key"
        )
    elif any(KEY_PROPERTY.search(text) for text in expressions):
        yield Violation("no-exposed-keys", where, "reads a key property")
    used = {name.lower() for name in references(node, PARAM_REF)} & secure
    if used:
        yield Violation("no-exposed-keys", where, f"uses secure parameter(s) {', '.join(sorted(used))}")


def _decoded_literals(node: Any) -> list[str]:
    texts = []
    for text in strings(node):
        if is_expression(text):
            continue
        try:
            texts.append(base64.b64decode(text, validate=True).decode("utf-8", "replace"))
        except (binascii.Error, ValueError):
            texts.append(text)
    return texts


def _secure_parameters(template: Mapping[str, Any]) -> set[str]:
    params = template.get("parameters") or {}
    return {
        name.lower()
        for name, spec in params.items()
        if isinstance(spec, Mapping) and str(spec.get("type", "")).lower() in SECURE_TYPES
    }


def secret_parameters(ctx: Context) -> Iterator[Violation]:
    """Parameters named like secrets are secureString/secureObject, without a default value."""
    for name, spec in (ctx.template.get("parameters") or {}).items():
        if not isinstance(spec, Mapping) or PUBLIC_NAME.search(name) or not SECRET_NAME.search(name):
            continue
        where = f"parameters.{name}"
        kind = str(spec.get("type", "")).lower()
        if kind not in SECURE_TYPES:
            yield Violation(
                "secret-parameters", where, f"looks like a secret but is {spec.get('type')!r}; use secureString"
            )
        elif spec.get("defaultValue") not in (None, ""):
            yield Violation("secret-parameters", where, "a secret with a default value is a secret in git; remove it")


POLICIES: dict[str, Policy] = {
    "nsg-admin-ports": nsg_admin_ports,
    "storage-public-access": storage_public_access,
    "storage-hardening": storage_hardening,
    "vm-managed-identity": vm_managed_identity,
    "vm-ssh-key-only": vm_ssh_key_only,
    "no-exposed-keys": no_exposed_keys,
    "secret-parameters": secret_parameters,
}
"""Every policy by id; each one's docstring says what it enforces."""


def check_template(template: Mapping[str, Any], values: Mapping[str, Any] | None = None) -> list[Violation]:
    """Run every policy over `template` with the given parameter values (defaults fill the rest)."""
    ctx = Context(template, flatten(template.get("resources")), Resolver(template, values or {}))
    return [violation for policy in POLICIES.values() for violation in policy(ctx)]
