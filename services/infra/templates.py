"""The ARM templates in `infra/`, loaded and validated offline: no credentials, no network.

Checks: the template's JSON structure (resource-group scope), every parameter and variable it
references exists, the environment's parameter file against the template's parameters (names,
types, allowed values, lengths, ranges, no secret values in files), the cloud-init files against
the copies embedded in the template's variables, and our policies (`services.infra.policy`).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from services.errors import ConfigError, InfraInvalidError, UsageError
from services.files import write_atomic
from services.infra.expr import PARAM_REF, VAR_REF, Resolver, is_expression, references
from services.infra.policy import Violation, check_template, flatten

ENVIRONMENTS = ("dev", "prod")
TEMPLATE_FILE = "main.json"
TEMPLATE_SCHEMA = "deploymentTemplate.json"
PARAMS_SCHEMA = "deploymentParameters.json"
PARAM_TYPES = {"string", "securestring", "int", "bool", "object", "secureobject", "array"}
SECURE_TYPES = {"securestring", "secureobject"}
API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")
SSH_KEY_PARAMETER = "adminSshPublicKey"
"""Filled from the `azure.ssh_public_key` file at deploy time, so the parameter files leave it out."""
DEPLOY_TIME = frozenset({SSH_KEY_PARAMETER})
PUBLIC_KEY_PREFIXES = ("ssh-ed25519 ", "ssh-rsa ", "ecdsa-sha2-", "sk-ssh-ed25519@", "sk-ecdsa-sha2-")
DEFAULT_KEYS = ("id_ed25519.pub", "id_ecdsa.pub", "id_rsa.pub")
SECURE_HINT = "pass a secure value as --param NAME=@FILE (a file only you can read), never NAME=VALUE in argv"
DOCUMENTATION_NETS = tuple(
    ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
)

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    """One problem found offline: where (file and key) and what."""

    severity: Severity
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.where}: {self.message}"


@dataclass(frozen=True)
class InfraInputs:
    """An environment's template and parameter values, ready to validate or deploy."""

    env: str
    template_path: Path
    params_path: Path
    template: dict[str, Any] = field(repr=False)
    values: dict[str, Any] = field(repr=False)
    """Parameter values from the file, then overrides (template defaults not included)."""
    sources: dict[str, str]
    """Where each value came from: the parameter file, `--param`, or the SSH key file."""

    def deployment_parameters(self) -> dict[str, dict[str, Any]]:
        """The `parameters` object of an ARM deployment request."""
        return {name: {"value": value} for name, value in self.values.items()}

    def vm_sizes(self) -> list[str]:
        """The VM sizes this deployment creates (conditions and expressions resolved where possible)."""
        resolver = Resolver(self.template, self.values)
        sizes = []
        for resource in flatten(self.template.get("resources")):
            if resource.type.lower() != "microsoft.compute/virtualmachines":
                continue
            if resolver.resolve(resource.body.get("condition", True)) is False:
                continue
            size = resolver.resolve(resource.prop("hardwareProfile", "vmSize"))
            if isinstance(size, str):
                sizes.append(size)
        return sizes


@dataclass(frozen=True)
class ValidationReport:
    """Offline validation of one environment: findings and policy violations."""

    env: str
    findings: tuple[Finding, ...]
    violations: tuple[Violation, ...]

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors and not self.violations


# ---------------------------------------------------------------- loading


def read_json(path: Path, what: str) -> dict[str, Any]:
    """A JSON object from `path`; `ConfigError` naming the file, line and column otherwise."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist", hint="check azure.infra_dir / azure.params_dir") from None
    except OSError as exc:
        raise ConfigError(f"{what} {path} cannot be read: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{what} {path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
            hint="fix the file (ARM files are plain JSON here: no comments, no trailing commas)",
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path} must hold a JSON object")
    return data


def params_file(infra_dir: Path, env: str, params_dir: Path | None = None) -> Path:
    """The parameter file of `env`: `<params_dir or infra_dir/params>/<env>.json`."""
    if env not in ENVIRONMENTS:
        raise UsageError(f"unknown environment '{env}'", hint=f"use one of: {', '.join(ENVIRONMENTS)}")
    return (params_dir or infra_dir / "params") / f"{env}.json"


def load_inputs(
    *,
    infra_dir: Path,
    env: str,
    params_dir: Path | None = None,
    overrides: Mapping[str, str] | None = None,
    ssh_public_key: Path | None = None,
) -> InfraInputs:
    """Read the template and `env`'s parameter file; apply `--param` overrides and the SSH public key.

    Override values are text, converted by the parameter's declared type (int, bool, JSON for
    object/array). The public key fills `adminSshPublicKey` unless the file or an override sets it.
    """
    template_path = infra_dir / TEMPLATE_FILE
    params_path = params_file(infra_dir, env, params_dir)
    template = read_json(template_path, "template")
    values, sources = _file_values(read_json(params_path, "parameter file"), params_path)
    declared = _declared(template)
    for name, text in (overrides or {}).items():
        values[name] = convert_override(name, text, declared.get(name, {}))
        sources[name] = "--param"
    key_path = ssh_public_key or default_public_key()
    if SSH_KEY_PARAMETER in declared and SSH_KEY_PARAMETER not in values and key_path is not None:
        values[SSH_KEY_PARAMETER] = read_public_key(key_path)
        sources[SSH_KEY_PARAMETER] = str(key_path)
    return InfraInputs(env, template_path, params_path, template, values, sources)


def _file_values(data: Mapping[str, Any], path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    entries = data.get("parameters") or {}
    values = {
        name: entry["value"] for name, entry in entries.items() if isinstance(entry, Mapping) and "value" in entry
    }
    return values, {name: path.name for name in values}


def _declared(template: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    params = template.get("parameters") or {}
    return {name: spec for name, spec in params.items() if isinstance(spec, Mapping)}


def parse_overrides(pairs: Sequence[str]) -> dict[str, str]:
    """`NAME=VALUE` pairs from the command line; `NAME=@FILE` reads the value from a file (one trailing
    newline dropped). An argument is never repeated in a message: it may be a secret typed wrongly."""
    found: dict[str, str] = {}
    for number, pair in enumerate(pairs, start=1):
        name, eq, value = pair.partition("=")
        if not eq or not name.strip():
            raise UsageError(f"--param number {number} is not NAME=VALUE or NAME=@FILE", hint=SECURE_HINT)
        found[name.strip()] = read_param_file(name.strip(), value[1:]) if value.startswith("@") else value
    return found


def read_param_file(name: str, file: str) -> str:
    """The value of `--param NAME=@FILE`: the file's text without its trailing newline."""
    path = Path(file).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--param {name}: cannot read {path}: {exc.strerror}") from None
    return text.removesuffix("\n").removesuffix("\r")


def convert_override(name: str, text: str, spec: Mapping[str, Any]) -> Any:
    """`text` as the type parameter `name` declares."""
    kind = str(spec.get("type", "string")).lower()
    try:
        if kind == "int":
            return int(text)
        if kind == "bool":
            if text.lower() not in {"true", "false"}:
                raise ValueError("expected true or false")
            return text.lower() == "true"
        if kind in {"object", "secureobject", "array"}:
            return json.loads(text)
    except (ValueError, json.JSONDecodeError) as exc:
        raise UsageError(f"--param {name}: not a valid {spec.get('type')}: {exc}") from None
    return text


def default_public_key() -> Path | None:
    """The first of `~/.ssh/id_ed25519.pub`, `id_ecdsa.pub`, `id_rsa.pub` that exists."""
    home = Path(os.path.expanduser("~")) / ".ssh"
    return next((home / name for name in DEFAULT_KEYS if (home / name).is_file()), None)


def read_public_key(path: Path) -> str:
    """An OpenSSH public key from `path`; refuses a private key without ever showing its contents."""
    try:
        text = path.expanduser().read_text(encoding="utf-8", errors="replace").strip()
    except OSError as exc:
        raise ConfigError(
            f"SSH public key {path} cannot be read: {exc.strerror}", hint="set azure.ssh_public_key"
        ) from None
    if "PRIVATE KEY" in text:
        raise ConfigError(
            f"{path} is a private key", hint="point azure.ssh_public_key at the public key (the .pub file)"
        )
    if not text.startswith(PUBLIC_KEY_PREFIXES):
        raise ConfigError(
            f"{path} is not an OpenSSH public key", hint="expected a line like 'ssh-ed25519 AAAA... user'"
        )
    return text.splitlines()[0]


# ---------------------------------------------------------------- validation


def validate_inputs(
    inputs: InfraInputs, *, deploy: bool = False, cloud_init_dir: Path | None = None
) -> ValidationReport:
    """Check the template, the parameter values and the policies; `deploy` makes a missing
    deploy-time value (the SSH key) an error instead of a warning."""
    template_where = str(inputs.template_path)
    findings = [
        *template_findings(inputs.template, template_where),
        *parameter_findings(inputs, deploy=deploy),
    ]
    if cloud_init_dir is not None and cloud_init_dir.is_dir():
        findings += cloud_init_drift(inputs.template, cloud_init_dir, template_where)
    violations = check_template(inputs.template, inputs.values)
    return ValidationReport(inputs.env, tuple(findings), tuple(violations))


def template_findings(template: Mapping[str, Any], where: str) -> list[Finding]:
    """Structure of a resource-group-scope template and its parameter/variable references."""
    found = _header_findings(template, where)
    found += _parameter_spec_findings(template, where)
    found += _resource_findings(template, where)
    found += _output_findings(template, where)
    found += _reference_findings(template, where)
    return found


def _header_findings(template: Mapping[str, Any], where: str) -> list[Finding]:
    found = []
    schema = str(template.get("$schema", ""))
    if TEMPLATE_SCHEMA not in schema or "subscriptionDeploymentTemplate" in schema:
        found.append(Finding("error", f"{where}: $schema", f"expected a resource-group {TEMPLATE_SCHEMA} schema"))
    if not isinstance(template.get("contentVersion"), str):
        found.append(Finding("error", f"{where}: contentVersion", 'missing (e.g. "1.0.0.0")'))
    for key in ("parameters", "variables", "outputs"):
        if not isinstance(template.get(key, {}), dict):
            found.append(Finding("error", f"{where}: {key}", "must be an object"))
    return found


def _parameter_spec_findings(template: Mapping[str, Any], where: str) -> list[Finding]:
    found = []
    for name, spec in (template.get("parameters") or {}).items():
        at = f"{where}: parameters.{name}"
        kind = str(spec.get("type", "")).lower() if isinstance(spec, Mapping) else ""
        if kind not in PARAM_TYPES:
            found.append(Finding("error", at, f"type must be one of {', '.join(sorted(PARAM_TYPES))}"))
            continue
        if "defaultValue" in spec and not is_expression(spec["defaultValue"]):
            found += [Finding("error", f"{at}.defaultValue", p) for p in value_problems(spec["defaultValue"], spec)]
    return found


def _resource_findings(template: Mapping[str, Any], where: str) -> list[Finding]:
    resources = template.get("resources")
    if not isinstance(resources, list) or not resources:
        return [Finding("error", f"{where}: resources", "must be a non-empty list")]
    found = []
    for index, resource in enumerate(resources):
        at = f"{where}: resources[{index}]"
        if not isinstance(resource, Mapping):
            found.append(Finding("error", at, "must be an object"))
            continue
        kind = resource.get("type")
        if not isinstance(kind, str) or "/" not in kind:
            found.append(Finding("error", f"{at}.type", "must be 'Namespace/type'"))
        if not API_VERSION.match(str(resource.get("apiVersion", ""))):
            found.append(Finding("error", f"{at}.apiVersion", "must be a date like 2024-05-01"))
        if not isinstance(resource.get("name"), str) or not resource.get("name"):
            found.append(Finding("error", f"{at}.name", "missing"))
    return found


def _output_findings(template: Mapping[str, Any], where: str) -> list[Finding]:
    found = []
    for name, output in (template.get("outputs") or {}).items():
        if not isinstance(output, Mapping) or "type" not in output or "value" not in output:
            found.append(Finding("error", f"{where}: outputs.{name}", "needs a type and a value"))
    return found


def _reference_findings(template: Mapping[str, Any], where: str) -> list[Finding]:
    params = {name.lower() for name in template.get("parameters") or {}}
    variables = {name.lower() for name in template.get("variables") or {}}
    found = [
        Finding("error", where, f"parameters('{name}') is used but not declared")
        for name in sorted(references(template, PARAM_REF))
        if name.lower() not in params
    ]
    found += [
        Finding("error", where, f"variables('{name}') is used but not declared")
        for name in sorted(references(template, VAR_REF))
        if name.lower() not in variables
    ]
    return found


def parameter_findings(inputs: InfraInputs, *, deploy: bool) -> list[Finding]:
    """The parameter values against the template's declarations."""
    declared = _declared(inputs.template)
    found = _params_header(inputs)
    for name in sorted(set(inputs.values) - set(declared)):
        found.append(Finding("error", _at(inputs, name), "not a parameter of the template"))
    for name, spec in declared.items():
        found += _one_parameter(inputs, name, spec, deploy)
    return found


def _params_header(inputs: InfraInputs) -> list[Finding]:
    data = read_json(inputs.params_path, "parameter file")
    where = str(inputs.params_path)
    found = []
    if PARAMS_SCHEMA not in str(data.get("$schema", "")):
        found.append(Finding("error", f"{where}: $schema", f"expected a {PARAMS_SCHEMA} schema"))
    for name, entry in (data.get("parameters") or {}).items():
        if not isinstance(entry, Mapping) or not ({"value", "reference"} & set(entry)):
            found.append(Finding("error", f"{where}: parameters.{name}", "needs a value (or a Key Vault reference)"))
    return found


def _one_parameter(inputs: InfraInputs, name: str, spec: Mapping[str, Any], deploy: bool) -> list[Finding]:
    at = _at(inputs, name)
    kind = str(spec.get("type", "")).lower()
    if name not in inputs.values:
        return _missing(inputs, name, spec, deploy)
    value = inputs.values[name]
    if kind in SECURE_TYPES and inputs.sources.get(name) == inputs.params_path.name:
        hint = f"use a Key Vault reference or --param {name}=@FILE (a file only you can read)"
        return [Finding("error", at, f"a secure parameter's value is in a file: {hint}")]
    found = [Finding("error", at, problem) for problem in value_problems(value, spec)]
    if kind not in SECURE_TYPES and isinstance(value, str) and _documentation_range(value):
        found.append(Finding("warning", at, f"{value} is a documentation range: set your office or VPN range"))
    return found


def _missing(inputs: InfraInputs, name: str, spec: Mapping[str, Any], deploy: bool) -> list[Finding]:
    if "defaultValue" in spec:
        return []
    at = _at(inputs, name)
    if name in DEPLOY_TIME:
        hint = "set azure.ssh_public_key (or create ~/.ssh/id_ed25519.pub), or pass --param NAME=@FILE"
        return [Finding("error" if deploy else "warning", at, f"no value yet: {hint}")]
    if str(spec.get("type", "")).lower() in SECURE_TYPES:
        return [Finding("error", at, f"required (no default): a Key Vault reference, or --param {name}=@FILE")]
    return [Finding("error", at, "required (no default): give it a value in the parameter file")]


def _at(inputs: InfraInputs, name: str) -> str:
    source = inputs.sources.get(name)
    where = str(inputs.params_path) if source in (None, inputs.params_path.name) else source
    return f"{where}: parameters.{name}"


def value_problems(value: Any, spec: Mapping[str, Any]) -> list[str]:
    """What is wrong with `value` for a parameter declared as `spec` (type, allowed values, bounds);
    a secure parameter's value is never part of the text."""
    kind = str(spec.get("type", "")).lower()
    expected: dict[str, tuple[type, ...]] = {
        "string": (str,),
        "securestring": (str,),
        "int": (int,),
        "bool": (bool,),
        "object": (dict,),
        "secureobject": (dict,),
        "array": (list,),
    }
    types = expected.get(kind, (object,))
    if not isinstance(value, types) or (kind == "int" and isinstance(value, bool)):
        return [f"expected {spec.get('type')}, got {type(value).__name__}"]
    problems = []
    allowed = spec.get("allowedValues")
    if isinstance(allowed, list) and value not in allowed:
        secure = kind in SECURE_TYPES
        problems.append(
            "the value (secure, not shown) is not one of the allowed values"
            if secure
            else f"{value!r} is not one of {allowed}"
        )
    problems += _bounds(value, spec)
    return problems


def _bounds(value: Any, spec: Mapping[str, Any]) -> list[str]:
    problems = []
    if isinstance(value, (str, list)):
        if "minLength" in spec and len(value) < spec["minLength"]:
            problems.append(f"shorter than minLength {spec['minLength']}")
        if "maxLength" in spec and len(value) > spec["maxLength"]:
            problems.append(f"longer than maxLength {spec['maxLength']}")
    if isinstance(value, int) and not isinstance(value, bool):
        if "minValue" in spec and value < spec["minValue"]:
            problems.append(f"below minValue {spec['minValue']}")
        if "maxValue" in spec and value > spec["maxValue"]:
            problems.append(f"above maxValue {spec['maxValue']}")
    return problems


def _documentation_range(text: str) -> bool:
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return any(net.version == doc.version and net.subnet_of(doc) for doc in DOCUMENTATION_NETS)  # type: ignore[arg-type]


# ---------------------------------------------------------------- cloud-init


def cloud_init_variable(path: Path) -> str:
    """The template variable that embeds a cloud-init file: `docker-nvidia.yaml` -> `cloudInitDockerNvidia`."""
    return "cloudInit" + "".join(part.capitalize() for part in re.split(r"[-_.]", path.stem) if part)


def cloud_init_drift(template: Mapping[str, Any], cloud_init_dir: Path, where: str = "template") -> list[Finding]:
    """Cloud-init files whose embedded copy in the template's variables is missing or different."""
    variables = template.get("variables") or {}
    found = []
    for path in sorted(cloud_init_dir.glob("*.yaml")):
        name = cloud_init_variable(path)
        if variables.get(name) != path.read_text(encoding="utf-8"):
            state = "missing" if name not in variables else "differs from"
            found.append(
                Finding(
                    "error",
                    f"{where}: variables.{name}",
                    f"{state} {path}: run scripts/infra-sync-cloud-init (ARM cannot read files: the text is embedded)",
                )
            )
    return found


def sync_cloud_init(template_path: Path, cloud_init_dir: Path) -> list[str]:
    """Copy every cloud-init file into the template's variables; returns the variables it changed."""
    template = read_json(template_path, "template")
    variables = template.setdefault("variables", {})
    changed = []
    for path in sorted(cloud_init_dir.glob("*.yaml")):
        name, text = cloud_init_variable(path), path.read_text(encoding="utf-8")
        if variables.get(name) != text:
            variables[name] = text
            changed.append(name)
    if changed:
        write_atomic(template_path, json.dumps(template, indent=2) + "\n")
    return changed


def validate_environment(
    *,
    infra_dir: Path,
    env: str,
    params_dir: Path | None = None,
    overrides: Mapping[str, str] | None = None,
    ssh_public_key: Path | None = None,
    deploy: bool = False,
) -> tuple[InfraInputs, ValidationReport]:
    """Load and validate one environment offline: what `workbench infra validate` runs."""
    inputs = load_inputs(
        infra_dir=infra_dir, env=env, params_dir=params_dir, overrides=overrides, ssh_public_key=ssh_public_key
    )
    return inputs, validate_inputs(inputs, deploy=deploy, cloud_init_dir=infra_dir / "cloud-init")


def require_valid(report: ValidationReport) -> None:
    """Raise `InfraInvalidError` naming the first problem unless the report is clean (warnings allowed)."""
    if report.ok:
        return
    problems: list[object] = [*report.violations, *report.errors]
    count = len(problems)
    raise InfraInvalidError(
        f"{report.env}: {count} problem{'s' if count != 1 else ''} in templates or parameters, first: {problems[0]}",
        hint="`workbench infra validate` lists them all",
    )
